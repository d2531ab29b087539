"""The permission to change a provider's URL while keeping its stored credentials
(integrations.permissions.KEEP_CREDENTIALS_ON_URL_CHANGE); without it, the key is re-entered."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("integrations", "0006_log_methods_of_every_transport")]

    operations = [
        migrations.AlterModelOptions(
            name="externalintegration",
            options={
                "ordering": ["kind", "priority", "display_name"],
                "permissions": [
                    ("change_provider_url_keep_key", "Can change a provider's URL and keep its stored credentials")
                ],
                "verbose_name": "provider",
                "verbose_name_plural": "providers",
            },
        ),
    ]
