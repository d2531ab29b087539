"""The embedded default's cache: Django's file cache, with `add` and `incr` atomic across processes.

Locks (`integrations.locks`), the circuit breaker's one half-open trial and the throttles' counters
are built on `cache.add` and `cache.incr`, which Redis performs atomically. Django's file cache
checks, then writes: two processes can both "add" the same key. An exclusive `flock` on one lock
file in the cache's folder serialises these two operations (they are short; the lock is held for a
read and a write of one small file).
"""

import fcntl
import os
from contextlib import contextmanager

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.filebased import FileBasedCache


class FileCache(FileBasedCache):
    @contextmanager
    def _exclusive(self):
        self._createdir()  # the folder may be deleted at any time
        fd = os.open(os.path.join(self._dir, "atomic.lock"), os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        with self._exclusive():
            return super().add(key, value, timeout, version)

    def incr(self, key, delta=1, version=None):
        with self._exclusive():
            return super().incr(key, delta, version)
