"""The seed's banks and ways to pay (payments.reference): rows that exist are kept as operators edited
them, so the migration is safe on a database that has them already."""

from django.db import migrations


def install(apps, schema_editor):
    from payments.reference import install as install_reference

    install_reference(apps.get_model("payments", "Bank"), apps.get_model("payments", "PaymentMethod"),
                      using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
