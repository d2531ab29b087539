"""A circuit breaker per provider, kept in the shared cache so every worker process sees it.

Closed: calls go through; consecutive failures are counted. After `threshold` failures it opens:
calls fail at once with CircuitOpen. After `cooldown` seconds one caller (whoever wins `cache.add`)
is let through as a half-open trial: success closes the circuit, failure opens it again.

The common case costs one cache read and no write: `before_call` reads the opened mark and the
failure count together and tells the caller whether there is anything for a success to clear; a
success on a closed circuit with no failures counted writes nothing. (A failure another worker
counts between that read and the success is then not cleared by it: the count errs towards opening.)

A process that has just seen the circuit closed and clean trusts that for CLEAN_FOR seconds without
asking the cache again: a bulk job making calls back to back (the SMM poll) would otherwise pay a
cache round trip per call. Its own failures forget that at once; a circuit opened by another
worker reaches it within CLEAN_FOR seconds, a moment against a cooldown of many seconds.

Without the cache (Redis down) the breaker lets calls through and counts nothing, with a log line
(integrations.cache_outage): it spares a failing provider our calls, it is no guard of a write's
uniqueness, and a breaker that raised the cache's error would fail a call that never left us, or
lose the answer of one that did.
"""

import time

from django.core.cache import cache

from .cache_outage import CACHE_ERRORS, cache_down
from .errors import CircuitOpen

CLEAN_FOR = 1.0
_clean_until = {}  # breaker key -> time.monotonic() until which it is known closed and clean


def forget_clean_marks():
    """Ask the cache again on the next call of every breaker (after the cache was cleared)."""
    _clean_until.clear()


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
        if _clean_until.get(self.key, 0.0) > time.monotonic():
            return False
        try:
            return self._before_call()
        except CACHE_ERRORS as exc:
            cache_down("the circuit breaker", exc, "lets calls through")
            return False

    def _before_call(self):
        opened_key, failures_key = f"{self.key}:opened", f"{self.key}:failures"
        values = cache.get_many([opened_key, failures_key])
        opened_at = values.get(opened_key)
        if opened_at is None:
            if values.get(failures_key):
                return True
            _clean_until[self.key] = time.monotonic() + CLEAN_FOR
            return False
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
            try:
                cache.delete_many([f"{self.key}:failures", f"{self.key}:opened", f"{self.key}:trial"])
            except CACHE_ERRORS as exc:
                cache_down("the circuit breaker", exc, "counts nothing")

    def record_failure(self):
        _clean_until.pop(self.key, None)
        try:
            self._record_failure()
        except CACHE_ERRORS as exc:
            cache_down("the circuit breaker", exc, "counts nothing")

    def _record_failure(self):
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
