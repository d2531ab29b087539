from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SmmConfig(AppConfig):
    name = "smm"
    verbose_name = _("SMM panels")
    default_auto_field = "django.db.models.BigAutoField"
    # code -> dotted path of the adapter class (see integrations.adapters).
    adapters = {
        "jap": "smm.panel.PanelV2",
        "smmkings": "smm.panel.PanelV2",
        "secsers": "smm.panel.PanelV2",
        "panel_v2": "smm.panel.PanelV2",
    }

    def affected_owners(self, integration):
        """Merchants with unfinished orders on this panel: monitoring tells them when it goes down."""
        from django.contrib.auth import get_user_model

        from .models import FINAL_STATES

        return (
            get_user_model()
            .objects.filter(smm_orders__provider__integration=integration)
            .exclude(smm_orders__status__in=FINAL_STATES)
            .distinct()
        )

    def load_demo(self, merchant, stdout=None):
        """The three default panels for the demo merchant, pointed at the simulator. Idempotent."""
        from django.conf import settings

        from .models import SMMProvider
        from .providers import DEFAULT_PROVIDERS, initialize_default_providers

        base = settings.SANDBOX_BASE_URL.rstrip("/")
        before = SMMProvider.objects.filter(integration__owner=merchant).count()
        initialize_default_providers(
            merchant,
            {code: f"sandbox-{code}-key" for code in DEFAULT_PROVIDERS},
            base_urls={code: f"{base}/smm/{code}/api/v2" for code in DEFAULT_PROVIDERS},
        )
        created = SMMProvider.objects.filter(integration__owner=merchant).count() - before
        if stdout is not None:
            stdout.write(f"SMM: {created} panel(s) created for {merchant.username} (simulator at {base}/smm/).")
