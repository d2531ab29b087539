"""A circuit breaker per provider, kept in the shared cache so every worker process sees it.

Closed: calls go through; consecutive failures are counted. After `threshold` failures it opens:
calls fail at once with CircuitOpen. After `cooldown` seconds one caller (whoever wins `cache.add`)
is let through as a half-open trial: success closes the circuit, failure opens it again.

The common case costs one cache read and no write: `before_call` reads the opened mark and the
failure count together and tells the caller whether there is anything for a success to clear; a
success on a closed circuit with no failures counted writes nothing. (A failure another worker
counts between that read and the success is then not cleared by it: the count errs towards opening.)
"""

import time

from django.core.cache import cache

from .errors import CircuitOpen


class CircuitBreaker:
    def __init__(self, key, threshold=5, cooldown=30.0):
        self.key = f"circuit:{key}"
        self.threshold = threshold
        self.cooldown = cooldown

    @property
    def state(self):
        opened_at = cache.get(f"{self.key}:opened")
        if opened_at is None:
            return "closed"
        return "half-open" if time.time() - opened_at >= self.cooldown else "open"

    def before_call(self):
        """Raise CircuitOpen when the call must not be made. Otherwise return whether a success
        must clear state (failures counted, or this call is the half-open trial): pass it on to
        `record_success`."""
        opened_key, failures_key = f"{self.key}:opened", f"{self.key}:failures"
        values = cache.get_many([opened_key, failures_key])
        opened_at = values.get(opened_key)
        if opened_at is None:
            return bool(values.get(failures_key))
        if time.time() - opened_at < self.cooldown:
            raise CircuitOpen()
        # Half-open: exactly one trial call at a time.
        if not cache.add(f"{self.key}:trial", 1, timeout=max(int(self.cooldown), 1)):
            raise CircuitOpen()
        return True

    def record_success(self, dirty=True):
        """Close the circuit and forget the failures; `dirty=False` (from `before_call`: closed, no
        failures) skips the cache write."""
        if dirty:
            cache.delete_many([f"{self.key}:failures", f"{self.key}:opened", f"{self.key}:trial"])

    def record_failure(self):
        key = f"{self.key}:failures"
        cache.add(key, 0, timeout=None)
        try:
            failures = cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=None)
            failures = 1
        if failures >= self.threshold or cache.get(f"{self.key}:opened") is not None:
            cache.set(f"{self.key}:opened", time.time(), timeout=None)
            cache.delete(f"{self.key}:trial")

    def reset(self):
        self.record_success()
