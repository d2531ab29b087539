from django.utils.translation import gettext_lazy as _

from integrations.domain import HOUR, MINUTE, DomainConfig

# The demo's Moamalat terminal: the public test values (PROTOCOLS.md); the notification key is ours,
# the simulator signs with whatever the row holds.
DEMO_MOAMALAT = {
    "merchant_id": "10081014649",
    "terminal_id": "99179395",
    "secure_key": "39636630633731362D663963322D346362642D386531662D633963303432353936373431",
    "notification_key": "65697368726F2D64656D6F2D6E6F74696669636174696F6E2D6B6579",
}
DEMO_WALLETS = ("mobicash", "sadad", "onepay")


class PaymentsConfig(DomainConfig):
    name = "payments"
    verbose_name = _("Payments")
    default_auto_field = "django.db.models.BigAutoField"
    adapters = {
        "moamalat": "payments.providers.moamalat.Moamalat",
        # Ways to pay of our own: no provider row, never called over the network.
        "cash_on_delivery": "payments.providers.cod.CashOnDelivery",
        "bank_transfer": "payments.providers.transfer.BankTransfer",
        "mobicash": "payments.providers.mobicash.MobiCash",
        "sadad": "payments.providers.sadad.Sadad",
        "onepay": "payments.providers.onepay.OnePay",
    }
    api_urls = "payments.api_urls"
    sandbox_urls = "payments.sandbox"
    schedule = {
        "Payment reconciliation of pending and unknown payments": ("payments.tasks.reconcile_payments", 5 * MINUTE,
                                                                   {}),
        "Payment expiry": ("payments.tasks.expire_payments", 5 * MINUTE, {}),
        "Payment refund retries": ("payments.tasks.retry_refunds", MINUTE, {}),
        # Hourly, so a kept answer lives at most the retention plus an hour.
        "Payment API idempotency keys retention": ("payments.tasks.prune_idempotency_keys", HOUR, {}),
    }
    # The dashboard's figures count payments (the first model declared is Bank).
    dashboard_permission = "payments.view_payment"

    def affected_owners(self, integration):
        """Merchants with open payments (initiated, pending, unknown) on this provider row."""
        from django.contrib.auth import get_user_model

        from .models import OPEN_STATES, Payment

        open_payments = Payment.objects.filter(integration=integration, status__in=OPEN_STATES)
        return get_user_model().objects.filter(pk__in=open_payments.values("owner_id"))

    def load_demo(self, merchant, stdout=None):
        """The platform's Moamalat row pointed at the simulator (public test terminal), and the
        wallets' rows, inactive as the seed has them (planned). Idempotent; re-points rows whose
        SANDBOX_BASE_URL changed, forgetting their health and breakers."""
        from django.conf import settings
        from django.db import transaction

        from integrations.adapters import adapter_class
        from integrations.breaker import CircuitBreaker
        from integrations.errors import UnknownAdapter
        from integrations.models import ExternalIntegration, Kind, Status

        base = settings.SANDBOX_BASE_URL.rstrip("/")
        rows = {"moamalat": dict(display_name="Moamalat (sandbox)", status=Status.ACTIVE, credentials=DEMO_MOAMALAT,
                                 configuration={"environment": "test", "currency": "LYD",
                                                "lightbox_url": f"{base}/moamalat/js/lightbox.js"})}
        for code in DEMO_WALLETS:
            rows[code] = dict(display_name=f"{code} (sandbox)", status=Status.INACTIVE, credentials={},
                              configuration={})
        created, moved = [], []
        for code, spec in rows.items():
            try:
                url = f"{base}/{adapter_class(code).meta.sandbox_path}"
            except (UnknownAdapter, ImportError):
                continue
            row = ExternalIntegration.objects.filter(owner__isnull=True, code=code, name=code).first()
            if row is None:
                ExternalIntegration.objects.create(kind=Kind.PAYMENT, code=code, name=code, base_url=url, **spec)
                created.append(code)
            elif row.base_url != url:
                config = dict(row.configuration or {})
                if code == "moamalat":
                    config["lightbox_url"] = spec["configuration"]["lightbox_url"]
                ExternalIntegration.objects.filter(pk=row.pk).update(base_url=url, configuration=config,
                                                                     health_status="", last_health_check=None)
                moved.append(row.pk)
        transaction.on_commit(lambda: [CircuitBreaker(pk).reset() for pk in moved])
        if stdout is not None:
            stdout.write(f"Payments: {len(created)} provider row(s) created, {len(moved)} re-pointed "
                         f"(Moamalat simulator at {base}/moamalat/).")

    def dashboard_figures(self, since):
        """Payments created since `since`: how many and how much was paid (per currency), and how
        many are in each status and each method."""
        from django.db.models import Count, Sum

        from integrations.domain import Figure, FigureBlock

        from .models import Payment, PaymentMethod, PaymentStatus

        recent = Payment.objects.filter(created_at__gte=since)
        by_status = dict(recent.values_list("status").annotate(n=Count("pk")).order_by())
        paid = recent.filter(status__in=[PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED,
                                         PaymentStatus.REFUNDED])
        amounts = paid.values_list("currency").annotate(total=Sum("amount"), refunded=Sum("refunded_amount"))
        by_method = dict(recent.values_list("method").annotate(n=Count("pk")).order_by())
        names = dict(PaymentMethod.objects.values_list("code", "name_en"))
        tones = {PaymentStatus.PAID: "good", PaymentStatus.UNKNOWN: "warn", PaymentStatus.FAILED: "bad"}
        failed = by_status.get(PaymentStatus.FAILED, 0)
        unknown = by_status.get(PaymentStatus.UNKNOWN, 0)
        summary = [Figure(_("Payments"), sum(by_status.values())),
                   Figure(_("Failed"), failed, "bad" if failed else ""),
                   Figure(_("Under review"), unknown, "warn" if unknown else "")]
        summary += [Figure(_("Paid (%s)") % currency, total - (refunded or 0), "good")
                    for currency, total, refunded in amounts.order_by("currency")]
        return [
            FigureBlock(_("Payments"), tuple(summary)),
            FigureBlock(_("Payments by status"), tuple(
                Figure(label, by_status[value], tones.get(value, ""))
                for value, label in PaymentStatus.choices if by_status.get(value))),
            FigureBlock(_("Payments by method"), tuple(
                Figure(names.get(code) or code, n) for code, n in sorted(by_method.items()))),
        ]
