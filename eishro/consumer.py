"""The worker's consumer: Celery's own, woken whenever work is queued for its loop.

Celery does not acknowledge a finished task in the pool thread that ran it: kombu's channels are
not thread-safe, so the acknowledgement (late: CELERY_TASK_ACKS_LATE) is queued with `call_soon`
for the consumer's loop. Nothing told the loop, which meanwhile waited on the broker: on Redis in the
event loop's poll, with no fetch pending once the prefetch limit was reached (--concurrency
unacknowledged messages, CELERY_WORKER_PREFETCH_MULTIPLIER = 1), until the next timer (the
worker's heartbeat, 2 s; without it the 10 s restore of unacknowledged messages); on the file
broker in Celery's blocking loop, which runs queued operations only between two 2 s waits for a
message. So a threads worker ran --concurrency tasks per 2 or 10 s however many were waiting
(celery/celery#6941); prefork on Redis was spared only because its children answer on pipes the
event loop watches.

Here every `call_soon` also wakes the loop: a byte on a pipe the event loop watches, or, for a
transport polled by the blocking loop, its `wake()` when it has one (eishro.broker's does).
Selected in settings with CELERY_WORKER_CONSUMER, so that any worker of this app gets it whatever
its pool or command line.
"""

import os
from contextlib import suppress

from celery.worker.consumer import Consumer as CeleryConsumer


class Consumer(CeleryConsumer):
    _wake_fds = None

    def call_soon(self, p, *args, **kwargs):
        p = super().call_soon(p, *args, **kwargs)
        self.wake()
        return p

    def wake(self):
        """Make the consumer's loop run what was queued for it now (safe from any thread)."""
        if self.hub is not None:
            fds = self._wake_fds
            if fds is not None:
                try:
                    os.write(fds[1], b"\0")
                except BlockingIOError:
                    pass  # the pipe is full of wake-ups already: the loop is bound to look
                except OSError:
                    pass  # closed by a shutdown in the meantime: there is no loop left to wake
            return
        connection = self.connection
        wake = getattr(getattr(connection, "transport", None), "wake", None) if connection is not None else None
        if wake is not None:
            wake()

    def register_with_event_loop(self, hub):
        if self._wake_fds is None:
            self._wake_fds = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        # Again after each reconnection: the hub forgets its readers when it is reset.
        hub.add_reader(self._wake_fds[0], self._woken)
        super().register_with_event_loop(hub)

    def _woken(self):
        # Only to empty the pipe: the hub runs what call_soon queued at the top of its next round.
        try:
            while os.read(self._wake_fds[0], 4096):
                pass
        except (BlockingIOError, TypeError):
            pass

    def shutdown(self):
        try:
            super().shutdown()
        finally:
            fds, self._wake_fds = self._wake_fds, None
            if fds is not None:
                if self.hub is not None:
                    with suppress(Exception):  # a hub already closed has forgotten it anyway
                        self.hub.remove_reader(fds[0])
                for fd in fds:
                    os.close(fd)
