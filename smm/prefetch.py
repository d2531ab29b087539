"""`Prefetcher`: provider calls made one after another on a helper thread, ahead of the caller.

The SMM poll (smm.polling), which asks a panel about many batches of orders, would otherwise
leave the network idle while it writes what it got, and the panel idle while it waits for us. The
helper makes the calls strictly one at a time, in order, as a plain loop would (the panel sees no
more load than before), while the caller reads, applies and writes the answers it already has. It
runs ahead by at most `depth` answers, so memory stays bounded when the caller is the slower side.

The helper thread must not touch the database (Django's connections are per thread): give it the
network part only, on a client whose call records are held for the caller (`polling.HeldCalls`).
"""

import queue
import threading

_END = object()


class Prefetcher:
    """`put(item)` queues a call of `fn(item)`; `get()` returns the answers in the order queued,
    raising the call's exception instead if it failed (the helper makes no call after a failure).
    Use as a context manager: leaving the block stops the helper, after the call in flight."""

    def __init__(self, fn, *, depth, name="prefetch"):
        self._fn = fn
        self._todo = queue.SimpleQueue()
        self._done = queue.Queue(maxsize=max(1, depth))
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def put(self, item):
        if self._thread.ident is None and not self._stopped.is_set():
            self._thread.start()  # on the first call: a job with nothing to ask starts no thread
        self._todo.put(item)

    def ready(self):
        """Whether `get()` would return at once (an answer, or a failure, is waiting)."""
        return not self._done.empty()

    def get(self):
        ok, value = self._done.get()
        if not ok:
            raise value
        return value

    def stop(self):
        """Stop the helper and wait for it: the call in flight ends first (and is logged); answers
        not taken are dropped."""
        self._stopped.set()
        if self._thread.ident is None:  # never started
            return
        self._todo.put(_END)
        while True:
            self._thread.join(timeout=0.01)
            if not self._thread.is_alive():
                return
            try:  # make room, in case the helper waits to hand over an answer
                self._done.get_nowait()
            except queue.Empty:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        while not self._stopped.is_set():
            item = self._todo.get()
            if item is _END or self._stopped.is_set():
                return
            try:
                answer = (True, self._fn(item))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
                self._done.put((False, exc))
                return
            self._done.put(answer)
