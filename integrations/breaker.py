"""A circuit breaker per provider, kept in the shared cache so every worker process sees it.

Closed: calls go through; consecutive failures are counted. After `threshold` failures it opens:
calls fail at once with CircuitOpen. After `cooldown` seconds one caller (whoever wins `cache.add`)
is let through as a half-open trial: success closes the circuit, failure opens it again.
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
        opened_at = cache.get(f"{self.key}:opened")
        if opened_at is None:
            return
        if time.time() - opened_at < self.cooldown:
            raise CircuitOpen()
        # Half-open: exactly one trial call at a time.
        if not cache.add(f"{self.key}:trial", 1, timeout=max(int(self.cooldown), 1)):
            raise CircuitOpen()

    def record_success(self):
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
