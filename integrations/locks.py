"""`provider_lock`: at most one run of a job per provider at a time.

A scheduled job (a sync, a poll) must not overlap itself on one provider, whichever worker,
process or machine runs it. The lock is a key in the shared cache, taken with `cache.add`, which is
atomic: of two callers, one gets it. It expires after `ttl` seconds, so a holder that dies does not
block the job for ever. Each holder stores its own token and deletes the key only while it still
holds that token: a holder that outlived its TTL (and whose key a newer holder has taken since)
never deletes the newer holder's lock.

Without the cache the lock cannot be taken, and it is not skipped: `LockUnavailable` is raised,
the job is left to its next scheduled run (a request asking for one is answered 503 with
Retry-After). No lock here guards a write to a provider (a write's uniqueness is the database
claim of integrations.writes), but a job running twice at once would double its load on the
provider and race its own row updates. A lock held when the cache fails is left to its TTL.
"""

import uuid
from contextlib import contextmanager

from django.core.cache import cache

from .cache_outage import CACHE_ERRORS, cache_down


class LockUnavailable(Exception):
    """The lock could not be asked for: the cache is down. Try again later; do not go on unlocked."""


@contextmanager
def provider_lock(provider_pk, job, ttl=900):
    """Yield whether the lock on (job, provider) was acquired; release it on leaving if so.
    A caller that was refused should skip the work, not wait. Raises LockUnavailable when the cache
    cannot be asked."""
    key = f"lock:{job}:{provider_pk}"
    token = uuid.uuid4().hex
    try:
        acquired = cache.add(key, token, ttl)
    except CACHE_ERRORS as exc:
        cache_down(f"the {job} lock", exc, "is refused")
        raise LockUnavailable(key) from exc
    try:
        yield acquired
    finally:
        if acquired:
            try:
                if cache.get(key) == token:
                    cache.delete(key)
            except CACHE_ERRORS as exc:
                cache_down(f"the {job} lock", exc, "is left to expire")
