"""`Fallback` now belongs to the core (integrations 0004 took over its table, unchanged)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("monitoring", "0002_alert_attempts"),
        ("integrations", "0004_fallback_table"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Fallback")],
            database_operations=[],
        ),
    ]
