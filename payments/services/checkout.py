"""A new payment: checked, written once per idempotency key, then begun at its provider."""

import hashlib
import json
import logging
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations import outbound
from integrations.adapters import adapter_class
from integrations.errors import ProviderAuthError, ProviderError, ProviderValidationError
from integrations.selection import alternatives_for
from integrations.writes import certainly_not_sent

from ..models import Payment, PaymentMethod, PaymentStatus
from .errors import IdempotencyConflict
from .methods import is_own_method, provider_row, validate_payment

logger = logging.getLogger("payments")
ERROR_MAX = 2000


def checkout_expiry_minutes():
    """PAYMENT_CHECKOUT_EXPIRY_MINUTES: how long a checkout stays open (default 30) when its adapter has
    no `expiry` of its own (cards; wallets, transfers and cash on delivery have theirs)."""
    return int(getattr(settings, "PAYMENT_CHECKOUT_EXPIRY_MINUTES", 30))


def adapter_code(payment):
    if payment.integration_id:
        return payment.integration.code
    return PaymentMethod.objects.filter(code=payment.method).values_list("adapter", flat=True).first() or ""


def gateway(payment):
    """The adapter of `payment`: its provider row's, or the method's own (cash, transfer)."""
    return adapter_class(adapter_code(payment))(payment.integration)


def _fingerprint(owner, fields):
    amount = fields.get("amount")
    try:
        amount = str(Decimal(str(amount).strip()).quantize(Decimal("0.001")))
    except (InvalidOperation, ValueError, TypeError):
        amount = str(amount)
    body = {**{k: str(v or "").strip() for k, v in fields.items()}, "amount": amount, "owner": owner.pk}
    body["currency"] = body["currency"].upper()
    body["bank_code"] = body["bank_code"].upper()
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _replay(owner, key, fingerprint):
    existing = Payment.objects.filter(owner=owner, idempotency_key=key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise IdempotencyConflict(key)
    return existing


def create_payment(owner, *, order_reference="", amount, currency, method, bank_code="", payer_phone="",
                   payer_birth_year=None, idempotency_key=""):
    """Check a payment against its method's row, write it and begin it at the provider.

    Returns `(payment, created)`. The same idempotency key with the same request returns the first
    payment (`created` False, nothing sent again); with another request it raises IdempotencyConflict.
    Bad input raises ValidationError({field: [messages]}) (fields: amount, currency, method, bank_code,
    payer_phone, payer_birth_year, order_reference). `payer_birth_year` is required by Sadad and kept in
    `provider_data["birth_year"]` until the begin, which replaces it with the provider's data. A begin
    that may have reached the provider and lost its answer leaves the payment `unknown` for
    reconciliation; it is never begun again."""
    key = str(idempotency_key or "").strip()[:255]
    fields = {"order_reference": order_reference, "amount": amount, "currency": currency, "method": method,
              "bank_code": bank_code, "payer_phone": payer_phone}
    if payer_birth_year not in (None, ""):  # only when given: the fingerprints of earlier payments stay valid
        fields["payer_birth_year"] = payer_birth_year
    fingerprint = _fingerprint(owner, fields)
    if key and (existing := _replay(owner, key, fingerprint)) is not None:
        if may_begin(existing):  # the first request died before its begin: the retry finishes it
            begin(existing)
        return existing, False
    clean = validate_payment(owner, amount=amount, currency=currency, method=method, bank_code=bank_code,
                             payer_phone=payer_phone, order_reference=order_reference,
                             payer_birth_year=payer_birth_year)
    row = clean["method"]
    integration = None
    if not is_own_method(row.adapter):
        integration = provider_row(row.adapter, owner)
        if integration is None:
            others = ", ".join(alternatives_for(row.adapter))
            message = _("%(method)s is unavailable right now.") % {"method": row.local_name or row.code}
            if others:
                message += " " + _("You can use: %(alternatives)s.") % {"alternatives": others}
            raise ValidationError({"method": [message]})
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                owner=owner, order_reference=clean["order_reference"], amount=clean["amount"],
                currency=clean["currency"], method=row.code, bank=clean["bank"], integration=integration,
                payer_phone=clean["payer_phone"], idempotency_key=key, request_fingerprint=fingerprint,
                provider_data={"birth_year": clean["payer_birth_year"]} if clean["payer_birth_year"] else {},
            )
    except IntegrityError:
        # A concurrent request with the same key won the race: its payment is the answer.
        existing = _replay(owner, key, fingerprint) if key else None
        if existing is None:
            raise
        return existing, False
    begin(payment)
    return payment, True


def expiry_from(adapter, start):
    """When a payment begun at `start` expires: the adapter's own `expiry` (None: never by the clock),
    else PAYMENT_CHECKOUT_EXPIRY_MINUTES later."""
    hook = getattr(adapter, "expiry", None)
    if callable(hook):
        return hook(start)
    return start + timedelta(minutes=checkout_expiry_minutes())


def _own(adapter):
    return bool(getattr(adapter, "own_method", False))


def may_begin(payment, adapter=None):
    """Whether `payment` may be handed to its adapter (again): it is `initiated` and either was never
    handed over (no `begun_at`) or is a way to pay of our own, whose begin calls nobody."""
    if payment.status != PaymentStatus.INITIATED:
        return False
    return payment.begun_at is None or _own(adapter or gateway(payment))


def begin(payment):
    """Hand an `initiated` payment to its adapter once and record the Checkout. Returns the payment.

    The hand-over is claimed first: `begun_at` is set by a compare-and-set UPDATE, committed (outside
    a transaction) before the adapter is called, so of two callers one only calls a provider; a
    payment found `initiated` later with `begun_at` set may have reached it and is never begun again
    (payments.services.reconciliation.resume_initiated). Our own ways to pay may be begun again."""
    adapter = gateway(payment)
    now = timezone.now()
    claim = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.INITIATED)
    if not _own(adapter):
        claim = claim.filter(begun_at__isnull=True)
    if not claim.update(begun_at=now, expires_at=expiry_from(adapter, now)):
        payment.refresh_from_db()  # begun by someone else, or no longer initiated
        return payment
    payment.refresh_from_db(fields=["expires_at", "begun_at"])
    with outbound.watch() as calls:
        try:
            checkout = adapter.begin(payment)
        except ProviderError as exc:
            _begin_failed(payment, exc)
            return payment
        except Exception as exc:
            state = PaymentStatus.UNKNOWN if calls.started else PaymentStatus.FAILED
            payment.transition(state, reason=_("Unexpected error while beginning: %s") % exc,
                               error=str(exc)[:ERROR_MAX])
            raise
    if not payment.transition(
        checkout.state, reason=_("Begun at the provider."), next_step=checkout.next_step,
        instructions=str(checkout.instructions or ""), provider_reference=checkout.provider_reference[:100],
        provider_data=dict(checkout.data or {}),
        paid_at=now if checkout.state == PaymentStatus.PAID else None,
    ):
        payment.refresh_from_db()  # another begin of a way to pay of ours, or a notification, moved it first
    return payment


def _begin_failed(payment, exc):
    error = str(exc)[:ERROR_MAX]
    # Refused, or never sent: nothing happened at the provider. Anything else may have started a
    # payment there, so it is left for reconciliation, never begun again blindly.
    if certainly_not_sent(exc) or isinstance(exc, ProviderAuthError | ProviderValidationError):
        payment.transition(PaymentStatus.FAILED, reason=_("Refused: %s") % error, error=error)
    else:
        logger.warning("Payment %s: outcome of begin unknown: %s", payment.reference, exc)
        payment.transition(PaymentStatus.UNKNOWN, reason=_("The outcome is unknown: %s") % error, error=error)
