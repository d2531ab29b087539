"""Publishing a task whose work is already recorded in a row (the outbox pattern).

A domain writes what must happen (an order to send, a webhook event to apply) in its own row and
commits, then queues a task to do it soon. When the broker cannot take the message (Redis down, its
host unreachable, the file broker's disk failing) the request that wrote the row must not fail: the
row is the outbox, and a periodic sweep of the domain's own finds what no task holds and does it,
exactly once, through the row's own claim. So a failed publish is a delay with a log line, never a
500 and never a lost piece of work.
"""

import logging

from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

logger = logging.getLogger("integrations.outbox")

# What publishing raises when the broker cannot take a message: kombu's wrapper of the transport's
# connection errors, and what a transport lets through (Redis's own, the filesystem broker's OSError).
BROKER_ERRORS = (OperationalError, RedisError, OSError)
# A request waits at most about a second for the broker: the work is safe in its row either way.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


def publish(task, args, *, what, sweep, **options):
    """Queue `task(*args)`; False, with a warning naming `what` and the `sweep` that will do it, if
    the broker could not take it."""
    try:
        task.apply_async(args, retry=True, retry_policy=PUBLISH_RETRY, **options)
    except BROKER_ERRORS as exc:
        logger.warning("%s could not be queued (%s: %s); %s does it", what, type(exc).__name__, exc, sweep)
        return False
    return True
