"""SMM catalogue: a panel's services, fetched and upserted into `SMMService` in a constant number
of queries whatever the catalogue's size."""

import logging

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from integrations.errors import ProviderError, public_message

from .models import SMMProvider, SMMService
from .panel import PanelService
from .polling import HeldCalls

logger = logging.getLogger("smm")

# The adapter's rows are tuples in this order (smm.panel.PanelService): written as they are.
SERVICE_COLUMNS = PanelService._fields
UPDATED_COLUMNS = (*SERVICE_COLUMNS[1:], "is_active", "last_seen_at", "updated_at")
STAMP_COLUMNS = ("is_active", "last_seen_at", "created_at", "updated_at")


def _column_types(*columns):
    """PostgreSQL's names of the columns' types, for a binary COPY (no text for the server to parse:
    a third less time than the text format). The values are checked against the columns' lengths,
    precision and constraints as in any other INSERT."""
    fields = {f.column: f for f in SMMService._meta.concrete_fields}
    return [fields[c].db_type(connection).split("(")[0] for c in columns]


def _upsert_services(provider, rows, now, *, empty=False):
    """Insert-or-update the whole catalogue with a constant number of statements whatever its size,
    inside the caller's transaction. `empty`: the provider has no services and the caller holds its
    row locked, so no other sync can add any before this transaction ends."""
    table = connection.ops.quote_name(SMMService._meta.db_table)
    cols = ", ".join(["provider_id", *SERVICE_COLUMNS, *STAMP_COLUMNS])
    updates = ", ".join(f"{c} = excluded.{c}" for c in UPDATED_COLUMNS)
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and empty:
            # A first sync: nothing to conflict with, so COPY straight into the table (a third of
            # the time of the staging table and its INSERT … ON CONFLICT below).
            pk = provider.pk
            with cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(_column_types("provider_id", *SERVICE_COLUMNS, *STAMP_COLUMNS))
                for r in rows:
                    copy.write_row((pk, *r, True, stamp, stamp, stamp))
        elif connection.vendor == "postgresql":
            # COPY into a temporary table of the same columns, then one INSERT … ON CONFLICT from
            # it: half the time of expanding a JSON document of the catalogue (jsonb_to_recordset)
            # in the INSERT itself.
            cursor.execute(f"CREATE TEMPORARY TABLE smm_catalogue_in ON COMMIT DROP AS "
                           f"SELECT {', '.join(SERVICE_COLUMNS)} FROM {table} WITH NO DATA")
            with cursor.cursor.copy(f"COPY smm_catalogue_in ({', '.join(SERVICE_COLUMNS)}) FROM STDIN "
                                    f"(FORMAT BINARY)") as copy:
                copy.set_types(_column_types(*SERVICE_COLUMNS))
                for r in rows:
                    copy.write_row(r)
            cursor.execute(
                f"INSERT INTO {table} ({cols}) "
                f"SELECT %s, {', '.join('x.' + c for c in SERVICE_COLUMNS)}, true, %s, %s, %s "
                f"FROM smm_catalogue_in AS x "
                f"ON CONFLICT (provider_id, service_id) DO UPDATE SET {updates}",
                [provider.pk, stamp, stamp, stamp],
            )
        elif connection.vendor == "sqlite":
            # One prepared statement run per row by sqlite3 in C: cheaper than json_each with a
            # json_extract per column, each of which parses the row's JSON text again.
            # The adapter's values are plain str, int, bool and a Decimal rate (stored as text by
            # Django's SQLite backend): no per-field get_db_prep_save, which cost more than the insert.
            pk = provider.pk
            cursor.executemany(
                f"INSERT INTO {table} ({cols}) VALUES (%s, {', '.join(['%s'] * len(SERVICE_COLUMNS))}, 1, %s, %s, %s) "
                f"ON CONFLICT (provider_id, service_id) DO UPDATE SET {updates}",
                [(pk, sid, name, kind, category, str(rate), *rest, stamp, stamp, stamp)
                 for sid, name, kind, category, rate, *rest in rows],
            )
        else:  # pragma: no cover - other backends: batched, still correct
            SMMService.objects.bulk_create(
                [SMMService(provider=provider, is_active=True, last_seen_at=now, **r._asdict()) for r in rows],
                update_conflicts=True, unique_fields=["provider", "service_id"], update_fields=list(UPDATED_COLUMNS),
            )


def _lock_and_count(provider):
    """The provider's number of services, its row locked until the transaction ends (FOR NO KEY
    UPDATE: orders referencing it are not held up): two syncs of one panel take turns, so the
    count stays true and a first sync may load without conflict handling. The count is a statement
    of its own, after the lock: one waiting for the lock would count with the snapshot it took
    before waiting, and miss what the other sync committed."""
    list(SMMProvider.objects.select_for_update(no_key=True).filter(pk=provider.pk).values_list("pk"))
    return SMMService.objects.filter(provider=provider).count()


def sync_services(provider):
    """Fetch the panel's catalogue and upsert it; services the panel no longer lists are switched off
    (kept for the orders that reference them). A constant number of queries whatever the size."""
    # The call's log row is held and written in the sync's own transaction (one commit, not two);
    # after a failure it is written when the block ends.
    adapter = provider.adapter
    with HeldCalls(adapter.client) as calls:
        try:
            rows = adapter.services()
        except ProviderError as exc:
            # The panel may have quoted its key back: masked before the error is stored or goes on
            # (the API, the admin's message, a task's log). The merchant reads the provider's
            # message, never the raw fault or answer (the call's log row keeps those).
            exc.mask(provider.integration.secret_values)
            SMMProvider.objects.filter(pk=provider.pk).update(last_sync_error=public_message(exc)[:2000])
            raise
        unique = list({r.service_id: r for r in rows}.values())
        now = timezone.now()
        with transaction.atomic():
            before = _lock_and_count(provider)
            if unique:
                _upsert_services(provider, unique, now, empty=before == 0)
            deactivated = SMMService.objects.filter(provider=provider, is_active=True, last_seen_at__lt=now).update(
                is_active=False, updated_at=now
            )
            counts = SMMService.objects.filter(provider=provider).aggregate(
                total=Count("id"), active=Count("id", filter=Q(is_active=True))
            )
            SMMProvider.objects.filter(pk=provider.pk).update(
                services_count=counts["active"], last_sync_at=now, last_sync_error="", updated_at=now
            )
            # Last: the integration row's counters are locked for the least time, and a failure
            # before it leaves the record held, for the end of the block to write.
            calls.flush()
    provider.services_count, provider.last_sync_at, provider.last_sync_error = counts["active"], now, ""
    result = {"received": len(unique), "created": counts["total"] - before,
              "updated": len(unique) - (counts["total"] - before), "deactivated": deactivated,
              "active": counts["active"]}
    logger.info("SMM sync of %s: %s", provider, result)
    return result
