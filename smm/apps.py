from django.utils.translation import gettext_lazy as _

from integrations.domain import HOUR, MINUTE, WEEK, DomainConfig


class SmmConfig(DomainConfig):
    name = "smm"
    verbose_name = _("SMM panels")
    default_auto_field = "django.db.models.BigAutoField"
    adapters = {
        "jap": "smm.panel.PanelV2",
        "smmkings": "smm.panel.PanelV2",
        "secsers": "smm.panel.PanelV2",
        "panel_v2": "smm.panel.PanelV2",
    }
    schedule = {
        "SMM service sync": ("smm.tasks.sync_all_services", HOUR, {}),
        "SMM order status polling": ("smm.tasks.poll_all_orders", 5 * MINUTE, {}),
        "SMM balances": ("smm.tasks.refresh_all_balances", HOUR, {}),
        "SMM cleanup of old orders": ("smm.tasks.cleanup_old_orders", WEEK, {}),
        "SMM queued order retries": ("smm.tasks.retry_queued_orders", 60, {}),
        # A quarter of smm.orders.STALE_SUBMISSION (2 minutes): an interrupted send is under review
        # within about one threshold, not a polling interval later.
        "SMM stale submissions": ("smm.tasks.mark_stale_submissions", 30, {}),
    }
    # Catalogues and balances at once instead of after the first hourly run.
    startup_tasks = ("smm.tasks.sync_all_services", "smm.tasks.refresh_all_balances")
    sandbox_urls = "smm.sandbox"
    api_urls = "smm.api_urls"
    # The dashboard's figures count orders: whoever may read the orders may see them.
    dashboard_permission = "smm.view_smmorder"

    def ready(self):
        from . import signals

        signals.connect()

    def affected_owners(self, integration):
        """Merchants with unfinished orders on this panel: monitoring tells them when it goes down.
        Their finished orders, here or on other panels, do not matter."""
        from django.contrib.auth import get_user_model

        from .models import FINAL_STATES, SMMOrder

        unfinished = SMMOrder.objects.filter(provider__integration=integration).exclude(status__in=FINAL_STATES)
        return get_user_model().objects.filter(pk__in=unfinished.values("owner_id"))

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

    def dashboard_figures(self, since):
        """Orders placed since `since`: how many, how many failed, and how many are in each status."""
        from django.db.models import Count

        from integrations.domain import Figure, FigureBlock

        from .models import OrderStatus, SMMOrder

        counts = dict(
            SMMOrder.objects.filter(created_at__gte=since).values_list("status").annotate(n=Count("pk")).order_by()
        )
        failed = counts.get(OrderStatus.FAILED, 0)
        tones = {OrderStatus.COMPLETED: "good", OrderStatus.UNKNOWN: "warn", OrderStatus.FAILED: "bad"}
        return [
            FigureBlock(
                _("SMM orders"),
                (Figure(_("Orders"), sum(counts.values())), Figure(_("Failed"), failed, "bad" if failed else "")),
            ),
            FigureBlock(
                _("SMM orders by status"),
                tuple(
                    Figure(label, counts[value], tones.get(value, ""))
                    for value, label in OrderStatus.choices
                    if counts.get(value)
                ),
            ),
        ]
