"""What providers say of a payment, applied: only along allowed moves, compare-and-set, and only when
the amount and currency are the payment's. Everything a provider sends is untrusted: a mismatch is
recorded for an operator (ReconciliationMismatch), never applied."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.errors import ProviderAuthError, ProviderError, ProviderValidationError
from integrations.writes import certainly_not_sent

from ..interface import NotSupported, State
from ..models import CAPTURED_STATES, Payment, PaymentStatus, ReconciliationMismatch
from .checkout import ERROR_MAX, gateway

logger = logging.getLogger("payments")
Source = ReconciliationMismatch.Source
# States whose arrival contradicts a payment that already reached another outcome.
_OUTCOMES = {State.PAID, State.FAILED, State.CANCELLED, State.EXPIRED, State.REFUNDED}
_NO_MONEY = {State.FAILED, State.CANCELLED, State.EXPIRED}  # these agree with each other: nothing was taken


def record_mismatch(payment, kind, ours, theirs, *, source, details=None):
    """One row per payment, kind, source and pair of values: a provider repeating itself adds none."""
    row, created = ReconciliationMismatch.objects.get_or_create(
        payment=payment, kind=kind, source=source, ours=str(ours)[:100], theirs=str(theirs)[:100],
        resolved_at=None, defaults={"details": details or {}},
    )
    if created:
        logger.warning("Payment %s: %s mismatch (%s): ours %s, provider's %s", payment.reference, kind, source,
                       ours, theirs)
    return row


def _money_mismatch(payment, status, source):
    """Record and say whether the provider's amount or currency differs from ours."""
    details = {"provider_reference": status.provider_reference, "message": status.message, "state": status.state}
    bad = False
    if status.currency and status.currency != payment.currency:
        record_mismatch(payment, "currency", payment.currency, status.currency, source=source, details=details)
        bad = True
    if status.amount is not None and status.amount != payment.amount:
        record_mismatch(payment, "amount", payment.amount, status.amount, source=source, details=details)
        bad = True
    return bad


def _fields_for(payment, status):
    fields = {}
    if status.provider_reference and not payment.provider_reference:
        fields["provider_reference"] = status.provider_reference[:100]
    if status.network_reference and not payment.network_reference:
        fields["network_reference"] = status.network_reference[:100]
    details = {k: v for k, v in (status.details or {}).items() if v not in (None, "")}
    if details:
        fields["provider_data"] = {**(payment.provider_data or {}), **details}
    if status.state == State.PAID:
        fields["paid_at"] = timezone.now()
        fields["error"] = ""
    elif status.state in (State.FAILED, State.CANCELLED) and status.message:
        fields["error"] = status.message[:ERROR_MAX]
    return fields


def apply_status(payment, status, *, source=Source.RECONCILIATION, reason="", actor=None):
    """Move `payment` where the provider's `status` (a ProviderStatus) says, if the table allows it.

    Returns whether the payment moved. A late or repeated answer (a "pending" after "paid") changes
    nothing; an outcome that contradicts the one we hold (paid here, failed there) and an amount or
    currency other than ours are recorded as mismatches and not applied. Of two answers racing, one
    moves the row (the state machine's compare-and-set) and the other is judged again against the
    state it lost to."""
    target = status.state
    if target not in Payment.machine.states:
        logger.warning("Payment %s: provider state %r ignored", payment.reference, target)
        return False
    if target in (State.PAID, State.REFUNDED) and _money_mismatch(payment, status, source):
        return False
    reason = reason or _("The provider says %(state)s. %(message)s") % {"state": target, "message": status.message}
    for _attempt in range(3):
        current = payment.status
        if current == target:
            return False
        if target == State.REFUNDED or not payment.can_move_to(target):
            # Refunds move a payment through payments.services.refunds only (amounts add up there).
            agrees = (target == State.PAID and current in CAPTURED_STATES) or (
                target in _NO_MONEY and current in _NO_MONEY)
            if target in _OUTCOMES and current not in (PaymentStatus.INITIATED, PaymentStatus.PENDING) and not agrees:
                record_mismatch(payment, "status", current, target, source=source,
                                details={"provider_reference": status.provider_reference, "message": status.message})
            return False
        if payment.transition(target, reason=reason.strip(), actor=actor, **_fields_for(payment, status)):
            if target == State.UNKNOWN:  # the provider itself cannot say (two approved sales): an operator must
                record_mismatch(payment, "status", current, target, source=source, details={"message": status.message})
            return True
        payment.refresh_from_db()
    return False


def apply_notification(integration, notification, event=None):
    """A verified provider notification (payments.interface.Notification) applied to our payment.
    Called by the adapters' `handle_webhook` inside the webhook task's transaction."""
    # The reference is unique: no ORDER BY, and no join for the row the caller already holds.
    payment = next(iter(Payment.objects.filter(reference=notification.merchant_reference).order_by()[:1]), None)
    if payment is None or (integration is not None and payment.integration_id != integration.pk):
        # Not ours, or another row's (or a way to pay of our own, which no provider may settle): a
        # notification never reaches across terminals.
        logger.warning("Notification for unknown payment %r (row %s) ignored", notification.merchant_reference[:40],
                       getattr(integration, "pk", None))
        return None
    if integration is not None:
        payment.integration = integration
    suffix = f" (event {event.pk})" if event is not None else ""
    if notification.kind in ("refund", "void_refund"):
        from .refunds import apply_refund_notification

        apply_refund_notification(payment, notification, reason=_("Notification%s") % suffix)
        return payment
    apply_status(payment, notification.status, source=Source.NOTIFICATION,
                 reason=_("Notification%(event)s: %(message)s") % {"event": suffix,
                                                                   "message": notification.status.message})
    return payment


def refresh_status(payment):
    """Ask the provider where `payment` stands and apply the answer. Returns whether it moved."""
    status = gateway(payment).status(payment)
    Payment.objects.filter(pk=payment.pk).update(last_checked_at=timezone.now())
    return apply_status(payment, status, source=Source.RECONCILIATION)


def confirm_wallet(payment, code):
    """Complete a wallet payment with the payer's one-time `code`. Returns the payment.

    A code the wallet refused leaves the payment as the wallet says (failed, or still pending for
    another try); an answer lost after sending leaves it `unknown` for reconciliation, and the error
    is raised for the caller."""
    if payment.status != PaymentStatus.PENDING:
        raise ValidationError({"code": [_("This payment is not waiting for a code.")]})
    code = str(code or "").strip()
    if not code or len(code) > 12 or not code.isalnum():
        raise ValidationError({"code": [_("Enter the code the wallet sent to the payer's phone.")]})
    try:
        status = gateway(payment).confirm(payment, code)
    except NotSupported:
        raise ValidationError({"code": [_("This payment method takes no code.")]}) from None
    except ProviderError as exc:
        if not (certainly_not_sent(exc) or isinstance(exc, ProviderAuthError | ProviderValidationError)):
            with transaction.atomic():
                payment.transition(PaymentStatus.UNKNOWN, reason=_("Confirmation outcome unknown: %s") % exc,
                                   error=str(exc)[:ERROR_MAX])
        raise
    apply_status(payment, status, source=Source.NOTIFICATION, reason=_("Wallet confirmation: %s") % status.message)
    return payment
