"""Reconciliation: the open payments asked at their provider, and the checkouts whose time ran out
closed. Payments of our own ways to pay (cash, transfer: no provider row) are not asked; people
complete them (payments.services.collection) and the clock expires them.

A payment still `initiated` STALE_INITIATED after it was written was left by a request or worker
that died before its begin ended (`resume_initiated`, the first step of each round):
- never handed to its adapter (no `begun_at`: certainly never sent), or one of our own ways to pay
  (cash, transfer: no network call): begun now, unless the time it had to be paid in, counted from
  its creation, has already passed, in which case it expires;
- handed to a provider's adapter (`begun_at` set: the call may have reached the provider): `unknown`,
  asked at the provider in the same round like every unknown payment, and never sent again."""

import logging
from collections import Counter, defaultdict
from datetime import timedelta

from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.adapters import adapter_for
from integrations.errors import CircuitOpen, ProviderError
from integrations.locks import LockUnavailable, provider_lock

from ..models import Payment, PaymentStatus
from .checkout import begin, expiry_from, gateway, may_begin
from .outcomes import Source, apply_status

logger = logging.getLogger("payments")
P = PaymentStatus
# An `initiated` payment this old was left by a request or worker that died before its begin ended
# (a create and its begin take seconds).
STALE_INITIATED = timedelta(minutes=10)


def _candidates():
    return (Payment.objects.filter(integration__isnull=False, status__in=[P.PENDING, P.UNKNOWN])
            .select_related("integration")
            .order_by(F("last_checked_at").asc(nulls_first=True), "pk"))


def _resume(payment, now, counts):
    adapter = gateway(payment)
    if not may_begin(payment, adapter):
        if payment.transition(P.UNKNOWN, reason=_("Its begin was interrupted and may have reached the provider: "
                                                  "asked by reconciliation, never sent again.")):
            counts["unknown"] += 1
        return
    deadline = expiry_from(adapter, payment.created_at)
    if deadline is not None and deadline <= now:
        if payment.transition(P.EXPIRED, reason=_("Never begun, and its time to be paid has passed.")):
            counts["expired"] += 1
        return
    begin(payment)
    if payment.status != P.INITIATED:
        counts["begun"] += 1


def resume_initiated(now=None, limit=200, counts=None):
    """The payments left `initiated` by a crash, begun, expired or marked `unknown` as the module
    says. Returns the counts (begun, expired, unknown, errors)."""
    now = now or timezone.now()
    counts = Counter() if counts is None else counts
    stale = (Payment.objects.filter(status=P.INITIATED, created_at__lt=now - STALE_INITIATED)
             .select_related("integration").order_by("created_at", "pk"))
    for payment in stale[:limit]:
        try:
            _resume(payment, now, counts)
        except Exception:  # begin recorded what it could (failed, unknown); the other payments go on
            logger.exception("Payment %s: could not be resumed", payment.reference)
            counts["errors"] += 1
    return counts


def _ask(adapter, payments):
    """The provider's word on each payment: the adapter's bulk `statuses(payments)` when it has one
    (a dict by reference), else one `status` call each. Yields (payment, status or error)."""
    bulk = getattr(adapter, "statuses", None)
    if callable(bulk):
        try:
            answers = bulk(payments)
        except ProviderError as exc:
            answers = {p.reference: exc for p in payments}
        for payment in payments:
            yield payment, answers.get(payment.reference)
        return
    for payment in payments:
        try:
            yield payment, adapter.status(payment)
        except ProviderError as exc:
            yield payment, exc
            if isinstance(exc, CircuitOpen) or exc.outage:
                return  # the provider is down: the rest wait for the next round


def reconcile_provider(integration, payments, counts):
    adapter = adapter_for(integration)
    checked = []
    for payment, answer in _ask(adapter, payments):
        if isinstance(answer, ProviderError):
            counts["errors"] += 1
            logger.info("Reconciliation of %s at %s failed: %s", payment.reference, integration.pk, answer)
            continue
        checked.append(payment.pk)
        if answer is None:
            continue
        if apply_status(payment, answer, source=Source.RECONCILIATION,
                        reason=_("Reconciliation: the provider says %(state)s. %(message)s")
                        % {"state": answer.state, "message": answer.message}):
            counts["moved"] += 1
        else:
            counts["unchanged"] += 1
    if checked:
        Payment.objects.filter(pk__in=checked).update(last_checked_at=timezone.now())


def reconcile(limit=200, now=None):
    """Resume the payments a crash left `initiated` (`resume_initiated`), then ask the providers about
    up to `limit` open payments (pending, unknown), the least recently checked first, grouped by
    provider row (one lock and one adapter per row). Returns counts (begun, expired, unknown, moved,
    unchanged, errors, locked), the zero ones left out. Expiry is its own job (`expire_payments`)."""
    now = now or timezone.now()
    counts = resume_initiated(now, limit=limit)
    groups = defaultdict(list)
    for payment in _candidates()[:limit]:
        groups[payment.integration_id].append(payment)
    for payments in groups.values():
        integration = payments[0].integration
        try:
            with provider_lock(integration.pk, "payment-reconcile") as acquired:
                if not acquired:
                    counts["locked"] += 1
                    continue
                reconcile_provider(integration, payments, counts)
        except LockUnavailable:
            counts["locked"] += 1
    return dict(counts)


def expire_payments(now=None, limit=500):
    """Close the checkouts whose `expires_at` has passed. A payment at a provider is asked first (the
    buyer may have paid in the last minute) and expired only if the provider still says pending; one
    of our own ways to pay simply expires. Returns the primary keys of the expired payments."""
    now = now or timezone.now()
    due = Payment.objects.filter(status__in=[P.INITIATED, P.PENDING], expires_at__lte=now).order_by("expires_at")
    own = list(due.filter(integration__isnull=True).values_list("pk", flat=True)[:limit])
    expired = Payment.machine.move_many(due.filter(pk__in=own), P.EXPIRED, reason=_("Not paid in time.")) if own else []
    for payment in due.filter(integration__isnull=False).select_related("integration")[:limit]:
        try:
            status = adapter_for(payment.integration).status(payment)
        except ProviderError as exc:
            logger.info("Payment %s not expired: its provider could not be asked (%s)", payment.reference, exc)
            continue
        if status.state != P.PENDING:
            apply_status(payment, status, source=Source.RECONCILIATION)
        elif payment.transition(P.EXPIRED, reason=_("Not paid in time; the provider has no payment.")):
            expired.append(payment.pk)
    return expired
