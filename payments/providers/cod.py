"""Cash on delivery: a way to pay of ours, with no provider to call and no registry row.

The payment waits (`pending`, next step `on_delivery`) until the carrier reports the cash collected:
the shipping app calls `payments.services.record_cash_collected`. A refund is money handed back by
the merchant or the operator: it stays `pending` until an operator confirms it
(`payments.services.confirm_manual_refund`)."""

from django.utils.translation import gettext as _

from integrations.adapters import ProviderMeta

from ..interface import Checkout, Method, NextStep, PaymentGateway, ProviderStatus, RefundResult, State


class OwnMethod(PaymentGateway):
    """A way to pay that needs no network call: the service runs it with `integration` None."""

    own_method = True

    def status(self, payment):
        # Nobody to ask: whatever we hold is the truth (moved by the carrier's or operator's word).
        return ProviderStatus(state=payment.status)

    def refund(self, payment, refund):
        return RefundResult(state=State.PENDING, message=_("To be paid back by hand; an operator confirms it."))

    def check_health(self):
        return None


class CashOnDelivery(OwnMethod):
    methods = (Method.COD,)
    meta = ProviderMeta(label="Cash on delivery", kind="payment")

    def expiry(self, now):
        return None  # the delivery decides, not a clock

    def begin(self, payment):
        return Checkout(next_step=NextStep.ON_DELIVERY, state=State.PENDING,
                        data={"collect": f"{payment.amount} {payment.currency}"},
                        instructions=_("Pay %(amount)s %(currency)s in cash to the carrier on delivery.")
                        % {"amount": payment.amount, "currency": payment.currency})
