"""SMM polling: every open order of a panel asked about in batches of BATCH, the calls made one at
a time on a helper thread ahead of the writes (smm.prefetch), the answers written in bulk with the
calls' log rows (`HeldCalls`)."""

import collections
import json
import sqlite3
import time

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from integrations.tracing import write_records

from .models import FINAL_STATES, OPEN_STATES, SMMOrder
from .panel import BATCH
from .prefetch import Prefetcher
from .providers import refresh_stats

WRITTEN_FIELDS = ("status", "charge", "start_count", "remains", "currency", "error", "completed_at")  # _Polled's order
POLL_FIELDS = [*WRITTEN_FIELDS, "last_checked_at", "updated_at"]


# The poll holds the log rows and counters of its calls and writes them together with the orders'
# updates, one transaction every POLL_FLUSH_CALLS calls or POLL_FLUSH_SECONDS seconds (and at the end,
# also after an error): one commit for many calls instead of three per call.
POLL_FLUSH_CALLS = 20
POLL_FLUSH_SECONDS = 5.0
# ... or sooner, from this many calls, when the next answer is not in yet: the write then costs no
# time, and less is left to write after the last answer.
POLL_IDLE_FLUSH_CALLS = 5


class _Polled:
    """An open order as the poll needs it: ids and the fields the poll writes, as they were read and
    as they are now. Lighter than a model instance (a poll holds pages of thousands)."""

    __slots__ = ("pk", "external_order_id", *WRITTEN_FIELDS, "read")

    # Plain assignments, no loop over the field names: a poll makes a hundred thousand of these on
    # the thread whose Python work delays its own prefetching thread (the interpreter lock).
    def __init__(self, row):
        (self.pk, self.external_order_id, self.status, self.charge, self.start_count, self.remains,
         self.currency, self.error, self.completed_at) = row
        self.read = row[2:]

    def can_move_to(self, new):
        return SMMOrder.machine.can_move(self.status, new)

    @property
    def changed(self):
        return (self.status, self.charge, self.start_count, self.remains, self.currency, self.error,
                self.completed_at) != self.read


class HeldCalls:
    """The records of a client's calls, held (instead of one transaction each) until `flush()`
    writes them, in the caller's transaction; whatever is held when the block ends is written, also
    after an error. A deque, so that the poll's fetching thread appends while the poll takes."""

    def __init__(self, client):
        self.tracer = client.tracer
        self.held = collections.deque()

    def __enter__(self):
        self.tracer.sink = self.held.append
        return self

    def __exit__(self, *exc):
        try:
            self.flush()
        finally:
            self.tracer.sink = None

    def flush(self):
        # popleft, not a copy and a clear: the fetching thread may append meanwhile.
        return write_records(self.tracer.integration, [self.held.popleft() for _ in range(len(self.held))])


def poll_orders(provider, *, batch=BATCH):
    """Ask the panel about every open order: ceil(N/100) calls, made one at a time; the answers are
    written in bulk, a few calls' worth per transaction, with the calls' log rows."""
    adapter = provider.adapter
    client = adapter.client
    stats = {"checked": 0, "changed": 0, "finished": 0, "errors": 0, "calls": 0}
    pending = []  # (orders, when) polled but not written yet
    flushed_at = time.monotonic()

    def flush():
        nonlocal flushed_at
        with transaction.atomic():
            calls.flush()
            _write_polled(pending)
        pending.clear()
        flushed_at = time.monotonic()

    chunks = _open_chunks(provider, batch)
    queued = collections.deque()  # (chunk, its panel ids) handed to the fetcher, oldest first

    def queue_more(ahead, limit):
        while len(queued) < limit and (chunk := next(chunks, None)):
            ids = [o.external_order_id for o in chunk]
            queued.append((chunk, ids))
            ahead.put(ids)

    with HeldCalls(client) as calls:
        # The calls run on a helper thread, one at a time and in order, up to POLL_FLUSH_CALLS
        # answers ahead: the panel's latency and our own reading, writing and loading of the next
        # page of orders overlap instead of adding up. A panel sees the same single stream of calls
        # as from a plain loop. The thread touches no database: its records go to `calls`.
        with Prefetcher(adapter.fetch_statuses, depth=POLL_FLUSH_CALLS, name="smm-poll") as ahead:
            try:
                queue_more(ahead, 1)  # the first call goes out before the next page is read
                queue_more(ahead, POLL_FLUSH_CALLS)
                while queued:
                    chunk, ids = queued.popleft()
                    answers = adapter.read_statuses(ids, ahead.get())
                    queue_more(ahead, POLL_FLUSH_CALLS)
                    stats["calls"] += 1
                    now = timezone.now()
                    _apply_answers(chunk, answers, now, stats)
                    pending.append((chunk, now))
                    if (
                        len(pending) >= POLL_FLUSH_CALLS
                        or time.monotonic() - flushed_at >= POLL_FLUSH_SECONDS
                        or (len(pending) >= POLL_IDLE_FLUSH_CALLS and not ahead.ready())
                    ):
                        flush()
            finally:
                ahead.stop()  # after an error: the call in flight ends, and is logged, first
                flush()
    refresh_stats(provider)
    return stats


def _open_chunks(provider, batch):
    """The provider's open orders in batches, read a page at a time in id order. The first page is
    one batch, so that the first call goes out at once; the later ones are read while a call is in
    flight."""
    query = (
        SMMOrder.objects.filter(provider=provider, status__in=OPEN_STATES)
        .exclude(external_order_id="")
        .order_by("pk")
        .values_list("pk", "external_order_id", *WRITTEN_FIELDS)
    )
    after, size = 0, batch
    while True:
        page = [_Polled(row) for row in query.filter(pk__gt=after)[:size]]
        for start in range(0, len(page), batch):
            yield page[start : start + batch]
        if len(page) < size:
            return
        after, size = page[-1].pk, batch * POLL_FLUSH_CALLS


def _apply_answers(chunk, answers, now, stats):
    for order in chunk:
        answer = answers.get(order.external_order_id)
        stats["checked"] += 1
        if answer is None or answer.status is None:
            order.error = (answer.error if answer else "")[:2000]
            stats["errors"] += 1
            continue
        if answer.status != order.status:
            if not order.can_move_to(answer.status):
                continue
            order.status = answer.status
            stats["changed"] += 1
            if answer.status in FINAL_STATES:
                order.completed_at = now
                stats["finished"] += 1
        if answer.charge is not None:
            order.charge = answer.charge
        order.start_count = answer.start_count if answer.start_count is not None else order.start_count
        order.remains = answer.remains if answer.remains is not None else order.remains
        order.currency = answer.currency or order.currency
        order.error = ""


# UPDATE … RETURNING: PostgreSQL, and SQLite from 3.35.
_SQLITE_RETURNING = sqlite3.sqlite_version_info >= (3, 35)


def _write_polled(batches):
    """Write polled orders, given as (orders, when checked) batches: one UPDATE for the orders whose
    fields changed, one that only stamps the check time on the others (while they are open). Django's
    bulk_update builds a CASE per field and row, which costs more CPU than the panel's answer; a JSON
    parameter joined in SQL does not.

    The changed orders are written as a compare-and-set, like SMMOrder.machine.move: only where the
    row's status is still the one the poll read (a row finished or resolved meanwhile is left alone),
    and a new status only where SMMOrder.TRANSITIONS allows it from there (checked by _apply_answers).
    The orders whose status did move get their history rows, in one INSERT."""
    if connection.vendor not in ("postgresql", "sqlite"):  # pragma: no cover - other backends
        moves = []
        for orders, now in batches:
            for o in orders:
                fields = {f: getattr(o, f) for f in WRITTEN_FIELDS}
                read_status = o.read[0]
                done = SMMOrder.objects.filter(pk=o.pk, status=read_status).update(
                    last_checked_at=now, updated_at=now, **fields
                )
                if done and o.status != read_status:
                    moves.append((o.pk, read_status, o.status))
        _record_moves(moves)
        return
    postgres = connection.vendor == "postgresql"

    def stamp(value):
        if value is None:
            return None
        return value.isoformat() if postgres else connection.ops.adapt_datetimefield_value(value)

    changed, unchanged, ranges = [], [], []
    for orders, now in batches:
        if not orders:
            continue
        ranges.append((max(o.pk for o in orders), stamp(now)))
        for order in orders:
            if order.changed:
                changed.append((order, now))
            else:
                unchanged.append(order.pk)
    table = connection.ops.quote_name(SMMOrder._meta.db_table)
    open_states = ", ".join(f"'{state}'" for state in OPEN_STATES)
    with connection.cursor() as cursor:
        if unchanged:
            # Batches are consecutive slices of the orders sorted by id: the check time by id range.
            ranges.sort()
            case = "CASE " + " ".join("WHEN id <= %s THEN %s" for _ in ranges) + " END"
            if postgres:
                case = case.replace("THEN %s", "THEN %s::timestamptz")
            case_params = [value for pair in ranges for value in pair]
            # The ids as one text (joined in C; psycopg's array dumping costs a Python call per id)
            # made bigint[]: small ids sent as smallint[] would compare across types, which
            # PostgreSQL cannot hash, so each row would scan the whole array.
            where = ("id = ANY(string_to_array(%s, ',')::bigint[])" if postgres
                     else "id IN (SELECT value FROM json_each(%s))")
            cursor.execute(
                f"UPDATE {table} SET last_checked_at = {case}, updated_at = {case} "
                f"WHERE {where} AND status IN ({open_states})",
                [*case_params, *case_params, ",".join(map(str, unchanged)) if postgres else json.dumps(unchanged)],
            )
        if not changed:
            return
        rows = [{"id": o.pk, "read_status": o.read[0], "status": o.status,
                 "charge": None if o.charge is None else str(o.charge),
                 "start_count": o.start_count, "remains": o.remains, "currency": o.currency or "",
                 "error": o.error or "", "completed_at": stamp(o.completed_at), "checked": stamp(now)}
                for o, now in changed]
        # The orders whose status the answer moves, and whether the UPDATE says which rows it wrote.
        moving = [o for o, _now in changed if o.status != o.read[0]]
        returning = bool(moving) and (postgres or _SQLITE_RETURNING)
        if moving and not returning:  # pragma: no cover - SQLite before 3.35
            # The flush's transaction keeps other writers out until the UPDATE (SQLite has one writer).
            cursor.execute(
                f"SELECT id FROM {table} WHERE id IN (SELECT json_extract(value, '$.id') FROM json_each(%s) "
                f"WHERE json_extract(value, '$.read_status') = {table}.status)",
                [json.dumps([{"id": o.pk, "read_status": o.read[0]} for o in moving])],
            )
            written = {pk for (pk,) in cursor.fetchall()}
        columns = WRITTEN_FIELDS
        if postgres:
            sets = ", ".join(f"{c} = v.{c}" for c in columns)
            cursor.execute(
                f"UPDATE {table} AS o SET {sets}, last_checked_at = v.checked, updated_at = v.checked "
                "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, read_status text, status text, charge numeric, "
                "start_count bigint, remains bigint, currency text, error text, completed_at timestamptz, "
                "checked timestamptz) "
                # `o.id = ANY(ids)` lets the planner go by primary key instead of the open-orders index.
                "WHERE o.id = v.id AND o.id = ANY(string_to_array(%s, ',')::bigint[]) AND o.status = v.read_status"
                + (" RETURNING o.id" if returning else ""),
                [json.dumps(rows), ",".join(str(o.pk) for o, _ in changed)],
            )
        else:
            sets = ", ".join(f"{c} = json_extract(v.value, '$.{c}')" for c in columns)
            cursor.execute(
                f"UPDATE {table} SET {sets}, last_checked_at = json_extract(v.value, '$.checked'), "
                f"updated_at = json_extract(v.value, '$.checked') FROM json_each(%s) AS v "
                f"WHERE {table}.id = json_extract(v.value, '$.id') "
                f"AND {table}.status = json_extract(v.value, '$.read_status')"
                + (f" RETURNING {table}.id" if returning else ""),
                [json.dumps(rows)],
            )
        if not moving:
            return
        if returning:
            written = {pk for (pk,) in cursor.fetchall()}
    _record_moves([(o.pk, o.read[0], o.status) for o in moving if o.pk in written])


def _record_moves(moves):
    """The history rows of the orders whose status the poll moved (one INSERT)."""
    if moves:
        SMMOrder.machine.record_many(SMMOrder, moves, reason=gettext("Status from the panel's poll."))
