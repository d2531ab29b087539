"""The seed's fallback table moves from monitoring to the core (`integrations.selection`), keeping
its database table, and its rows are installed here rather than only by the demo data."""

from django.db import migrations, models

# The seed's table as this migration installs it (integrations.selection.SEED_TABLE says the same
# today): a migration does what it did when it was written, whatever the code says later.
SEED_TABLE = {
    "moamalat": ("cash_on_delivery", "bank_transfer"),
    "amyal": ("darbsail", "vanex"),
    "almadar": ("libyana", "manual_verification"),
}


def install_seed_table(apps, schema_editor):
    """The seed's rows for each provider code that has none; a code operators configured is kept."""
    Fallback = apps.get_model("integrations", "Fallback")
    rows = Fallback.objects.using(schema_editor.connection.alias)
    for code, alternatives in SEED_TABLE.items():
        if rows.filter(code=code).exists():
            continue
        rows.bulk_create(
            [Fallback(code=code, alternative=alt, position=pos) for pos, alt in enumerate(alternatives, start=1)]
        )


def move_content_type(apps, schema_editor, old="monitoring", new="integrations"):
    """Permissions granted on the table (and its admin history) follow it to its new app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    types = ContentType.objects.using(schema_editor.connection.alias)
    if not types.filter(app_label=new, model="fallback").exists():
        types.filter(app_label=old, model="fallback").update(app_label=new)


def move_content_type_back(apps, schema_editor):
    move_content_type(apps, schema_editor, old="integrations", new="monitoring")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("integrations", "0003_state_transition"),
        ("monitoring", "0002_alert_attempts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Fallback",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        (
                            "code",
                            models.CharField(
                                help_text="Adapter code of the provider, e.g. moamalat.",
                                max_length=50,
                                verbose_name="provider",
                            ),
                        ),
                        (
                            "alternative",
                            models.CharField(
                                help_text="Adapter code or method offered instead, e.g. cash_on_delivery.",
                                max_length=50,
                                verbose_name="alternative",
                            ),
                        ),
                        ("position", models.PositiveSmallIntegerField(default=1, verbose_name="order")),
                        ("enabled", models.BooleanField(default=True, verbose_name="enabled")),
                    ],
                    options={
                        "verbose_name": "fallback",
                        "verbose_name_plural": "fallbacks",
                        "db_table": "monitoring_fallback",
                        "ordering": ["code", "position", "alternative"],
                        "constraints": [
                            models.UniqueConstraint(fields=("code", "alternative"), name="fallback_unique_pair")
                        ],
                    },
                ),
            ],
            # The table exists already: monitoring's 0001 created it.
            database_operations=[],
        ),
        migrations.RunPython(install_seed_table, migrations.RunPython.noop),
        migrations.RunPython(move_content_type, move_content_type_back),
    ]
