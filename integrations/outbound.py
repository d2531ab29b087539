"""Whether a provider call may have left us, for code that must decide what a failure means.

An exactly-once write (integrations.writes) that fails with an error no transport mapped cannot
tell from the error whether its request went out: the cache failing in the circuit breaker, a bug
while building the request and a library's fault after sending all look alike. Every transport
makes its calls inside `Tracer.call`, which marks the watch once it has passed the breaker and
hands the call to the transport; the write then knows that until that mark nothing went out.

A send's calls are made in the thread (the context) that watches them: a call made in a thread
pool the send starts would not be seen (no send does that).
"""

import contextvars
from contextlib import contextmanager

_watch = contextvars.ContextVar("integrations_outbound_watch", default=None)


class Watch:
    """`started`: a call was handed to its transport, so a request may have reached the provider."""

    __slots__ = ("started",)

    def __init__(self):
        self.started = False


@contextmanager
def watch():
    """Within the block, note whether any traced call got as far as its transport."""
    current = Watch()
    token = _watch.set(current)
    try:
        yield current
    finally:
        _watch.reset(token)


def call_started():
    """Called by the tracer when a call is handed to its transport."""
    current = _watch.get()
    if current is not None:
        current.started = True
