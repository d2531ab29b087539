"""Indexes of the order lists' orderings and filters (issue 12, point 16): the merchant's list, by
status and by provider, and the list of every order (staff, the admin), each ending with the id so
that a keyset position (integrations.paging) is a range of the index. The status index gains the id."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("smm", "0004_provider_archived_stats"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(model_name="smmorder", name="smm_order_owner_status"),
        migrations.AddIndex(
            model_name="smmorder",
            index=models.Index(fields=["owner", "-created_at", "-id"], name="smm_order_owner_recent"),
        ),
        migrations.AddIndex(
            model_name="smmorder",
            index=models.Index(fields=["owner", "status", "-created_at", "-id"], name="smm_order_owner_status"),
        ),
        migrations.AddIndex(
            model_name="smmorder",
            index=models.Index(fields=["provider", "-created_at", "-id"], name="smm_order_provider_recent"),
        ),
        migrations.AddIndex(
            model_name="smmorder",
            index=models.Index(fields=["-created_at", "-id"], name="smm_order_recent"),
        ),
        migrations.AddIndex(
            model_name="smmorder",
            index=models.Index(fields=["status", "-created_at", "-id"], name="smm_order_status_recent"),
        ),
    ]
