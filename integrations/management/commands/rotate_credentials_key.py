from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from integrations.crypto import DecryptionError, rotate
from integrations.models import ExternalIntegration


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored credential with the newest key in FIELD_ENCRYPTION_KEYS. "
        "Put the new key first, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        table = ExternalIntegration._meta.db_table
        quoted = connection.ops.quote_name
        count = 0
        try:
            with transaction.atomic(), connection.cursor() as cur:
                # Raw column values: the field would decrypt them, and we want the tokens themselves.
                cur.execute(
                    f"SELECT {quoted('id')}, {quoted('credentials')} FROM {quoted(table)} "
                    f"WHERE {quoted('credentials')} IS NOT NULL"
                )
                for pk, token in cur.fetchall():
                    cur.execute(
                        f"UPDATE {quoted(table)} SET {quoted('credentials')} = %s WHERE {quoted('id')} = %s",
                        [rotate(token), pk],
                    )
                    count += 1
        except DecryptionError as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the credentials of {count} provider(s)."))
