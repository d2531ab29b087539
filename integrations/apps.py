from django.utils.translation import gettext_lazy as _

from .domain import DAY, MINUTE, DomainConfig


class IntegrationsConfig(DomainConfig):
    name = "integrations"
    verbose_name = _("Integrations")
    default_auto_field = "django.db.models.BigAutoField"
    schedule = {
        "IntegrationLog partitions ahead and retention": ("integrations.tasks.maintain_log_partitions", DAY, {}),
        "Webhook events left unprocessed": ("integrations.tasks.process_received_webhooks", MINUTE, {}),
    }
    # Fault injection and the generic health endpoint shared by every domain's simulators.
    sandbox_urls = "integrations.sandbox"

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import schedule

        post_migrate.connect(schedule.install_after_migrate, sender=self)
