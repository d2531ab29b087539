"""The shared cache may be down (Redis stopped, its host unreachable, the file cache's disk failing):
what such a failure looks like, and one rate-limited log line for each piece that degrades.

The pieces built on the cache decide, each for itself, how to go on without it
(docs/operations.md, "When the cache is down"):

- the write throttle and the token-guessing limit let the request through: refusing every write
  because the cache is down would be an outage of its own;
- the circuit breaker lets the call through: it spares a failing provider our calls, it does not
  decide whether a write is sent once (the database claim of `integrations.writes` does);
- `provider_lock` refuses (`LockUnavailable`): a job skipped now runs at its next schedule, and a
  request asking for one is answered 503 with Retry-After.
"""

import logging
import threading
import time

from redis.exceptions import RedisError

logger = logging.getLogger("integrations.cache")

# Django's Redis cache lets redis-py's errors through; the file cache, the OS's.
CACHE_ERRORS = (RedisError, OSError)
LOG_EVERY = 30.0  # seconds between two log lines of one piece: an outage is not a flood of lines
RETRY_AFTER = 30  # what a request refused for want of the cache is told

_last_logged = {}
_logging = threading.Lock()


def cache_down(piece, exc, consequence):
    """Log that `piece` works without the cache (at most one line per piece every LOG_EVERY s)."""
    now = time.monotonic()
    with _logging:
        if now - _last_logged.get(piece, -LOG_EVERY) < LOG_EVERY:
            return
        _last_logged[piece] = now
    logger.warning("The cache is unavailable (%s: %s); %s %s.", type(exc).__name__, exc, piece, consequence)
