"""SMM orders: validation, the local row written before any call (idempotency key), the one
`add` sent to the panel through the core's exactly-once writes (integrations.writes: `unknown` when
its outcome is lost, never re-sent; back in the queue when it certainly was not sent), the
operator's resolution, one order's refresh, refills, cancel and cleanup.

Each state change goes through the models' state machines (a conditional update along their
TRANSITIONS, with a history row); the many-orders status poll is in smm.polling.
"""

import hashlib
import json
import logging
import threading
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderProtocolError,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.models import Status
from integrations.writes import ExternalWrite, Outcome

from .models import FINAL_STATES, OPEN_STATES, OrderStatus, SMMOrder, SMMProvider, SMMRefill
from .providers import delete_orders_keeping_stats, refresh_stats, short_of_balance

logger = logging.getLogger("smm")
S = OrderStatus
# A send is one `add`, never retried (it is not idempotent), bounded by the panel's timeout (30 s
# by default): an order still `submitting` after four times that was interrupted (its worker killed
# or stopped mid-send) and becomes unknown. The sweep runs every quarter of this (SmmConfig.schedule),
# so an interrupted send is under review within about 2.5 minutes. A panel answering later than
# this anyway still has its answer recorded (ExternalWrite._move: from unknown, better knowledge).
STALE_SUBMISSION = timedelta(minutes=2)
CLEANUP_BATCH = 5000  # orders deleted (and archived) per transaction


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


QUANTITY_TYPES = {"default", "mentions with hashtags", "mentions hashtag", "mentions user followers",
                  "mentions media likers", "comment likes", "poll"}
REQUIRED_BY_TYPE = {
    "custom comments": ("comments",),
    "custom comments package": ("comments",),
    "custom replies": ("comments",),
    "mentions with hashtags": ("usernames", "hashtags"),
    "mentions custom list": ("usernames",),
    "mentions hashtag": ("hashtag",),
    "mentions user followers": ("username",),
    "mentions media likers": ("media",),
    "comment likes": ("username",),
    "seo": ("keywords",),
    "poll": ("answer_number",),
    "subscriptions": ("username", "min", "max"),
}
EXTRA_FIELDS = ("comments", "usernames", "hashtags", "hashtag", "username", "media", "keywords", "answer_number",
                "min", "max", "posts", "old_posts", "delay", "expiry")
SUBSCRIPTION_DELAYS = (0, 5, 10, 15, 30, 60, 90)


def _lines(value):
    if value is None:
        return []
    if isinstance(value, list | tuple):
        items = [str(v) for v in value]
    else:
        items = str(value).replace("\r\n", "\n").split("\n")
    return [line.strip() for line in items if str(line).strip()]


def _fingerprint(provider, service, data):
    body = json.dumps({"provider": provider.pk, "service": service.pk, **data}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def validate_order(user, provider, service, data):
    """Return the cleaned order fields or raise ValidationError({field: [messages]})."""
    errors = {}
    if provider.integration.owner_id != user.pk:
        raise ValidationError({"provider": [_("Unknown provider.")]})
    if provider.integration.status != Status.ACTIVE:
        errors["provider"] = [_("This provider is not active.")]
    if service.provider_id != provider.pk:
        raise ValidationError({"service": [_("This service does not belong to the chosen provider.")]})
    if not service.is_active:
        errors["service"] = [_("This service is no longer offered by the panel.")]
    kind = (service.type or "default").strip().lower()
    clean = {"link": (data.get("link") or "").strip(), "quantity": None, "runs": None, "interval": None, "extra": {}}
    if kind != "subscriptions":
        try:
            URLValidator(schemes=["http", "https"])(clean["link"])
        except ValidationError:
            errors["link"] = [_("Enter a valid link (http or https URL).")]
    for name in REQUIRED_BY_TYPE.get(kind, ()):
        value = data.get(name)
        if value in (None, "", []):
            errors[name] = [_("This field is required for services of type “%(type)s”.") % {"type": service.type}]
    for name in EXTRA_FIELDS:
        value = data.get(name)
        if value not in (None, "", []):
            clean["extra"][name] = "\n".join(_lines(value)) if name in ("comments", "usernames") else value
    quantity = data.get("quantity")
    if kind in ("custom comments", "custom replies", "mentions custom list"):
        quantity = len(_lines(data.get("comments") if "comments" in kind or "replies" in kind
                              else data.get("usernames")))
        quantity = quantity or None
    if kind in QUANTITY_TYPES or (kind not in REQUIRED_BY_TYPE and kind != "package"):
        if quantity in (None, ""):
            errors["quantity"] = [_("This field is required.")]
    if quantity not in (None, "") and kind not in ("package", "subscriptions"):
        try:
            quantity = int(quantity)
        except (TypeError, ValueError):
            errors["quantity"] = [_("A whole number is required.")]
        else:
            if not service.min_quantity <= quantity <= service.max_quantity:
                field = "comments" if kind in ("custom comments", "custom replies") else "quantity"
                errors[field] = [_("The quantity must be between %(min)s and %(max)s for this service.")
                                 % {"min": service.min_quantity, "max": service.max_quantity}]
            clean["quantity"] = quantity
    if kind == "subscriptions" and "min" not in errors and "max" not in errors:
        try:
            low, high = int(data["min"]), int(data["max"])
        except (TypeError, ValueError):
            errors["min"] = [_("A whole number is required.")]
        else:
            if low > high or low < service.min_quantity or high > service.max_quantity:
                errors["max"] = [_("The quantity must be between %(min)s and %(max)s for this service.")
                                 % {"min": service.min_quantity, "max": service.max_quantity}]
        delay = data.get("delay")
        if delay not in (None, "") and str(delay) not in {str(d) for d in SUBSCRIPTION_DELAYS}:
            errors["delay"] = [_("Choose one of 0, 5, 10, 15, 30, 60 or 90 minutes.")]
    runs, interval = data.get("runs"), data.get("interval")
    if runs not in (None, "") or interval not in (None, ""):
        if kind != "default":
            errors["runs"] = [_("Drip-feed is only available for services of type Default.")]
        elif runs in (None, "") or interval in (None, ""):
            errors["runs"] = [_("Drip-feed needs both runs and interval.")]
        else:
            try:
                clean["runs"], clean["interval"] = int(runs), int(interval)
                if clean["runs"] < 1 or clean["interval"] < 1:
                    raise ValueError
            except (TypeError, ValueError):
                errors["runs"] = [_("Runs and interval must be positive whole numbers.")]
    if errors:
        raise ValidationError(errors)
    return clean


def place_order(user, *, provider, service, data, idempotency_key=""):
    """Validate and write the local order row (before any call to the panel).

    Returns (order, created). The same idempotency key returns the same order; the same key with a
    different request raises IdempotencyConflict."""
    key = (idempotency_key or "").strip()[:255]
    fingerprint = _fingerprint(provider, service, data)
    if key:
        existing = SMMOrder.objects.filter(owner=user, idempotency_key=key).first()
        if existing:
            if existing.request_fingerprint != fingerprint:
                raise IdempotencyConflict(key)
            return existing, False
    clean = validate_order(user, provider, service, data)
    estimate = None
    if clean["quantity"] is not None:
        estimate = (service.rate * clean["quantity"] * (clean["runs"] or 1) / 1000).quantize(Decimal("0.00001"))
    elif service.type.lower() == "package":
        estimate = service.rate
    try:
        with transaction.atomic():
            order = SMMOrder.objects.create(
                owner=user, provider=provider, service=service, link=clean["link"], quantity=clean["quantity"],
                runs=clean["runs"], interval=clean["interval"], extra=clean["extra"], charge=estimate,
                currency=provider.currency, idempotency_key=key, request_fingerprint=fingerprint,
            )
    except IntegrityError:
        # A concurrent request with the same key won the race: hand back its order.
        existing = SMMOrder.objects.filter(owner=user, idempotency_key=key).first()
        if existing is None:
            raise
        if existing.request_fingerprint != fingerprint:
            raise IdempotencyConflict(key) from None
        return existing, False
    return order, True


def _may_have_been_accepted(exc):
    """After sending an `add`: could the panel have taken the order despite this error?"""
    if isinstance(exc, UnknownOutcome):
        return True
    if isinstance(exc, ProviderAuthError | ProviderValidationError):
        return False
    if isinstance(exc, ProviderProtocolError):
        return True  # it answered something unreadable after receiving the order
    if isinstance(exc, ProviderUnavailable):
        return exc.status_code is not None  # a 5xx may come from a proxy after the panel acted
    return False


def _amount(value):
    """An amount as people write it: 5.00000 -> 5.00, 0.12500 -> 0.125."""
    whole, _dot, fraction = f"{value.normalize():f}".partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


_stats = threading.local()


@contextmanager
def stats_batch():
    """Within the block, a provider's statistics are refreshed once at its end rather than after each
    of its orders (a retry run failing a hundred orders of one panel)."""
    if getattr(_stats, "pending", None) is not None:
        yield
        return
    _stats.pending = set()
    try:
        yield
    finally:
        pending, _stats.pending = _stats.pending, None
        for provider_pk in sorted(pending):
            refresh_stats(provider_pk)


def stats_changed(provider_pk):
    pending = getattr(_stats, "pending", None)
    if pending is None:
        refresh_stats(provider_pk)
    else:
        pending.add(provider_pk)


class OrderSubmission(ExternalWrite):
    """The panel's `add`, exactly once: `created` is the queue, `submitting` the claim.

    An order whose panel's last known balance is below its estimated charge is held: it stays
    queued, unclaimed and unsent, with the reason in its `error`, and the retry job leaves it alone
    until a balance check shows enough (`due`). Holding happens before the claim, so a held order is
    never half-sent, and whichever path sends it later goes through the same claim."""

    model = SMMOrder
    machine = SMMOrder.machine
    queued, submitting, unknown, failed = S.CREATED, S.SUBMITTING, S.UNKNOWN, S.FAILED
    stale_after = STALE_SUBMISSION

    def get_queryset(self):
        return SMMOrder.objects.select_related("provider__integration", "service")

    def due(self, now=None):
        return super().due(now).exclude(short_of_balance())

    def claim(self, obj, now=None):
        if self.state_of(obj) == self.queued and self.hold(obj):
            return False
        return super().claim(obj, now)

    def hold(self, order):
        """Whether `order` must wait for the panel's balance; if so, say why on the order (once per
        balance figure) and warn the operator: a log warning, and the provider's `low_balance` flag,
        which the admin lists and filters."""
        provider = order.provider
        if (
            provider.balance is None
            or order.charge is None
            or provider.currency != order.currency
            or provider.balance >= order.charge
        ):
            return False
        message = _(
            "Held: balance too low. The panel's balance (%(balance)s %(currency)s) is below this order's "
            "estimated charge (%(charge)s %(currency)s); it is sent once a balance check shows enough."
        ) % {"balance": _amount(provider.balance), "currency": provider.currency, "charge": _amount(order.charge)}
        now = timezone.now()
        newly = SMMOrder.objects.filter(pk=order.pk, status=S.CREATED).exclude(error=message).update(
            error=message, updated_at=now
        )
        order.error = message
        if newly:
            logger.warning("SMM order %s held: provider %s (%s) has %s %s, the order needs %s", order.pk, provider,
                           provider.pk, provider.balance, provider.currency, order.charge)
            SMMProvider.objects.filter(pk=provider.pk, low_balance=False).update(low_balance=True, updated_at=now)
        return True

    def submit(self, obj, now=None):
        try:
            outcome = super().submit(obj, now)
        except Exception:
            stats_changed(obj.provider_id)  # it is unknown now
            raise
        # Failed is final; unknown counts as submitted. A sent order is open: the poll counts it.
        if outcome in (Outcome.FAILED, Outcome.UNKNOWN):
            stats_changed(obj.provider_id)
        return outcome

    def retry_due(self, limit=100, now=None):
        with stats_batch():
            return super().retry_due(limit=limit, now=now)

    def sweep_stale(self, older_than=None, now=None):
        pks = super().sweep_stale(older_than, now)
        if pks:
            with stats_batch():
                for provider_pk in SMMOrder.objects.filter(pk__in=pks).values_list("provider_id", flat=True):
                    stats_changed(provider_pk)
        return pks

    def resolve_sent(self, obj, reference, *, actor=None, note=""):
        moved = super().resolve_sent(obj, reference, actor=actor, note=note)
        if moved:
            stats_changed(obj.provider_id)
        return moved

    def resolve_failed(self, obj, *, actor=None, note=""):
        moved = super().resolve_failed(obj, actor=actor, note=note)
        if moved:
            stats_changed(obj.provider_id)
        return moved

    def send(self, order):
        service = order.service
        return order.provider.adapter.add(
            service.type, service=service.service_id, link=order.link, quantity=order.quantity,
            runs=order.runs, interval=order.interval, **order.extra,
        )

    def sent_state_and_fields(self, order, external_id):
        return S.PENDING, {"external_order_id": external_id, "submitted_at": timezone.now(), "error": ""}

    def may_have_been_accepted(self, exc):
        return _may_have_been_accepted(exc)

    def failed_fields(self, order, error):
        return {"completed_at": timezone.now()}

    def resolved_state_and_fields(self, order, external_order_id):
        return self.sent_state_and_fields(order, external_order_id)

    def check_reference(self, order, external_order_id):
        taken = SMMOrder.objects.filter(provider=order.provider_id, external_order_id=external_order_id)
        if taken.exclude(pk=order.pk).exists():
            raise ValidationError({"external_order_id": [_("Another order already has this panel order id.")]})


submission = OrderSubmission()


def submit_order(order):
    """Send a created order to the panel exactly once (see OrderSubmission). Returns the order as it
    is now: pending, unknown (the answer was lost), failed, or created again with a later attempt
    (the request certainly did not leave us)."""
    order = submission.get_queryset().get(pk=order.pk)
    submission.submit(order)
    return order


def retry_queued_orders(limit=100):
    """Send the queued orders that are due (each under its own claim). Returns counts by outcome."""
    return submission.retry_due(limit=limit)


def resolve_unknown(order, *, external_order_id="", mark_failed=False, note="", actor=None):
    """Operator's decision for an `unknown` order: the panel's order id from its history, or failed."""
    order.refresh_from_db()
    if order.status != S.UNKNOWN:
        raise ValidationError(_("Only orders under review can be resolved."))
    if mark_failed:
        message = note or _("Marked as failed by an operator: the panel has no such order.")
        return submission.resolve_failed(order, actor=actor, note=message)
    if not str(external_order_id).strip():
        raise ValidationError({"external_order_id": [_("Enter the panel's order id.")]})
    return submission.resolve_sent(order, external_order_id, actor=actor, note=note)


def mark_stale_submissions(older_than=STALE_SUBMISSION):
    """A worker that died between claiming and recording an `add` leaves `submitting`: under review.
    Returns how many orders were moved."""
    return len(submission.sweep_stale(older_than))


def refresh_order(order):
    """One order's status now (admin action, API detail refresh)."""
    if not order.external_order_id or order.status not in OPEN_STATES:
        return order
    answer = order.provider.adapter.status(order.external_order_id)
    if answer.status is None:
        SMMOrder.objects.filter(pk=order.pk).update(error=answer.error[:2000], last_checked_at=timezone.now())
        return order
    fields = {"last_checked_at": timezone.now(), "error": ""}
    for name in ("charge", "start_count", "remains"):
        if getattr(answer, name) is not None:
            fields[name] = getattr(answer, name)
    if answer.status in FINAL_STATES:
        fields["completed_at"] = timezone.now()
    if answer.status == order.status:
        # Only while it still is in the status we read: a row the poll finished meanwhile is left alone.
        SMMOrder.objects.filter(pk=order.pk, status=order.status).update(**fields, updated_at=timezone.now())
    elif order.transition(answer.status, reason=_("Status from the panel (refresh)."), **fields):
        if answer.status in FINAL_STATES:
            stats_changed(order.provider_id)
    order.refresh_from_db()
    return order


def refill_order(order):
    """Ask the panel to refill a completed or partial order; returns the SMMRefill row."""
    if order.status not in (S.COMPLETED, S.PARTIAL):
        raise ValidationError(_("Only completed or partial orders can be refilled."))
    if not order.service.refill:
        raise ValidationError(_("This service offers no refill."))
    refill = SMMRefill.objects.create(order=order)
    R, machine = SMMRefill.Status, SMMRefill.machine
    try:
        external_id = order.provider.adapter.refill(order.external_order_id)
    except UnknownOutcome as exc:
        machine.move(refill, R.UNKNOWN, reason=str(exc), error=str(exc))
    except ProviderValidationError as exc:
        machine.move(refill, R.REJECTED, reason=str(exc), error=str(exc))
    except ProviderError as exc:
        machine.move(refill, R.FAILED, reason=str(exc), error=str(exc))
        raise
    else:
        machine.move(refill, R.PENDING, external_refill_id=external_id)
    return refill


def poll_refills(provider):
    """The panel's answer for every open refill: each status move along SMMRefill.TRANSITIONS (in
    bulk: one conditional UPDATE per new status, with the history rows of the refills it moved);
    the check time of the others, and the panel's error for those it could not answer."""
    refills = list(SMMRefill.objects.filter(order__provider=provider, status__in=SMMRefill.OPEN)
                   .exclude(external_refill_id="").values_list("pk", "external_refill_id", "status"))
    if not refills:
        return 0
    answers = provider.adapter.refill_statuses([external_id for _pk, external_id, _status in refills])
    now = timezone.now()
    machine = SMMRefill.machine
    moving, errors, checked = {}, {}, []
    for pk, external_id, status in refills:
        answer = answers.get(external_id)
        if isinstance(answer, Exception):
            errors.setdefault(str(answer), []).append(pk)
        elif answer and answer != status and machine.can_move(status, answer):
            moving.setdefault(answer, []).append(pk)
        else:
            checked.append(pk)
    with transaction.atomic():
        for new, pks in moving.items():
            moved = set(machine.move_many(SMMRefill.objects.filter(pk__in=pks), new,
                                          reason=_("Status from the panel's poll."),
                                          last_checked_at=now, updated_at=now))
            checked.extend(pk for pk in pks if pk not in moved)  # moved elsewhere meanwhile
        for error, pks in errors.items():
            SMMRefill.objects.filter(pk__in=pks).update(error=error, last_checked_at=now, updated_at=now)
        if checked:
            SMMRefill.objects.filter(pk__in=checked).update(last_checked_at=now, updated_at=now)
    return len(refills)


def cancel_order(order):
    """Ask the panel to cancel; the status becomes Canceled when the panel says so (next poll)."""
    if order.status not in OPEN_STATES:
        raise ValidationError(_("Only pending or running orders can be canceled."))
    if not order.service.cancel:
        raise ValidationError(_("This service cannot be canceled."))
    result = order.provider.adapter.cancel([order.external_order_id]).get(order.external_order_id)
    if isinstance(result, Exception):
        raise ValidationError(str(result))
    if result is None:
        raise ProviderProtocolError(_("The panel did not answer for this order."))
    now = timezone.now()
    SMMOrder.objects.filter(pk=order.pk).update(cancel_requested_at=now, updated_at=now)
    order.cancel_requested_at = now
    return order


def cleanup_orders(days=180, batch=CLEANUP_BATCH):
    """Delete finished orders (and their refills) older than `days`, a batch per transaction; their
    figures stay in their provider's statistics (smm.providers.delete_orders_keeping_stats)."""
    cutoff = timezone.now() - timedelta(days=days)
    old = SMMOrder.objects.filter(status__in=FINAL_STATES, updated_at__lt=cutoff)
    deleted = 0
    for provider_pk in list(old.order_by().values_list("provider_id", flat=True).distinct()):
        while pks := list(old.filter(provider_id=provider_pk).order_by("pk").values_list("pk", flat=True)[:batch]):
            done = delete_orders_keeping_stats(provider_pk, pks)
            deleted += done
            if not done:
                break
    return deleted
