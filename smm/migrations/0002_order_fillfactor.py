"""Room in each page of smm_smmorder (PostgreSQL only).

Every open order is updated at each poll (every five minutes), almost always only its check time,
which no index covers. With free space left in the page, PostgreSQL rewrites such a row in place
(a HOT update) instead of adding an entry to each of the table's nine indexes. Pages written from
now on keep the room; older ones get it when rewritten (VACUUM FULL or pg_repack)."""

from django.db import migrations


def set_fillfactor(apps, schema_editor, value):
    if schema_editor.connection.vendor == "postgresql":
        table = schema_editor.quote_name(apps.get_model("smm", "SMMOrder")._meta.db_table)
        schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = {int(value)})")


class Migration(migrations.Migration):
    dependencies = [("smm", "0001_initial")]

    operations = [
        migrations.RunPython(
            lambda apps, schema_editor: set_fillfactor(apps, schema_editor, 80),
            lambda apps, schema_editor: set_fillfactor(apps, schema_editor, 100),
        ),
    ]
