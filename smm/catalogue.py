"""SMM catalogue: a panel's services, fetched and upserted into `SMMService` in a constant number
of queries whatever the catalogue's size."""

import logging

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from integrations.errors import ProviderError, public_message

from .models import SMMProvider, SMMService

logger = logging.getLogger("smm")

SERVICE_COLUMNS = ("service_id", "name", "type", "category", "rate", "min_quantity", "max_quantity",
                   "refill", "cancel", "dripfeed", "description")
UPDATED_COLUMNS = (*SERVICE_COLUMNS[1:], "is_active", "last_seen_at", "updated_at")


def _upsert_services(provider, rows, now):
    """Insert-or-update the whole catalogue with a constant number of statements whatever its size,
    inside the caller's transaction."""
    table = connection.ops.quote_name(SMMService._meta.db_table)
    cols = ", ".join(["provider_id", *SERVICE_COLUMNS, "is_active", "last_seen_at", "created_at", "updated_at"])
    updates = ", ".join(f"{c} = excluded.{c}" for c in UPDATED_COLUMNS)
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY into a temporary table, then one INSERT … ON CONFLICT from it: half the time of
            # expanding a JSON document of the catalogue (jsonb_to_recordset) in the INSERT itself.
            types = ("service_id text, name text, type text, category text, rate numeric, min_quantity bigint, "
                     "max_quantity bigint, refill boolean, cancel boolean, dripfeed boolean, description text")
            cursor.execute(f"CREATE TEMPORARY TABLE smm_catalogue_in ({types}) ON COMMIT DROP")
            with cursor.cursor.copy(f"COPY smm_catalogue_in ({', '.join(SERVICE_COLUMNS)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row([getattr(r, c) for c in SERVICE_COLUMNS])
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
            cursor.executemany(
                f"INSERT INTO {table} ({cols}) VALUES (%s, {', '.join(['%s'] * len(SERVICE_COLUMNS))}, 1, %s, %s, %s) "
                f"ON CONFLICT (provider_id, service_id) DO UPDATE SET {updates}",
                [(provider.pk, r.service_id, r.name, r.type, r.category, str(r.rate), r.min_quantity, r.max_quantity,
                  r.refill, r.cancel, r.dripfeed, r.description, stamp, stamp, stamp) for r in rows],
            )
        else:  # pragma: no cover - other backends: batched, still correct
            SMMService.objects.bulk_create(
                [SMMService(provider=provider, is_active=True, last_seen_at=now,
                            **{c: getattr(r, c) for c in SERVICE_COLUMNS}) for r in rows],
                update_conflicts=True, unique_fields=["provider", "service_id"], update_fields=list(UPDATED_COLUMNS),
            )


def sync_services(provider):
    """Fetch the panel's catalogue and upsert it; services the panel no longer lists are switched off
    (kept for the orders that reference them). A constant number of queries whatever the size."""
    try:
        rows = provider.adapter.services()
    except ProviderError as exc:
        # The panel may have quoted its key back: masked before the error is stored or goes on (the
        # API, the admin's message, a task's log). The merchant reads the provider's message, never
        # the raw fault or answer (the call's log row keeps those).
        exc.mask(provider.integration.secret_values)
        SMMProvider.objects.filter(pk=provider.pk).update(last_sync_error=public_message(exc)[:2000])
        raise
    unique = list({r.service_id: r for r in rows}.values())
    now = timezone.now()
    with transaction.atomic():
        before = SMMService.objects.filter(provider=provider).count()
        if unique:
            _upsert_services(provider, unique, now)
        deactivated = SMMService.objects.filter(provider=provider, is_active=True, last_seen_at__lt=now).update(
            is_active=False, updated_at=now
        )
        counts = SMMService.objects.filter(provider=provider).aggregate(
            total=Count("id"), active=Count("id", filter=Q(is_active=True))
        )
        SMMProvider.objects.filter(pk=provider.pk).update(
            services_count=counts["active"], last_sync_at=now, last_sync_error="", updated_at=now
        )
    provider.services_count, provider.last_sync_at, provider.last_sync_error = counts["active"], now, ""
    result = {"received": len(unique), "created": counts["total"] - before,
              "updated": len(unique) - (counts["total"] - before), "deactivated": deactivated,
              "active": counts["active"]}
    logger.info("SMM sync of %s: %s", provider, result)
    return result
