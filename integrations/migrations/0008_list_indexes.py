"""Indexes of the list orderings across providers (issue 12, point 16): logs (the API and the
admin), webhook events and state transitions (the admin). On PostgreSQL `integration_logs` is
partitioned (integrations.partitions): an index created on the parent is created on every partition,
and on each partition made later."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0007_provider_url_keep_key_permission")]

    operations = [
        migrations.AddIndex(
            model_name="integrationlog",
            index=models.Index(fields=["-started_at", "-id"], name="idx_integration_logs_recent"),
        ),
        migrations.AddIndex(
            model_name="statetransition",
            index=models.Index(fields=["-created_at", "-id"], name="idx_state_transition_recent"),
        ),
        migrations.AddIndex(
            model_name="webhookevent",
            index=models.Index(fields=["-received_at", "-id"], name="webhook_recent"),
        ),
    ]
