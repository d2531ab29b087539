"""The ways to pay of our own, completed by people: the carrier who collected the cash, the operator
who saw the transfer on the bank statement or handed a refund back."""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..interface import Method, ProviderStatus, State
from ..models import Payment, PaymentStatus, ReconciliationMismatch, RefundStatus
from .outcomes import apply_status, record_mismatch

SHIPMENT_KEY = "shipment_reference"


def _decimal(value, field="amount"):
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationError({field: [_("Enter an amount, e.g. 125.500.")]}) from None
    if not amount.is_finite():
        raise ValidationError({field: [_("Enter an amount, e.g. 125.500.")]})
    return amount


def attach_shipment(payment, shipment_reference):
    """Remember the shipment carrying a cash-on-delivery payment, so the carrier's report finds it."""
    shipment_reference = str(shipment_reference or "").strip()[:100]
    if not shipment_reference:
        raise ValidationError({"shipment_reference": [_("This field is required.")]})
    data = {**(payment.provider_data or {}), SHIPMENT_KEY: shipment_reference}
    Payment.objects.filter(pk=payment.pk).update(provider_data=data, updated_at=timezone.now())
    payment.provider_data = data
    return payment


def record_cash_collected(reference, amount, *, actor=None, carrier=""):
    """The carrier collected `amount` in cash for the payment whose reference (ours) or shipment
    reference is `reference`: the payment becomes paid. Returns the payment.

    An amount other than the payment's is recorded as a mismatch and refused (ValidationError on
    `amount`); a payment already paid stays as it is (the carrier reporting twice)."""
    amount = _decimal(amount)
    reference = str(reference or "").strip()
    payment = (Payment.objects.filter(method=Method.COD)
               .filter(Q(reference=reference) | Q(**{f"provider_data__{SHIPMENT_KEY}": reference}))
               .order_by("-created_at").first()) if reference else None
    if payment is None:
        raise ValidationError({"reference": [_("No cash-on-delivery payment has this reference.")]})
    details = {"carrier": str(carrier)[:100]}
    if amount != payment.amount:
        record_mismatch(payment, "amount", payment.amount, amount, source=ReconciliationMismatch.Source.COLLECTION,
                        details=details)
        raise ValidationError({"amount": [_("The payment is %(expected)s %(currency)s, not %(amount)s.")
                                          % {"expected": payment.amount, "currency": payment.currency,
                                             "amount": amount}]})
    with transaction.atomic():
        apply_status(payment, ProviderStatus(state=State.PAID, amount=amount, currency=payment.currency,
                                             message=_("Cash collected by %s") % (carrier or _("the carrier")),
                                             details=details),
                     source=ReconciliationMismatch.Source.COLLECTION,
                     reason=_("Cash collected by %s.") % (carrier or _("the carrier")), actor=actor)
    return payment


def confirm_transfer(payment, bank_reference, *, actor=None, amount=None):
    """An operator found the transfer of `payment` on the bank statement under `bank_reference`: paid.
    `amount` (what arrived) is checked against the payment when given. Returns the payment."""
    bank_reference = str(bank_reference or "").strip()[:100]
    if not bank_reference:
        raise ValidationError({"bank_reference": [_("Enter the bank's reference of the transfer.")]})
    if payment.method != Method.BANK_TRANSFER:
        raise ValidationError({"payment": [_("This is not a bank transfer.")]})
    if payment.status not in (PaymentStatus.PENDING, PaymentStatus.UNKNOWN):
        raise ValidationError({"payment": [_("Only a pending transfer can be confirmed (this one is %s).")
                                           % payment.get_status_display()]})
    if amount is not None and (amount := _decimal(amount)) != payment.amount:
        record_mismatch(payment, "amount", payment.amount, amount, source=ReconciliationMismatch.Source.COLLECTION,
                        details={"bank_reference": bank_reference})
        raise ValidationError({"amount": [_("The payment is %(expected)s %(currency)s, not %(amount)s.")
                                          % {"expected": payment.amount, "currency": payment.currency,
                                             "amount": amount}]})
    moved = apply_status(payment, ProviderStatus(state=State.PAID, network_reference=bank_reference),
                         source=ReconciliationMismatch.Source.COLLECTION,
                         reason=_("Transfer confirmed (bank reference %s).") % bank_reference, actor=actor)
    if not moved:
        raise ValidationError({"payment": [_("The transfer could not be confirmed: it is %s now.")
                                           % payment.get_status_display()]})
    return payment


def confirm_manual_refund(refund, *, actor=None, reference=""):
    """An operator handed back a refund of a way to pay of ours (cash, transfer): it is done."""
    from .refunds import settle

    if refund.status != RefundStatus.PENDING:
        raise ValidationError({"refund": [_("Only a pending refund can be confirmed.")]})
    if not refund.transition(RefundStatus.REFUNDED, reason=_("Paid back, confirmed by an operator."), actor=actor,
                             provider_reference=str(reference or "").strip()[:100], completed_at=timezone.now()):
        raise ValidationError({"refund": [_("The refund changed meanwhile; reload it.")]})
    settle(refund, actor=actor)
    return refund

