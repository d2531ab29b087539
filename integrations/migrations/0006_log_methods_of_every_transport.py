"""The log table's CHECK on `method` listed HTTP's methods only (the seed's SQL); FTP commands,
SMTP and WebSocket operations are logged too now. On PostgreSQL, where the table is created by hand
(see integrations.partitions), the check applies to HTTP rows only."""

from django.db import migrations

HTTP_METHODS = "('GET','POST','PUT','DELETE','PATCH','HEAD','OPTIONS')"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE integration_logs DROP CONSTRAINT IF EXISTS integration_logs_method_check")
    schema_editor.execute(
        "ALTER TABLE integration_logs ADD CONSTRAINT integration_logs_http_method_check "
        f"CHECK (transport NOT IN ('http', 'soap', 's3') OR method IN {HTTP_METHODS})"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("ALTER TABLE integration_logs DROP CONSTRAINT IF EXISTS integration_logs_http_method_check")
    schema_editor.execute(
        f"ALTER TABLE integration_logs ADD CONSTRAINT integration_logs_method_check CHECK (method IN {HTTP_METHODS})"
    )


class Migration(migrations.Migration):
    dependencies = [("integrations", "0005_webhook_hardening")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
