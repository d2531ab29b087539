"""The embedded broker: kombu's filesystem transport, made safe to run under load.

kombu's own transport (5.5) creates a message file under its final name and then writes it, so a
consumer polling the folder can claim the file while it is still empty or half written; it then
raises JSONDecodeError inside the worker's consumer loop, which Celery treats as unrecoverable: the
worker exits ("Unrecoverable error: JSONDecodeError"). Any other unreadable file in the queue
folder (a disk filled mid-write, a file copied in by hand) did the same, on every restart, until
someone deleted it.

Here a message is written to a hidden temporary name and renamed into place, so a reader only ever
sees whole files; a file that still cannot be read as a message is moved to the `rejected_folder`
with a warning naming it, and the worker goes on with the next one. The exchange tables in the
control folder are replaced the same way, and every queue binding makes sure its folder's table
has it (see `Channel.queue_bind`: kombu could drop a message without a word). Selected in settings
with `CELERY_BROKER_TRANSPORT = "eishro.broker:Transport"` whenever the broker URL is
`filesystem://`.

For throughput, a consumer lists the queue folder once per batch of messages rather than once per
message, and `Transport.wake()` ends a wait for messages at once (eishro.consumer calls it when a
pool thread has queued a finished task's acknowledgement for the worker's loop).

Transport options, beyond kombu's: `claimed_folder` (where a consumer moves a file to own it; on
the same file system as the queue, so that the move is an atomic rename) and `rejected_folder`;
both default to siblings of `data_folder_in`. The folders are made when first used.
"""

import binascii
import logging
import os
import tempfile
import threading
import uuid
from collections import deque
from queue import Empty
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads
from kombu.utils.objects import cached_property

logger = logging.getLogger(__name__)
_binding = threading.Lock()


def write_atomically(folder, final_name, data: bytes):
    """Write `data` to `folder/final_name` so that no reader ever sees the file partly written.

    The temporary name starts with a dot and ends in `.tmp`: it never matches the `.<queue>.msg`
    pattern consumers look for, and a producer killed half-way leaves only an ignored stray."""
    fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp_path, os.path.join(folder, final_name))
    except BaseException:
        try:
            os.unlink(tmp_path)
        except OSError:
            pass
        raise


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        # kombu's name (time-ordered, then unique), written whole.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        try:
            write_atomically(self.data_folder_out, name, dumps(payload).encode())
        except OSError as exc:
            raise ChannelError(f"Cannot add file {name!r} to {self.data_folder_out!r}: {exc}") from exc

    def _get(self, queue):
        # One listing serves until its names are used up: kombu listed and sorted the whole folder for
        # each message, which with 3,000 waiting halved a worker's rate. A name another consumer took
        # in the meantime fails its claim below and is skipped; one written since waits for the next
        # listing, behind those listed before it, as its later name would put it anyway.
        names = self._listed.get(queue)
        if not names:
            names = self._listed[queue] = deque(self._list(queue))
        while names:
            name = names.popleft()
            claimed = os.path.join(self.claimed_folder, name)
            try:
                # The rename is the claim: of several consumers exactly one succeeds.
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except FileNotFoundError:
                continue  # taken by another consumer in the meantime
            except OSError as exc:  # e.g. claimed_folder on another file system: say so, never skip quietly
                raise ChannelError(f"Cannot claim {name!r} into {self.claimed_folder!r}: {exc}") from exc
            try:
                with open(claimed, "rb") as f:
                    raw = f.read()
            except OSError as exc:
                raise ChannelError(f"Cannot read file {claimed!r} from queue: {exc}") from exc
            try:
                payload = loads(bytes_to_str(raw))
                self._check(payload)
            except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
                self._set_aside(claimed, name, len(raw), exc)
                continue
            if self.store_processed:
                os.makedirs(self.processed_folder, exist_ok=True)
                os.replace(claimed, os.path.join(self.processed_folder, name))
            else:
                os.remove(claimed)
            return payload
        raise Empty()

    def _list(self, queue):
        suffix = f".{queue}.msg"
        try:
            names = os.listdir(self.data_folder_in)
        except FileNotFoundError:
            # Someone cleared var/ under a running worker: recreate rather than die.
            os.makedirs(self.data_folder_in, exist_ok=True)
            return []
        return sorted(name for name in names if name.endswith(suffix))

    @cached_property
    def _listed(self):
        return {}

    def _check(self, payload):
        """Raise if kombu or Celery's consumer would fail on this payload before Celery's own checks
        (which refuse a bad task message with a log line and go on) get to see it."""
        if not isinstance(payload, dict):
            raise TypeError(f"a message is a JSON object, not {type(payload).__name__}")
        properties = payload["properties"]
        if not isinstance(properties, dict) or not isinstance(properties["delivery_tag"], str):
            raise TypeError("properties.delivery_tag must be a string")
        if not isinstance(properties.get("delivery_info", {}), dict):
            raise TypeError("properties.delivery_info must be an object")
        if not isinstance(payload.get("headers") or {}, dict):
            raise TypeError("headers must be an object")
        if not isinstance(payload.get("body") or "", str):
            raise TypeError("body must be a string")
        self.Message(payload, channel=self)  # decodes the body exactly as delivery will

    def _set_aside(self, path, name, size, exc):
        target = os.path.join(self.rejected_folder, name)
        try:
            os.replace(path, target)
        except OSError:
            target = "(could not be moved; deleted)"
            try:
                os.remove(path)
            except OSError:
                pass
        logger.warning("broker: unreadable message %s (%d bytes) set aside in %s: %s", name, size, target, exc)

    def get_table(self, exchange):
        path = self.control_folder / f"{exchange}.exchange"
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise ChannelError(f"Cannot open {path}: {exc}") from exc
        try:
            return [filesystem.exchange_queue_t(*entry) for entry in loads(bytes_to_str(raw))]
        except (ValueError, TypeError) as exc:
            # Treated as empty: the next queue declaration writes a whole table again.
            self._set_aside(str(path), path.name, len(raw), exc)
            return []

    def queue_bind(self, queue, exchange=None, routing_key="", arguments=None, **kwargs):
        # kombu records a binding in memory shared by every connection of the process, whatever its
        # folder, then writes the folder's table, and skips the file when memory has it already. So
        # a second folder never got its table, and a thread publishing while another was between the
        # two steps found no table: either way the message was dropped without a word (no route and
        # no dead-letter queue). The file is the truth: every bind makes sure of it, one at a time.
        exchange = exchange or "amq.direct"
        with _binding:
            if not self.state.has_binding(queue, exchange, routing_key):
                return super().queue_bind(queue, exchange, routing_key, arguments, **kwargs)
            meta = self.typeof(exchange).prepare_bind(queue, exchange, routing_key, arguments)
            self._queue_bind(exchange, *meta)

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        self.control_folder.mkdir(parents=True, exist_ok=True)
        entry = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        # Writers take turns on a lock file (the table itself is replaced, so it cannot hold the lock);
        # readers need no lock, as they only ever see a whole table.
        with open(self.control_folder / f".{exchange}.exchange.lock", "ab") as guard:
            filesystem.lock(guard, filesystem.LOCK_EX)
            try:
                table = self.get_table(exchange)
                if entry not in table:
                    write_atomically(self.control_folder, f"{exchange}.exchange", dumps([entry, *table]).encode())
            finally:
                filesystem.unlock(guard)

    @cached_property
    def data_folder_in(self):
        return self._made(super().data_folder_in)

    @cached_property
    def data_folder_out(self):
        return self._made(super().data_folder_out)

    @staticmethod
    def _made(folder):
        os.makedirs(folder, exist_ok=True)
        return folder

    def _folder(self, option, default_name):
        folder = self.transport_options.get(option) or os.path.join(
            os.path.dirname(os.path.abspath(self.data_folder_in)), default_name
        )
        os.makedirs(folder, exist_ok=True)
        return folder

    @cached_property
    def claimed_folder(self):
        return self._folder("claimed_folder", "claimed")

    @cached_property
    def rejected_folder(self):
        return self._folder("rejected_folder", "rejected")


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self._woken = threading.Event()

    def wake(self):
        """End a drain_events() wait early; safe from any thread (see eishro.consumer: a pool thread
        has queued a finished task's acknowledgement for the loop that is waiting here)."""
        self._woken.set()

    def drain_events(self, connection, timeout=None):
        # kombu's loop, but the sleep between two empty polls ends on wake(): kombu's slept on for the
        # whole timeout Celery gives it (2 s) while the prefetch limit kept every poll empty, and the
        # acknowledgements that would have lifted it waited for that timeout to end.
        started = monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            if self._woken.is_set():
                self._woken.clear()
                return  # no message: the caller runs what was queued for it and calls again
            wait = self.polling_interval or 0
            if timeout is not None:
                left = timeout - (monotonic() - started)
                if left <= 0:
                    raise TimeoutError()  # socket.timeout, which Celery's loop expects
                wait = min(wait, left)
            if self._woken.wait(wait):
                self._woken.clear()
                return
