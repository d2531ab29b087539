"""The webhook receiver: refuse early, verify, store (bounded, encrypted, redacted), acknowledge,
process later.

Standard scheme (an adapter may replace verification with the provider's own, as Moamalat's
SecureHash, by returning True or False from `verify_webhook`):

- `X-Eishro-Timestamp`: unix seconds, ASCII digits only, within WEBHOOK_TOLERANCE_SECONDS of our clock.
- `X-Eishro-Event-Id` (optional): 1 to 200 characters among `A-Z a-z 0-9 _ - :`. No dot, so the
  signed text below can be split one way only.
- `X-Eishro-Signature`: `sha256=` + hex HMAC-SHA256, keyed with the row's `webhook_secret`, of
  `"{timestamp}.{event id}.{raw body}"`, the event id empty when the header is absent. A row without
  a webhook secret refuses every call: an empty key never verifies.

Replays. The signed timestamp bounds a captured request's life to the window; within it, a call is a
duplicate (acknowledged with 200 so the provider stops retrying, never processed) when
- its event id is already stored for that provider: the signed header's, else the adapter's id read
  from the (signed) body, else the body's keyed hash; under an adapter's own verification the header
  is ignored, since the provider's scheme may not cover it;
- or the same raw body was accepted for that provider within the window, whatever its id. The
  database decides (a partial unique constraint on the provider and a keyed hash of the body), so
  two copies racing each other cannot both pass; a copy arriving after the window releases the old
  row's hash and is a new event.

Refused calls. A kind or code with no registered adapter, and a code with no provider row behind it,
are answered 404 before anything is stored. Every refusal is counted in the shared cache (per
minute, `refused_recently`). A refusal addressed to an existing row is also stored, bounded
(MAX_STORED_HEADERS headers of at most MAX_HEADER_VALUE characters, the body redacted and cut to
MAX_REFUSED_BODY characters) and rate-limited: at most REFUSED_STORED_PER_SOURCE a minute per source
address (an IPv6 source is its /64) and REFUSED_STORED_PER_MINUTE a minute in all; beyond that a
refusal is only counted. So a flood costs a few rows a minute, whatever its size.

Accepted calls. The body as received is stored encrypted (`WebhookEvent.raw_body`, what handlers
read through `payload` and what a replay from the admin reprocesses); `body`, the only copy shown,
is redacted with the row's secrets and as its content type says. Headers are redacted and bounded
as for refusals.
"""

import ipaddress
import json
import logging
import re
import time
from datetime import timedelta
from hashlib import sha256
from hmac import compare_digest
from hmac import new as hmac_new

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.http import JsonResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .adapters import registered_codes
from .models import ExternalIntegration, Kind, WebhookEvent
from .outbox import publish
from .redaction import redact_body, redact_headers, redact_text

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Eishro-Signature"
TIMESTAMP_HEADER = "X-Eishro-Timestamp"
EVENT_ID_HEADER = "X-Eishro-Event-Id"

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_:-]{1,200}")

# What is kept of a call (refused or not): enough to tell an operator who sent what, not a copy
# of whatever an attacker chose to send.
MAX_STORED_HEADERS = 32
MAX_HEADER_NAME = 64
MAX_HEADER_VALUE = 256
MAX_REFUSED_BODY = 4096
# Headers an operator needs first: kept before any other, whatever the order they came in.
_FIRST_HEADERS = ("Content-Type", "Content-Length", "User-Agent", TIMESTAMP_HEADER, SIGNATURE_HEADER,
                  EVENT_ID_HEADER, "X-Forwarded-For")
REFUSED_STORED_PER_SOURCE = 10
REFUSED_STORED_PER_MINUTE = 100
_COUNT_TTL = 3600

MESSAGES = {
    "unknown_provider": _("No such provider."),
    "too_large": _("The webhook body is too large."),
    "no_secret": _("No webhook secret is configured for this provider."),
    "missing_signature": _("The webhook signature or timestamp is missing."),
    "stale_timestamp": _("The webhook timestamp is outside the allowed window."),
    "bad_event_id": _("The webhook event id must be 1 to 200 letters, digits, “_”, “-” or “:”."),
    "bad_signature": _("The webhook signature does not match."),
    "bad_body": _("The webhook body is not valid JSON or form data."),
}
STATUS = {"unknown_provider": 404, "too_large": 413, "no_secret": 403, "bad_event_id": 400, "bad_body": 400}


def sign(secret, timestamp, body, event_id=""):
    if not secret:
        # An HMAC keyed with nothing is a checksum anyone can compute.
        raise ValueError("A webhook is never signed with an empty secret.")
    if isinstance(body, str):
        body = body.encode()
    mac = hmac_new(secret.encode(), f"{timestamp}.{event_id}.".encode() + body, sha256)
    return f"sha256={mac.hexdigest()}"


def signed_headers(secret, body, event_id=None, timestamp=None):
    """Headers a sender (a simulator, a test) attaches to a webhook."""
    timestamp = str(int(timestamp if timestamp is not None else time.time()))
    event_id = str(event_id) if event_id else ""
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body, event_id)}
    if event_id:
        headers[EVENT_ID_HEADER] = event_id
    return headers


class Rejected(Exception):
    def __init__(self, code, integration=None):
        self.code = code
        self.status = STATUS.get(code, 401)
        self.integration = integration  # the row it was addressed to, if any: refusals are stored only then
        super().__init__(code)

    @property
    def message(self):
        return str(MESSAGES[self.code])


def verify_standard(request, secret):
    """Check the standard scheme; return the event id the signature vouches for ("" if none)."""
    if not secret or not isinstance(secret, str):
        raise Rejected("no_secret")
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    event_id = request.headers.get(EVENT_ID_HEADER, "")
    if not _TIMESTAMP.fullmatch(timestamp) or not signature:
        raise Rejected("missing_signature")
    if abs(time.time() - int(timestamp)) > settings.WEBHOOK_TOLERANCE_SECONDS:
        raise Rejected("stale_timestamp")
    if event_id and not _EVENT_ID.fullmatch(event_id):
        raise Rejected("bad_event_id")
    expected = sign(secret, timestamp, request.body, event_id).encode()
    # Bytes on both sides: compare_digest refuses non-ASCII text, and a header may hold any byte.
    if not compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
        raise Rejected("bad_signature")
    return event_id


def parse_payload(body, content_type):
    text = body.decode("utf-8")
    if "application/x-www-form-urlencoded" in content_type:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data


def body_hash(body):
    """Keyed, so a short body (a card number and little else) cannot be found back by guessing."""
    return salted_hmac("integrations.webhooks.body", body, algorithm="sha256").hexdigest()


def _content_length(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # what Django's request reads then: no body


# The provider row a URL names, per process: reading it (and decrypting its credentials) was a
# third of a notification's cost. A row saved or deleted here is forgotten at once; one changed by
# another process is used at most ROW_CACHE_SECONDS, and a call that fails verification against a
# cached row is verified again against a fresh read (at most once a ROW_REREAD_SECONDS per URL, so a
# flood of forgeries does not buy a query each), so a rotated secret is never refused for long.
ROW_CACHE_SECONDS = 5.0
ROW_REREAD_SECONDS = 1.0
_ROW_CACHE_SIZE = 256
_rows = {}  # (kind, code, row id or None) -> (time.monotonic() when read, row or None, when last read fresh)


def forget_rows(**_signal):
    _rows.clear()


def _read_integration(kind, code, integration_id):
    rows = ExternalIntegration.objects.filter(kind=kind, code=code)
    if integration_id:
        return rows.filter(pk=integration_id).first()
    return rows.filter(owner__isnull=True).order_by("priority").first()


def _find_integration(kind, code, integration_id, fresh=False):
    """The row, and whether it may be stale (it came from the per-process cache). `fresh` reads it
    again unless that was done less than ROW_REREAD_SECONDS ago."""
    key = (kind, code, integration_id)
    now = time.monotonic()
    hit = _rows.get(key)
    if hit is not None:
        read_at, row, reread_at = hit
        if fresh and now - reread_at < ROW_REREAD_SECONDS:
            return row, False
        if not fresh and now - read_at < ROW_CACHE_SECONDS:
            return row, True
    row = _read_integration(kind, code, integration_id)
    if len(_rows) >= _ROW_CACHE_SIZE:  # URLs naming rows that do not exist must not grow it without end
        _rows.clear()
    _rows[key] = (now, row, now if fresh else float("-inf"))
    return row, False


post_save.connect(forget_rows, sender=ExternalIntegration, dispatch_uid="webhooks.forget_rows.save")
post_delete.connect(forget_rows, sender=ExternalIntegration, dispatch_uid="webhooks.forget_rows.delete")


def _bounded_headers(request, secrets):
    present = dict(request.headers)
    names = [n for n in _FIRST_HEADERS if n in present]
    names += [n for n in present if n not in names][: max(MAX_STORED_HEADERS - len(names), 0)]
    # Redacted whole, then cut: a cut first could leave half a secret that no rule recognises.
    redacted = redact_headers({n: present[n] for n in names}, secrets)
    return {str(n)[:MAX_HEADER_NAME]: str(v)[:MAX_HEADER_VALUE] for n, v in redacted.items()}


def _redacted_body(body, content_type, secrets):
    try:
        return redact_body(body, content_type, secrets) or ""
    except RecursionError:
        # A body too deeply nested to parse is masked as text (by value and by shape).
        return redact_text(body.decode("utf-8", errors="replace"), secrets)


def _source(request):
    """Whom a refusal is counted against: the address, or for IPv6 its /64 (one subscriber's)."""
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
    except ValueError:
        return "unknown"
    if address.version == 6 and not address.ipv4_mapped:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(getattr(address, "ipv4_mapped", None) or address)


def _minute():
    return int(time.time() // 60)


def _count(key, ttl=_COUNT_TTL):
    cache.add(key, 0, ttl)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, ttl)
        return 1


def refused_recently(minutes=5):
    """Webhook calls refused over the last `minutes` minutes (the counters live an hour)."""
    now = _minute()
    keys = [f"webhooks:refused:{m}" for m in range(now - minutes + 1, now + 1)]
    return sum(int(v) for v in cache.get_many(keys).values())


def _refuse(request, kind, code, rejected):
    """Count every refusal; store one addressed to an existing row, bounded and rate-limited."""
    integration = rejected.integration
    minute = _minute()
    _count(f"webhooks:refused:{minute}")
    source = _source(request)
    from_source = _count(f"webhooks:refused:{source}:{minute}", ttl=120)
    if from_source <= REFUSED_STORED_PER_SOURCE:
        # %r: the kind and code come from the URL and could carry a line break into the log.
        logger.info("Webhook refused (%s) for %.60r/%.60r from %s", rejected.code, kind, code, source)
    elif from_source == REFUSED_STORED_PER_SOURCE + 1:
        logger.warning("Webhook refusals from %s over %d a minute: further ones this minute are only counted",
                       source, REFUSED_STORED_PER_SOURCE)
    if (
        integration is not None
        and from_source <= REFUSED_STORED_PER_SOURCE
        and _count(f"webhooks:refused-stored:{minute}", ttl=120) <= REFUSED_STORED_PER_MINUTE
    ):
        secrets = integration.secret_values
        too_large = rejected.code == "too_large" or _content_length(request) > settings.WEBHOOK_MAX_BODY_BYTES
        body = b"" if too_large else request.body
        WebhookEvent.objects.create(
            integration=integration,
            kind=kind,
            code=code,
            state=WebhookEvent.State.REJECTED,
            error=rejected.message,
            headers=_bounded_headers(request, secrets),
            body=_redacted_body(body, request.content_type or "", secrets)[:MAX_REFUSED_BODY],
            remote_addr=request.META.get("REMOTE_ADDR"),
        )
    return JsonResponse({"error": rejected.message, "code": rejected.code}, status=rejected.status)


def _verify(request, kind, code, integration_id):
    """Return (integration, adapter, event id) of a verified call, or raise Rejected."""
    # No query for a kind or code nothing could answer to, and nothing stored for it. This also
    # refuses a row whose adapter is no longer registered (its adapter would not load).
    if kind not in Kind.values or code not in registered_codes():
        raise Rejected("unknown_provider")
    integration, cached = _find_integration(kind, code, integration_id)
    try:
        return _verify_against(request, integration)
    except Rejected:
        if not cached:
            raise
        # The cached row may predate a change of its secrets (or its creation or deletion): judged
        # again against the row as it is now.
        current, _cached = _find_integration(kind, code, integration_id, fresh=True)
        if current is integration:
            raise
    return _verify_against(request, current)


def _verify_against(request, integration):
    if integration is None:
        raise Rejected("unknown_provider")
    try:
        adapter = integration.adapter
        if _content_length(request) > settings.WEBHOOK_MAX_BODY_BYTES:
            raise Rejected("too_large")
        verdict = adapter.verify_webhook(request)
        if verdict is None:
            header_id = verify_standard(request, (integration.credentials or {}).get("webhook_secret", ""))
        elif verdict is True:
            header_id = ""
        else:
            raise Rejected("bad_signature")
        try:
            payload = parse_payload(request.body, request.content_type or "")
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Rejected("bad_body") from None
    except Rejected as rejected:
        rejected.integration = integration
        raise
    event_id = header_id or adapter_event_id(adapter, payload) or body_hash(request.body)
    return integration, adapter, event_id


def _insert(**fields):
    if transaction.get_connection().in_atomic_block:
        # Inside a caller's transaction (a test's), a refused INSERT must not break it.
        with transaction.atomic():
            return WebhookEvent.objects.create(**fields)
    # Alone, the INSERT is its own transaction: the one durable write the acknowledgement waits for.
    return WebhookEvent.objects.create(**fields)


def _store(integration, digest, **fields):
    """The accepted call's row, or None when the database says it is a replay.

    The INSERT comes first and the database judges it (unique event id; unique body hash while a
    row guards it). Only when it is refused is a row older than the window asked to release the
    body's hash: the same bytes then, signed with a fresh timestamp, are a new event, stored on a
    second try. Of two such copies racing, one releases the hash and the other, finding nothing to
    release, is the replay."""
    cutoff = timezone.now() - timedelta(seconds=settings.WEBHOOK_TOLERANCE_SECONDS)
    for attempt in range(2):
        try:
            return _insert(integration=integration, body_hash=digest, **fields)
        except IntegrityError:
            if attempt or not WebhookEvent.objects.filter(
                integration=integration, body_hash=digest, received_at__lt=cutoff
            ).update(body_hash=None):
                return None
    return None


@csrf_exempt
@require_POST
def receive(request, kind, code, integration_id=None):
    try:
        integration, adapter, event_id = _verify(request, kind, code, integration_id)
    except Rejected as rejected:
        return _refuse(request, kind, code, rejected)

    digest = body_hash(request.body)
    secrets = integration.secret_values
    content_type = (request.content_type or "")[:100]
    event = _store(
        integration,
        digest,
        kind=kind,
        code=code,
        event_id=str(event_id)[:200],
        headers=_bounded_headers(request, secrets),
        raw_body=request.body.decode("utf-8"),
        body=_redacted_body(request.body, content_type, secrets),
        content_type=content_type,
        remote_addr=request.META.get("REMOTE_ADDR"),
    )
    if event is None:
        # A replay (same event id, or same body within the window): acknowledged so the provider
        # stops retrying, but never processed twice.
        return JsonResponse(adapter_ack(adapter, duplicate=True), status=200)

    from .tasks import process_webhook_event

    # The event row is the outbox: a broker that cannot take the task leaves it `received` for the
    # sweep (integrations.tasks.process_received_webhooks), and the provider still hears that we have
    # it — a 500 would make it retry into the replay guard, which acknowledges without processing.
    # No task result: the event row records the outcome, and storing it again would cost the
    # worker a second write per notification.
    transaction.on_commit(lambda: publish(
        process_webhook_event, (event.pk,), ignore_result=True,
        what=f"Webhook event {event.pk}", sweep="the received-webhooks sweep"))
    return JsonResponse(adapter_ack(adapter, duplicate=False), status=200)


def adapter_event_id(adapter, payload):
    getter = getattr(adapter, "webhook_event_id", None)
    if getter:
        return getter(payload)
    return payload.get("event_id") or payload.get("id")


def adapter_ack(adapter, duplicate):
    ack = getattr(adapter, "webhook_ack", None)
    return ack(duplicate) if ack else {"status": "duplicate" if duplicate else "accepted"}


def process(event):
    """Run the adapter's handler for a stored event, exactly once.

    One transaction holds the claim, the handler's writes and the event's end: the conditional
    UPDATE that marks the event processed is the claim (a duplicate task waits on its row, then
    finds it taken), and it commits with what the handler wrote, or not at all. A failed handler
    leaves nothing but the event marked failed, with its traceback, for an operator to replay."""
    import traceback

    done = timezone.now()
    try:
        with transaction.atomic():
            claimed = (
                WebhookEvent.objects.filter(pk=event.pk, state__in=_CLAIMABLE)
                .update(state=WebhookEvent.State.PROCESSED, attempts=F("attempts") + 1, error="", processed_at=done)
            )
            if claimed != 1:
                return False
            event.integration.adapter.handle_webhook(event)
    except Exception:  # noqa: BLE001 - the traceback is kept on the row for operators to replay
        # A handler's message may quote the body it read: redacted like the body.
        error = redact_text(traceback.format_exc(limit=20), event.integration.secret_values)
        WebhookEvent.objects.filter(pk=event.pk, state__in=_CLAIMABLE).update(
            state=WebhookEvent.State.FAILED, attempts=F("attempts") + 1, error=error, processed_at=timezone.now()
        )
        event.refresh_from_db(fields=["state", "error", "attempts", "processed_at"])
        return False
    event.state, event.error, event.processed_at = WebhookEvent.State.PROCESSED, "", done
    return True


_CLAIMABLE = (WebhookEvent.State.RECEIVED, WebhookEvent.State.FAILED)
