"""Webhooks (issue 11): the body as received is kept only encrypted (`raw_body`), `body` becomes a
redacted copy for display, and a keyed hash of the body lets the database refuse the same body twice
within the tolerance window. Bodies of events accepted before this migration move to `raw_body`,
and their shown copy is redacted."""

from django.db import migrations, models

import integrations.crypto

BATCH = 500


def _secrets(integration):
    # The adapter's list of secret fields is code, not schema: every text credential counts here.
    credentials = (integration.credentials if integration else None) or {}
    return tuple(v for v in credentials.values() if isinstance(v, str) and len(v) >= 4)


def encrypt_and_redact(apps, schema_editor):
    from integrations.redaction import redact_body

    WebhookEvent = apps.get_model("integrations", "WebhookEvent")
    rows = (
        WebhookEvent.objects.using(schema_editor.connection.alias)
        .exclude(state="rejected")
        .exclude(body="")
        .select_related("integration")
    )
    batch = []
    for event in rows.iterator(chunk_size=BATCH):
        event.raw_body = event.body
        event.body = redact_body(event.body, "", _secrets(event.integration)) or ""
        batch.append(event)
        if len(batch) >= BATCH:
            WebhookEvent.objects.using(schema_editor.connection.alias).bulk_update(batch, ["raw_body", "body"])
            batch = []
    if batch:
        WebhookEvent.objects.using(schema_editor.connection.alias).bulk_update(batch, ["raw_body", "body"])


def restore_clear_bodies(apps, schema_editor):
    WebhookEvent = apps.get_model("integrations", "WebhookEvent")
    rows = WebhookEvent.objects.using(schema_editor.connection.alias).exclude(state="rejected")
    batch = []
    for event in rows.iterator(chunk_size=BATCH):
        if event.raw_body:
            event.body = event.raw_body
            batch.append(event)
        if len(batch) >= BATCH:
            WebhookEvent.objects.using(schema_editor.connection.alias).bulk_update(batch, ["body"])
            batch = []
    if batch:
        WebhookEvent.objects.using(schema_editor.connection.alias).bulk_update(batch, ["body"])


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0004_fallback_table"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="body_hash",
            field=models.CharField(blank=True, max_length=64, null=True, verbose_name="body hash"),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="content_type",
            field=models.CharField(blank=True, default="", max_length=100, verbose_name="content type"),
        ),
        migrations.AddField(
            model_name="webhookevent",
            name="raw_body",
            field=integrations.crypto.EncryptedTextField(
                blank=True, default="", verbose_name="body as received (encrypted)"
            ),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="body",
            field=models.TextField(blank=True, verbose_name="body (redacted)"),
        ),
        migrations.AddConstraint(
            model_name="webhookevent",
            constraint=models.UniqueConstraint(
                condition=models.Q(("body_hash__isnull", False)),
                fields=("integration", "body_hash"),
                name="webhook_body_unique_in_window",
            ),
        ),
        migrations.RunPython(encrypt_and_redact, restore_clear_bodies, elidable=True),
    ]
