from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")
    default_auto_field = "django.db.models.BigAutoField"
    # code -> dotted path of the adapter class (see integrations.adapters).
    adapters = {}

    def load_demo(self, merchant=None, stdout=None):
        """Seed the fallback table and the alert routing defaults (idempotent)."""
        from .alerts import seed_routes
        from .fallbacks import seed_defaults

        fallbacks, routes = seed_defaults(), seed_routes()
        if stdout and (fallbacks or routes):
            stdout.write(f"Monitoring: {fallbacks} fallback(s), {routes} alert route(s) created.\n")
