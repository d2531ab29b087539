from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")
    default_auto_field = "django.db.models.BigAutoField"
    # code -> dotted path of the adapter class; every app declares its own (see integrations.adapters).
    adapters = {}

    def ready(self):
        from django.db.models.signals import post_migrate

        from . import schedule

        post_migrate.connect(schedule.install_after_migrate, sender=self)
