from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from integrations.crypto import DecryptionError, rotate
from integrations.models import ExternalIntegration, WebhookEvent

# Every column holding Fernet tokens: a key can be retired only once none of them needs it.
ENCRYPTED_COLUMNS = [
    (ExternalIntegration, "credentials"),
    (WebhookEvent, "raw_body"),
]
BATCH = 500


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential (and every webhook body kept as received) with the newest "
        "key in FIELD_ENCRYPTION_KEYS. Put the new key first, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        quoted = connection.ops.quote_name
        counts = {}
        try:
            with transaction.atomic(), connection.cursor() as cur:
                for model, column in ENCRYPTED_COLUMNS:
                    table, pk = quoted(model._meta.db_table), quoted(model._meta.pk.column)
                    counts[model], last = 0, None
                    while True:
                        # Raw column values (the field would decrypt them), a page at a time: webhook
                        # bodies can be many and large.
                        after = f"AND {pk} > %s " if last is not None else ""
                        cur.execute(
                            f"SELECT {pk}, {quoted(column)} FROM {table} "
                            f"WHERE {quoted(column)} IS NOT NULL AND {quoted(column)} <> '' {after}"
                            f"ORDER BY {pk} LIMIT {BATCH}",
                            [last] if last is not None else [],
                        )
                        rows = cur.fetchall()
                        for row_pk, token in rows:
                            cur.execute(f"UPDATE {table} SET {quoted(column)} = %s WHERE {pk} = %s",
                                        [rotate(token), row_pk])
                        counts[model] += len(rows)
                        if len(rows) < BATCH:
                            break
                        last = rows[-1][0]
        except DecryptionError as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        self.stdout.write(self.style.SUCCESS(
            f"Re-encrypted the credentials of {counts[ExternalIntegration]} provider(s) "
            f"and {counts[WebhookEvent]} webhook body(ies)."
        ))
