"""`provider_lock`: at most one run of a job per provider at a time.

A scheduled job (a sync, a poll) must not overlap itself on one provider, whichever worker,
process or machine runs it. The lock is a key in the shared cache, taken with `cache.add`, which is
atomic: of two callers, one gets it. It expires after `ttl` seconds, so a holder that dies does not
block the job for ever. Each holder stores its own token and deletes the key only while it still
holds that token: a holder that outlived its TTL (and whose key a newer holder has taken since)
never deletes the newer holder's lock.
"""

import uuid
from contextlib import contextmanager

from django.core.cache import cache


@contextmanager
def provider_lock(provider_pk, job, ttl=900):
    """Yield whether the lock on (job, provider) was acquired; release it on leaving if so.
    A caller that was refused should skip the work, not wait."""
    key = f"lock:{job}:{provider_pk}"
    token = uuid.uuid4().hex
    acquired = cache.add(key, token, ttl)
    try:
        yield acquired
    finally:
        if acquired and cache.get(key) == token:
            cache.delete(key)
