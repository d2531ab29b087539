"""SMM domain services: the one place that changes SMM state.

Views, Celery tasks, management commands and admin actions all call these functions. Each loads
the provider's registry row, asks the adapter (smm.panel.PanelV2) to speak the protocol, and
records the outcome with conditional updates (see SMMOrder.TRANSITIONS).
"""

import collections
import hashlib
import json
import logging
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum
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
from integrations.models import ExternalIntegration, Kind, Status
from integrations.prefetch import Prefetcher

from .models import FINAL_STATES, OPEN_STATES, OrderStatus, SMMOrder, SMMProvider, SMMRefill, SMMService
from .panel import BATCH

logger = logging.getLogger("smm")
S = OrderStatus

# The seed's three default panels: code -> (name, display name, API URL).
DEFAULT_PROVIDERS = {
    "jap": ("justanotherpanel", "Just Another Panel", "https://justanotherpanel.com/api/v2"),
    "smmkings": ("smmkings", "SMM Kings", "https://smmkings.com/api/v2"),
    "secsers": ("secsers", "Secsers", "https://secsers.com/api/v2"),
}
SMM_CODES = ("jap", "smmkings", "secsers", "panel_v2")
STALE_SUBMISSION = timedelta(minutes=10)


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


# --- locks --------------------------------------------------------------------------------------
@contextmanager
def provider_lock(provider_pk, job, ttl=900):
    """One holder per (job, provider) across every process (shared cache `add`)."""
    key = f"smm:lock:{job}:{provider_pk}"
    token = uuid.uuid4().hex
    acquired = cache.add(key, token, ttl)
    try:
        yield acquired
    finally:
        if acquired and cache.get(key) == token:
            cache.delete(key)


# --- providers ----------------------------------------------------------------------------------
def default_code_for(name):
    for code, (default_name, _display, _url) in DEFAULT_PROVIDERS.items():
        if name in (code, default_name):
            return code
    return "panel_v2"


@transaction.atomic
def create_provider(
    *, owner, name, display_name, api_url, api_key, priority=1, code=None, is_active=True,
    low_balance_threshold=None, created_by=None,
):
    integration = ExternalIntegration.objects.create(
        kind=Kind.SMM,
        code=code or default_code_for(name),
        name=name,
        display_name=display_name or name,
        owner=owner,
        base_url=api_url,
        credentials={"api_key": api_key},
        priority=priority,
        status=Status.ACTIVE if is_active else Status.INACTIVE,
        created_by=created_by or owner,
    )
    provider = SMMProvider(integration=integration)
    if low_balance_threshold is not None:
        provider.low_balance_threshold = low_balance_threshold
    provider.save()
    return provider


@transaction.atomic
def update_provider(provider, **fields):
    integration = provider.integration
    mapping = {"name": "name", "display_name": "display_name", "api_url": "base_url", "priority": "priority"}
    for key, attr in mapping.items():
        if fields.get(key) is not None:
            setattr(integration, attr, fields[key])
    if fields.get("api_key"):
        integration.credentials = {**(integration.credentials or {}), "api_key": fields["api_key"]}
    if fields.get("code"):
        integration.code = fields["code"]
    if fields.get("is_active") is not None:
        integration.status = Status.ACTIVE if fields["is_active"] else Status.INACTIVE
    integration.save()
    if fields.get("low_balance_threshold") is not None:
        provider.low_balance_threshold = fields["low_balance_threshold"]
        provider.low_balance = provider.balance is not None and provider.balance < provider.low_balance_threshold
        provider.save(update_fields=["low_balance_threshold", "low_balance", "updated_at"])
    return provider


def toggle_provider(provider):
    """Active <-> inactive (an `error`/`maintenance` provider is switched on)."""
    integration = provider.integration
    integration.set_status(Status.INACTIVE if integration.status == Status.ACTIVE else Status.ACTIVE)
    return provider


def initialize_default_providers(user, keys, base_urls=None):
    """The seed's `initializeDefaultProviders(userId, keys)`: create (or re-key) the default panels.

    `keys` maps a panel (its code `jap`, or the seed's name `justanotherpanel`) to an API key;
    panels without a key are skipped. Running it again with the same keys changes nothing."""
    providers = []
    for code, (name, display, url) in DEFAULT_PROVIDERS.items():
        key = keys.get(code) or keys.get(name)
        if not key:
            continue
        url = (base_urls or {}).get(code, url)
        existing = SMMProvider.objects.select_related("integration").filter(
            integration__owner=user, integration__name=name
        ).first()
        if existing is None:
            providers.append(create_provider(owner=user, name=name, display_name=display, api_url=url,
                                             api_key=key, code=code))
            continue
        integration = existing.integration
        if (integration.credentials or {}).get("api_key") != key or integration.base_url != url:
            update_provider(existing, api_key=key, api_url=url)
        providers.append(existing)
    return providers


# --- catalogue ----------------------------------------------------------------------------------
SERVICE_COLUMNS = ("service_id", "name", "type", "category", "rate", "min_quantity", "max_quantity",
                   "refill", "cancel", "dripfeed", "description")
UPDATED_COLUMNS = (*SERVICE_COLUMNS[1:], "is_active", "last_seen_at", "updated_at")


def _upsert_services(provider, rows, now):
    """Insert-or-update the whole catalogue in ONE statement (JSON parameter, any size)."""
    table = connection.ops.quote_name(SMMService._meta.db_table)
    payload = json.dumps([
        {**{c: getattr(r, c) for c in SERVICE_COLUMNS}, "rate": str(r.rate)} for r in rows
    ])
    cols = ", ".join(["provider_id", *SERVICE_COLUMNS, "is_active", "last_seen_at", "created_at", "updated_at"])
    updates = ", ".join(f"{c} = excluded.{c}" for c in UPDATED_COLUMNS)
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            types = ("service_id text, name text, type text, category text, rate numeric, min_quantity bigint, "
                     "max_quantity bigint, refill boolean, cancel boolean, dripfeed boolean, description text")
            cursor.execute(
                f"INSERT INTO {table} ({cols}) "
                f"SELECT %s, {', '.join('x.' + c for c in SERVICE_COLUMNS)}, true, %s, %s, %s "
                f"FROM jsonb_to_recordset(%s::jsonb) AS x({types}) "
                f"ON CONFLICT (provider_id, service_id) DO UPDATE SET {updates}",
                [provider.pk, stamp, stamp, stamp, payload],
            )
        elif connection.vendor == "sqlite":
            picks = ", ".join(f"json_extract(value, '$.{c}')" for c in SERVICE_COLUMNS)
            cursor.execute(
                f"INSERT INTO {table} ({cols}) SELECT %s, {picks}, 1, %s, %s, %s FROM json_each(%s) WHERE true "
                f"ON CONFLICT (provider_id, service_id) DO UPDATE SET {updates}",
                [provider.pk, stamp, stamp, stamp, payload],
            )
        else:  # pragma: no cover - other backends: batched, still correct
            SMMService.objects.bulk_create(
                [SMMService(provider=provider, is_active=True, last_seen_at=now,
                            **{c: getattr(r, c) for c in SERVICE_COLUMNS}) for r in rows],
                update_conflicts=True, unique_fields=["provider", "service_id"], update_fields=list(UPDATED_COLUMNS),
            )


def sync_services(provider):
    """Fetch the panel's catalogue and upsert it; services the panel no longer lists are switched off
    (kept for the orders that reference them). A constant number of queries whatever the size."""
    try:
        rows = provider.adapter.services()
    except ProviderError as exc:
        SMMProvider.objects.filter(pk=provider.pk).update(last_sync_error=str(exc)[:2000])
        raise
    unique = list({r.service_id: r for r in rows}.values())
    now = timezone.now()
    with transaction.atomic():
        before = SMMService.objects.filter(provider=provider).count()
        if unique:
            _upsert_services(provider, unique, now)
        deactivated = SMMService.objects.filter(provider=provider, is_active=True, last_seen_at__lt=now).update(
            is_active=False, updated_at=now
        )
        counts = SMMService.objects.filter(provider=provider).aggregate(
            total=Count("id"), active=Count("id", filter=Q(is_active=True))
        )
        SMMProvider.objects.filter(pk=provider.pk).update(
            services_count=counts["active"], last_sync_at=now, last_sync_error="", updated_at=now
        )
    provider.services_count, provider.last_sync_at, provider.last_sync_error = counts["active"], now, ""
    result = {"received": len(unique), "created": counts["total"] - before,
              "updated": len(unique) - (counts["total"] - before), "deactivated": deactivated,
              "active": counts["active"]}
    logger.info("SMM sync of %s: %s", provider, result)
    return result


# --- orders -------------------------------------------------------------------------------------
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


def submit_order(order):
    """Send a created order to the panel exactly once. A timeout leaves it `unknown` (never re-sent)."""
    order = SMMOrder.objects.select_related("provider__integration", "service").get(pk=order.pk)
    if not order.transition(S.SUBMITTING):
        return order  # already sent (or being sent) by someone else
    service = order.service
    try:
        external_id = order.provider.adapter.add(
            service.type, service=service.service_id, link=order.link, quantity=order.quantity,
            runs=order.runs, interval=order.interval, **order.extra,
        )
    except ProviderError as exc:
        if _may_have_been_accepted(exc):
            order.transition(S.UNKNOWN, error=str(exc)[:2000])
            logger.warning("SMM order %s outcome unknown after add: %s", order.pk, exc)
        else:
            order.transition(S.FAILED, error=str(exc)[:2000], completed_at=timezone.now())
        return order
    order.transition(S.PENDING, external_order_id=external_id, submitted_at=timezone.now(), error="")
    return order


def resolve_unknown(order, *, external_order_id="", mark_failed=False, note=""):
    """Operator's decision for an `unknown` order: the panel's order id from its history, or failed."""
    order.refresh_from_db()
    if order.status != S.UNKNOWN:
        raise ValidationError(_("Only orders under review can be resolved."))
    if mark_failed:
        message = note or _("Marked as failed by an operator: the panel has no such order.")
        return order.transition(S.FAILED, error=message, completed_at=timezone.now())
    external_order_id = str(external_order_id).strip()
    if not external_order_id:
        raise ValidationError({"external_order_id": [_("Enter the panel's order id.")]})
    taken = SMMOrder.objects.filter(provider=order.provider_id, external_order_id=external_order_id).exclude(
        pk=order.pk
    )
    if taken.exists():
        raise ValidationError({"external_order_id": [_("Another order already has this panel order id.")]})
    return order.transition(S.PENDING, external_order_id=external_order_id, submitted_at=timezone.now(), error="")


def mark_stale_submissions(older_than=STALE_SUBMISSION):
    """A worker that died between claiming and recording an `add` leaves `submitting`: under review."""
    cutoff = timezone.now() - older_than
    return SMMOrder.objects.filter(status=S.SUBMITTING, updated_at__lt=cutoff).update(
        status=S.UNKNOWN, error=_("The submission was interrupted; check the panel's order history."),
        updated_at=timezone.now(),
    )


WRITTEN_FIELDS = ("status", "charge", "start_count", "remains", "currency", "error", "completed_at")
POLL_FIELDS = [*WRITTEN_FIELDS, "last_checked_at", "updated_at"]


# The poll holds the log rows and counters of its calls and writes them together with the orders'
# updates, one transaction every POLL_FLUSH_CALLS calls or POLL_FLUSH_SECONDS seconds (and at the end,
# also after an error): one commit for many calls instead of three per call.
POLL_FLUSH_CALLS = 20
POLL_FLUSH_SECONDS = 5.0
# ... or sooner, from this many calls, when the next answer is not in yet: the write then costs no
# time, and less is left to write after the last answer.
POLL_IDLE_FLUSH_CALLS = 5


class _Polled:
    """An open order as the poll needs it: ids and the fields the poll writes, as they were read and
    as they are now. Lighter than a model instance (a poll holds pages of thousands)."""

    __slots__ = ("pk", "external_order_id", *WRITTEN_FIELDS, "read")

    def __init__(self, row):
        self.pk, self.external_order_id = row[0], row[1]
        self.read = row[2:]
        for field, value in zip(WRITTEN_FIELDS, self.read, strict=True):
            setattr(self, field, value)

    def can_move_to(self, new):
        return new in SMMOrder.TRANSITIONS.get(self.status, set())

    @property
    def changed(self):
        return tuple(getattr(self, field) for field in WRITTEN_FIELDS) != self.read


def poll_orders(provider, *, batch=BATCH):
    """Ask the panel about every open order: ceil(N/100) calls, made one at a time; the answers are
    written in bulk, a few calls' worth per transaction, with the calls' log rows."""
    adapter = provider.adapter
    client = adapter.client
    stats = {"checked": 0, "changed": 0, "finished": 0, "errors": 0, "calls": 0}
    pending = []  # (orders, when) polled but not written yet
    flushed_at = time.monotonic()

    def flush():
        nonlocal flushed_at
        with transaction.atomic():
            client.flush_records()
            _write_polled(pending)
        pending.clear()
        flushed_at = time.monotonic()

    chunks = _open_chunks(provider, batch)
    queued = collections.deque()  # (chunk, its panel ids) handed to the fetcher, oldest first

    def queue_more(ahead, limit):
        while len(queued) < limit and (chunk := next(chunks, None)):
            ids = [o.external_order_id for o in chunk]
            queued.append((chunk, ids))
            ahead.put(ids)

    with client.deferred_records():
        # The calls run on a helper thread, one at a time and in order, up to POLL_FLUSH_CALLS
        # answers ahead: the panel's latency and our own reading, writing and loading of the next
        # page of orders overlap instead of adding up. A panel sees the same single stream of calls
        # as from a plain loop.
        fetch = client.carry(adapter.fetch_statuses)
        with Prefetcher(fetch, depth=POLL_FLUSH_CALLS, name="smm-poll") as ahead:
            try:
                queue_more(ahead, 1)  # the first call goes out before the next page is read
                queue_more(ahead, POLL_FLUSH_CALLS)
                while queued:
                    chunk, ids = queued.popleft()
                    answers = adapter.read_statuses(ids, ahead.get())
                    queue_more(ahead, POLL_FLUSH_CALLS)
                    stats["calls"] += 1
                    now = timezone.now()
                    _apply_answers(chunk, answers, now, stats)
                    pending.append((chunk, now))
                    if (
                        len(pending) >= POLL_FLUSH_CALLS
                        or time.monotonic() - flushed_at >= POLL_FLUSH_SECONDS
                        or (len(pending) >= POLL_IDLE_FLUSH_CALLS and not ahead.ready())
                    ):
                        flush()
            finally:
                ahead.stop()  # after an error: the call in flight ends, and is logged, first
                flush()
    refresh_stats(provider)
    return stats


def _open_chunks(provider, batch):
    """The provider's open orders in batches, read a page at a time in id order. The first page is
    one batch, so that the first call goes out at once; the later ones are read while a call is in
    flight."""
    query = (
        SMMOrder.objects.filter(provider=provider, status__in=OPEN_STATES)
        .exclude(external_order_id="")
        .order_by("pk")
        .values_list("pk", "external_order_id", *WRITTEN_FIELDS)
    )
    after, size = 0, batch
    while True:
        page = [_Polled(row) for row in query.filter(pk__gt=after)[:size]]
        for start in range(0, len(page), batch):
            yield page[start : start + batch]
        if len(page) < size:
            return
        after, size = page[-1].pk, batch * POLL_FLUSH_CALLS


def _apply_answers(chunk, answers, now, stats):
    for order in chunk:
        answer = answers.get(order.external_order_id)
        stats["checked"] += 1
        if answer is None or answer.status is None:
            order.error = (answer.error if answer else "")[:2000]
            stats["errors"] += 1
            continue
        if answer.status != order.status:
            if not order.can_move_to(answer.status):
                continue
            order.status = answer.status
            stats["changed"] += 1
            if answer.status in FINAL_STATES:
                order.completed_at = now
                stats["finished"] += 1
        if answer.charge is not None:
            order.charge = answer.charge
        order.start_count = answer.start_count if answer.start_count is not None else order.start_count
        order.remains = answer.remains if answer.remains is not None else order.remains
        order.currency = answer.currency or order.currency
        order.error = ""


def _write_polled(batches):
    """Write polled orders, given as (orders, when checked) batches, conditional on each row still
    being open (a row resolved or finished meanwhile is left alone): one UPDATE for the orders whose
    fields changed, one that only stamps the check time on the others. Django's bulk_update builds a
    CASE per field and row, which costs more CPU than the panel's answer; a JSON parameter joined in
    SQL does not."""
    if connection.vendor not in ("postgresql", "sqlite"):  # pragma: no cover - other backends
        rows = [SMMOrder(pk=o.pk, last_checked_at=now, updated_at=now, **{f: getattr(o, f) for f in WRITTEN_FIELDS})
                for orders, now in batches for o in orders]
        SMMOrder.objects.filter(status__in=OPEN_STATES).bulk_update(rows, POLL_FIELDS)
        return
    postgres = connection.vendor == "postgresql"

    def stamp(value):
        if value is None:
            return None
        return value.isoformat() if postgres else connection.ops.adapt_datetimefield_value(value)

    changed, unchanged, ranges = [], [], []
    for orders, now in batches:
        if not orders:
            continue
        ranges.append((max(o.pk for o in orders), stamp(now)))
        for order in orders:
            if order.changed:
                changed.append((order, now))
            else:
                unchanged.append(order.pk)
    table = connection.ops.quote_name(SMMOrder._meta.db_table)
    open_states = ", ".join(f"'{state}'" for state in OPEN_STATES)
    with connection.cursor() as cursor:
        if unchanged:
            # Batches are consecutive slices of the orders sorted by id: the check time by id range.
            ranges.sort()
            case = "CASE " + " ".join("WHEN id <= %s THEN %s" for _ in ranges) + " END"
            if postgres:
                case = case.replace("THEN %s", "THEN %s::timestamptz")
            case_params = [value for pair in ranges for value in pair]
            # bigint[]: psycopg would send small ids as smallint[], whose cross-type comparison
            # PostgreSQL cannot hash, so each row would scan the whole array.
            where = "id = ANY(%s::bigint[])" if postgres else "id IN (SELECT value FROM json_each(%s))"
            cursor.execute(
                f"UPDATE {table} SET last_checked_at = {case}, updated_at = {case} "
                f"WHERE {where} AND status IN ({open_states})",
                [*case_params, *case_params, unchanged if postgres else json.dumps(unchanged)],
            )
        if not changed:
            return
        rows = [{"id": o.pk, "status": o.status, "charge": None if o.charge is None else str(o.charge),
                 "start_count": o.start_count, "remains": o.remains, "currency": o.currency or "",
                 "error": o.error or "", "completed_at": stamp(o.completed_at), "checked": stamp(now)}
                for o, now in changed]
        columns = WRITTEN_FIELDS
        if postgres:
            sets = ", ".join(f"{c} = v.{c}" for c in columns)
            cursor.execute(
                f"UPDATE {table} AS o SET {sets}, last_checked_at = v.checked, updated_at = v.checked "
                "FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, status text, charge numeric, start_count bigint, "
                "remains bigint, currency text, error text, completed_at timestamptz, checked timestamptz) "
                # `o.id = ANY(ids)` lets the planner go by primary key instead of the open-orders index.
                f"WHERE o.id = v.id AND o.id = ANY(%s::bigint[]) AND o.status IN ({open_states})",
                [json.dumps(rows), [o.pk for o, _ in changed]],
            )
        else:
            sets = ", ".join(f"{c} = json_extract(v.value, '$.{c}')" for c in columns)
            cursor.execute(
                f"UPDATE {table} SET {sets}, last_checked_at = json_extract(v.value, '$.checked'), "
                f"updated_at = json_extract(v.value, '$.checked') FROM json_each(%s) AS v "
                f"WHERE {table}.id = json_extract(v.value, '$.id') AND {table}.status IN ({open_states})",
                [json.dumps(rows)],
            )


def refresh_stats(provider):
    """The seed's statistics, recomputed from the orders in one query."""
    agg = SMMOrder.objects.filter(provider=provider).exclude(status__in=[S.CREATED, S.SUBMITTING]).aggregate(
        total=Count("id"),
        completed=Count("id", filter=Q(status=S.COMPLETED)),
        failed=Count("id", filter=Q(status=S.FAILED)),
        spent=Sum("charge", filter=Q(status__in=[S.COMPLETED, S.PARTIAL, *OPEN_STATES])),
    )
    values = dict(total_orders=agg["total"], completed_orders=agg["completed"], failed_orders=agg["failed"],
                  total_spent=agg["spent"] or Decimal("0"))
    SMMProvider.objects.filter(pk=provider.pk).update(**values)
    for name, value in values.items():
        setattr(provider, name, value)
    return values


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
        SMMOrder.objects.filter(pk=order.pk).update(**fields)
    else:
        order.transition(answer.status, **fields)
    order.refresh_from_db()
    return order


# --- refills and cancel -------------------------------------------------------------------------
def refill_order(order):
    """Ask the panel to refill a completed or partial order; returns the SMMRefill row."""
    if order.status not in (S.COMPLETED, S.PARTIAL):
        raise ValidationError(_("Only completed or partial orders can be refilled."))
    if not order.service.refill:
        raise ValidationError(_("This service offers no refill."))
    refill = SMMRefill.objects.create(order=order)
    try:
        refill.external_refill_id = order.provider.adapter.refill(order.external_order_id)
        refill.status = SMMRefill.Status.PENDING
    except UnknownOutcome as exc:
        refill.status, refill.error = SMMRefill.Status.UNKNOWN, str(exc)
    except ProviderValidationError as exc:
        refill.status, refill.error = SMMRefill.Status.REJECTED, str(exc)
    except ProviderError as exc:
        refill.status, refill.error = SMMRefill.Status.FAILED, str(exc)
        refill.save()
        raise
    refill.save()
    return refill


def poll_refills(provider):
    refills = list(SMMRefill.objects.filter(order__provider=provider, status__in=SMMRefill.OPEN)
                   .exclude(external_refill_id=""))
    if not refills:
        return 0
    answers = provider.adapter.refill_statuses([r.external_refill_id for r in refills])
    now = timezone.now()
    for refill in refills:
        answer = answers.get(refill.external_refill_id)
        refill.last_checked_at = refill.updated_at = now
        if isinstance(answer, Exception):
            refill.error = str(answer)
        elif answer:
            refill.status = answer
    SMMRefill.objects.filter(status__in=SMMRefill.OPEN).bulk_update(
        refills, ["status", "error", "last_checked_at", "updated_at"]
    )
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


# --- balance and housekeeping -------------------------------------------------------------------
def refresh_balance(provider):
    amount, currency = provider.adapter.balance()
    low = amount < provider.low_balance_threshold
    if low and not provider.low_balance:
        logger.warning("SMM provider %s (%s) balance is low: %s %s (threshold %s)", provider, provider.pk,
                       amount, currency, provider.low_balance_threshold)
    now = timezone.now()
    SMMProvider.objects.filter(pk=provider.pk).update(
        balance=amount, currency=currency, low_balance=low, balance_checked_at=now, updated_at=now
    )
    provider.balance, provider.currency, provider.low_balance, provider.balance_checked_at = amount, currency, low, now
    return amount, currency


def cleanup_orders(days=180):
    """Delete finished orders (and their refills) older than `days`."""
    cutoff = timezone.now() - timedelta(days=days)
    old = SMMOrder.objects.filter(status__in=FINAL_STATES, updated_at__lt=cutoff)
    SMMRefill.objects.filter(order__in=old).delete()
    deleted, _detail = old.delete()
    return deleted
