"""The checkout page's address of a payment: a random UUID, given to existing rows one by one."""

import uuid

from django.db import migrations, models


def fill(apps, schema_editor):
    Payment = apps.get_model("payments", "Payment")
    rows = Payment.objects.using(schema_editor.connection.alias)
    for pk in rows.filter(public_id__isnull=True).values_list("pk", flat=True).iterator():
        rows.filter(pk=pk).update(public_id=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_seed_banks_and_methods")]

    operations = [
        migrations.AddField("payment", "public_id", models.UUIDField(null=True, editable=False)),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AlterField("payment", "public_id", models.UUIDField(
            default=uuid.uuid4, editable=False, unique=True, verbose_name="public id")),
    ]
