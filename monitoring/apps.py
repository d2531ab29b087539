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
        """The seed's fallback table (if a migration has not installed it) and the alert routing
        defaults (idempotent)."""
        from integrations.selection import install_seed_table

        from .alerts import seed_routes

        fallbacks, routes = install_seed_table(), seed_routes()
        if stdout and (fallbacks or routes):
            stdout.write(f"Monitoring: {fallbacks} fallback(s), {routes} alert route(s) created.\n")
