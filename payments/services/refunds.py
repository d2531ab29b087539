"""Refunds: never beyond what was paid, even when two race, and each sent to the provider once.

What may still be refunded is the amount minus every refund that has not failed (requested, being
sent, pending, unknown or done), read under a lock on the payment row: of two refunds racing, the
second waits for the first's row and sees it. `Payment.refunded_amount` is what was refunded for
sure; a CHECK keeps it within the amount whatever a bug does. The send is an exactly-once write
(integrations.writes): `requested` is the queue, a lost answer leaves the refund `unknown` for an
operator, never sent again.
"""

from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.writes import ExternalWrite

from ..interface import PaymentGateway, State
from ..models import CAPTURED_STATES, Payment, PaymentStatus, Refund, RefundStatus
from .checkout import gateway
from .errors import IdempotencyConflict
from .methods import DECIMAL_PLACES

R = RefundStatus


class RefundSubmission(ExternalWrite):
    model = Refund
    machine = Refund.machine
    queued, submitting, unknown, failed = R.REQUESTED, R.SUBMITTING, R.UNKNOWN, R.FAILED

    def get_queryset(self):
        return Refund.objects.select_related("payment", "payment__integration")

    def send(self, refund):
        return gateway(refund.payment).refund(refund.payment, refund)

    def sent_state_and_fields(self, refund, result):
        state = {State.REFUNDED: R.REFUNDED, State.PENDING: R.PENDING}.get(result.state, R.FAILED)
        fields = {"provider_reference": (result.provider_reference or "")[:100]}
        if state == R.FAILED:
            fields["error"] = result.message or _("The provider refused the refund.")
        if state in (R.REFUNDED, R.FAILED):
            fields["completed_at"] = timezone.now()
        return state, fields

    def failed_fields(self, refund, error):
        return {"completed_at": timezone.now()}

    def resolved_state_and_fields(self, refund, reference):
        return R.REFUNDED, {"provider_reference": reference[:100], "completed_at": timezone.now()}

    def check_reference(self, refund, reference):
        if Refund.objects.filter(payment=refund.payment_id, provider_reference=reference).exclude(pk=refund.pk):
            raise ValidationError(_("Another refund of this payment has this reference."))

    def submit(self, obj, now=None):
        outcome = super().submit(obj, now)
        settle(obj)
        return outcome

    def resolve_sent(self, obj, reference, *, actor=None, note=""):
        moved = super().resolve_sent(obj, reference, actor=actor, note=note)
        settle(obj, actor=actor)
        return moved


refund_submission = RefundSubmission()


def _amount(value):
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        amount = None
    if amount is None or not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.001")):
        raise ValidationError({"amount": [_("Enter an amount greater than zero with at most three decimals.")]})
    return amount


def committed(payment_id):
    """What refunds of the payment hold: everything but the failed ones."""
    return Refund.objects.filter(payment_id=payment_id).exclude(status=R.FAILED).aggregate(
        total=Sum("amount"))["total"] or Decimal(0)


def refund(payment, amount, *, reason="", actor=None, idempotency_key=""):
    """Refund `amount` of a paid payment; returns the Refund (in the state the provider left it).

    Refused with ValidationError({"amount": …}) beyond the amount paid minus what other refunds hold,
    {"payment": …} when the payment is not paid. The same idempotency key returns the first refund
    (never sent twice); with another amount it raises IdempotencyConflict."""
    amount = _amount(amount)
    places = DECIMAL_PLACES.get(payment.currency, 3)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        # A gateway carries whole minor units (cents for USD): 1.005 USD cannot be refunded.
        raise ValidationError({"amount": [_("%(currency)s amounts have at most %(places)d decimal places.")
                                          % {"currency": payment.currency, "places": places}]})
    key = str(idempotency_key or "").strip()[:255]
    if type(gateway(payment)).refund is PaymentGateway.refund:
        raise ValidationError({"payment": [_("This payment method cannot refund.")]})
    try:
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            if key:
                existing = Refund.objects.filter(payment=locked, idempotency_key=key).first()
                if existing is not None:
                    if existing.amount != amount:
                        raise IdempotencyConflict(key)
                    return existing
            if locked.status not in CAPTURED_STATES:
                raise ValidationError({"payment": [_("Only a paid payment can be refunded.")]})
            available = locked.amount - committed(locked.pk)
            if amount > available:
                raise ValidationError({"amount": [
                    _("At most %(available)s %(currency)s can be refunded.")
                    % {"available": available, "currency": locked.currency}]})
            new = Refund.objects.create(payment=locked, amount=amount, reason=str(reason or "")[:2000], actor=actor,
                                        idempotency_key=key)
            Refund.machine.record(new, "", R.REQUESTED, reason=reason or _("Refund requested."), actor=actor)
    except IntegrityError:
        existing = Refund.objects.filter(payment=payment, idempotency_key=key).first() if key else None
        if existing is None:
            raise
        if existing.amount != amount:
            raise IdempotencyConflict(key) from None
        return existing
    new.payment = payment
    refund_submission.submit(new)
    payment.refresh_from_db()
    return new


def settle(refund, *, actor=None):
    """After a refund moved: a done refund counts in `refunded_amount` and moves the payment to
    partially refunded or refunded. Idempotent (the total is recomputed under the payment's lock)."""
    if refund.status != R.REFUNDED:
        return False
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=refund.payment_id)
        total = Refund.objects.filter(payment=payment, status=R.REFUNDED).aggregate(t=Sum("amount"))["t"] or 0
        if total == payment.refunded_amount:
            return False
        target = PaymentStatus.REFUNDED if total >= payment.amount else PaymentStatus.PARTIALLY_REFUNDED
        moved = payment.transition(target, reason=_("Refund %(ref)s: %(amount)s refunded in all.")
                                   % {"ref": refund.reference, "amount": total}, actor=actor, refunded_amount=total)
    refund.payment = payment
    return moved


def apply_refund_notification(payment, notification, *, reason=""):
    """A provider's word on a refund: the open refund of that amount is done. A word that it failed
    is recorded as a mismatch for the operator, never applied (see below)."""
    from .outcomes import Source, record_mismatch

    status = notification.status
    open_refunds = Refund.objects.filter(payment=payment, status__in=[R.SUBMITTING, R.PENDING, R.UNKNOWN])
    match = None
    if status.provider_reference:
        match = open_refunds.filter(provider_reference=status.provider_reference).first()
    if match is None and status.amount is not None:
        match = open_refunds.filter(amount=status.amount).order_by("created_at").first()
    if match is None:
        if notification.kind == "refund" and status.state == State.REFUNDED and not Refund.objects.filter(
                payment=payment, status=R.REFUNDED, amount=status.amount).exists():
            record_mismatch(payment, "status", payment.status, "refunded", source=Source.NOTIFICATION,
                            details={"amount": str(status.amount), "provider_reference": status.provider_reference})
        return False
    if status.state != State.REFUNDED:
        # A notification may confirm a refund, never fail it. Moamalat's hash covers the amount,
        # currency, time and terminal only, not TxnType or ActionCode: a buyer holding any signed
        # notification of that amount (the Lightbox hands one to their browser) could turn it into
        # "this refund failed" and have an unknown refund sent again. A refund fails by the
        # provider's answer to our own call, by reconciliation or by an operator; this word is
        # shown to the operator instead.
        record_mismatch(payment, "status", match.status, "failed", source=Source.NOTIFICATION,
                        details={"refund": match.reference, "amount": str(status.amount),
                                 "message": status.message[:200]})
        return False
    fields = {"completed_at": timezone.now()}
    if status.provider_reference and not match.provider_reference:
        fields["provider_reference"] = status.provider_reference[:100]
    moved = match.transition(R.REFUNDED, reason=reason, **fields)
    settle(match)
    return moved


def retry_refunds(limit=100):
    """Send the due queued refunds (their first send certainly did not leave us) and mark those left
    in `submitting` by a dead worker unknown. Returns counts by outcome."""
    refund_submission.sweep_stale()
    return refund_submission.retry_due(limit)
