"""Bank transfer: the buyer transfers to the merchant's bank quoting our reference, and an operator
confirms it from the bank statement (`payments.services.confirm_transfer`). No provider to call and no
registry row.

An unconfirmed transfer expires after PAYMENT_TRANSFER_EXPIRY_WORKING_DAYS working days (setting,
default 3: the seed's "1–3 working days" of processing). Working days are Sunday to Thursday, Libya's
week (Friday and Saturday are the weekend); public holidays are not counted out."""

from datetime import timedelta

from django.conf import settings
from django.utils.translation import gettext as _

from integrations.adapters import ProviderMeta

from ..interface import Checkout, Method, NextStep, State
from .cod import OwnMethod

WEEKEND = (4, 5)  # Friday, Saturday (Monday is 0)


def expiry_working_days():
    return int(getattr(settings, "PAYMENT_TRANSFER_EXPIRY_WORKING_DAYS", 3))


def add_working_days(start, days):
    """`start` plus `days` working days, at the same time of day."""
    when = start
    left = days
    while left > 0:
        when += timedelta(days=1)
        if when.weekday() not in WEEKEND:
            left -= 1
    return when


class BankTransfer(OwnMethod):
    methods = (Method.BANK_TRANSFER,)
    meta = ProviderMeta(label="Bank transfer", kind="payment")

    def expiry(self, now):
        return add_working_days(now, expiry_working_days())

    def begin(self, payment):
        from ..models import PaymentMethod

        bank = payment.bank
        method = PaymentMethod.objects.filter(code=payment.method).only("processing_time").first()
        processing = method.processing_time if method else ""
        data = {"transfer_reference": payment.reference, "bank_code": payment.bank_code,
                "bank_name": bank.name_ar if bank else "", "bank_name_en": bank.name_en if bank else "",
                "processing_time": processing, "amount": str(payment.amount), "currency": payment.currency}
        return Checkout(
            next_step=NextStep.TRANSFER, provider_reference=payment.reference, data=data, state=State.PENDING,
            instructions=_("Transfer %(amount)s %(currency)s to %(bank)s quoting the reference %(reference)s. "
                           "Transfers take 1–3 working days to reach us.")
            % {"amount": payment.amount, "currency": payment.currency,
               "bank": (bank.name_en or bank.name_ar) if bank else payment.bank_code, "reference": payment.reference},
        )
