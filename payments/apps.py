from django.utils.translation import gettext_lazy as _

from integrations.domain import DomainConfig


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
    sandbox_urls = "payments.sandbox"
