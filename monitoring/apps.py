from django.utils.translation import gettext_lazy as _

from integrations.domain import DAY, MINUTE, DomainConfig


class MonitoringConfig(DomainConfig):
    name = "monitoring"
    verbose_name = _("Monitoring")
    default_auto_field = "django.db.models.BigAutoField"
    schedule = {
        "Health checks of every active provider": ("monitoring.tasks.run_health_round", MINUTE, {}),
        "Monitoring alert delivery": ("monitoring.tasks.deliver_alerts", MINUTE, {}),
        "Health check retention": ("monitoring.tasks.prune_health_checks", DAY, {}),
    }
    api_urls = "monitoring.api_urls"

    def load_demo(self, merchant=None, stdout=None):
        """Seed the fallback table and the alert routing defaults (idempotent)."""
        from .alerts import seed_routes
        from .fallbacks import seed_defaults

        fallbacks, routes = seed_defaults(), seed_routes()
        if stdout and (fallbacks or routes):
            stdout.write(f"Monitoring: {fallbacks} fallback(s), {routes} alert route(s) created.\n")
