"""The webhook receiver: verify, store raw, acknowledge, process later.

Standard scheme (a provider adapter may replace verification with the provider's own, as Moamalat's
SecureHash): headers `X-Eishro-Timestamp` (unix seconds) and `X-Eishro-Signature`
(`sha256=` + hex HMAC-SHA256 of `"{timestamp}.{raw body}"` keyed with the row's `webhook_secret`),
optional `X-Eishro-Event-Id`. The timestamp must be within WEBHOOK_TOLERANCE_SECONDS.
"""

import hashlib
import hmac
import json
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .adapters import UnknownAdapter
from .models import ExternalIntegration, WebhookEvent
from .redaction import redact_body, redact_headers

SIGNATURE_HEADER = "X-Eishro-Signature"
TIMESTAMP_HEADER = "X-Eishro-Timestamp"
EVENT_ID_HEADER = "X-Eishro-Event-Id"


def sign(secret, timestamp, body):
    if isinstance(body, str):
        body = body.encode()
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signed_headers(secret, body, event_id=None, timestamp=None):
    """Headers a sender (a simulator, a test) attaches to a webhook."""
    timestamp = str(int(timestamp if timestamp is not None else time.time()))
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}
    if event_id:
        headers[EVENT_ID_HEADER] = str(event_id)
    return headers


class Rejected(Exception):
    def __init__(self, status, message):
        self.status, self.message = status, message
        super().__init__(message)


def verify_standard(request, secret):
    if not secret:
        raise Rejected(403, _("No webhook secret is configured for this provider."))
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not timestamp.isdigit() or not signature:
        raise Rejected(401, _("The webhook signature or timestamp is missing."))
    if abs(time.time() - int(timestamp)) > settings.WEBHOOK_TOLERANCE_SECONDS:
        raise Rejected(401, _("The webhook timestamp is outside the allowed window."))
    if not hmac.compare_digest(sign(secret, timestamp, request.body), signature):
        raise Rejected(401, _("The webhook signature does not match."))


def parse_payload(body, content_type):
    text = body.decode("utf-8")
    if "application/x-www-form-urlencoded" in content_type:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text)))
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data


def _find_integration(kind, code, integration_id):
    rows = ExternalIntegration.objects.filter(kind=kind, code=code)
    if integration_id:
        return rows.filter(pk=integration_id).first()
    return rows.filter(owner__isnull=True).order_by("priority").first()


def _record_rejection(request, kind, code, integration, message):
    body = (
        request.body[:4096] if int(request.META.get("CONTENT_LENGTH") or 0) <= settings.WEBHOOK_MAX_BODY_BYTES else b""
    )
    secrets = integration.secret_values if integration else ()
    WebhookEvent.objects.create(
        integration=integration,
        kind=kind,
        code=code,
        state=WebhookEvent.State.REJECTED,
        error=message,
        headers=redact_headers(dict(request.headers), secrets),
        body=redact_body(body, request.content_type or "", secrets) or "",
        remote_addr=request.META.get("REMOTE_ADDR"),
    )


@csrf_exempt
@require_POST
def receive(request, kind, code, integration_id=None):
    integration = None
    try:
        if int(request.META.get("CONTENT_LENGTH") or 0) > settings.WEBHOOK_MAX_BODY_BYTES:
            raise Rejected(413, _("The webhook body is too large."))
        integration = _find_integration(kind, code, integration_id)
        if integration is None:
            raise Rejected(404, _("No such provider."))
        try:
            adapter = integration.adapter
        except UnknownAdapter:
            raise Rejected(404, _("No such provider.")) from None
        verdict = adapter.verify_webhook(request)
        if verdict is None:
            verify_standard(request, (integration.credentials or {}).get("webhook_secret", ""))
        elif not verdict:
            raise Rejected(401, _("The webhook signature does not match."))
        try:
            payload = parse_payload(request.body, request.content_type or "")
        except (ValueError, UnicodeDecodeError):
            raise Rejected(400, _("The webhook body is not valid JSON or form data.")) from None
        event_id = (
            request.headers.get(EVENT_ID_HEADER)
            or adapter_event_id(adapter, payload)
            or hashlib.sha256(request.body).hexdigest()
        )
    except Rejected as rejected:
        _record_rejection(request, kind, code, integration, rejected.message)
        return JsonResponse({"error": rejected.message}, status=rejected.status)

    try:
        with transaction.atomic():
            event = WebhookEvent.objects.create(
                integration=integration,
                kind=kind,
                code=code,
                event_id=str(event_id)[:200],
                headers=redact_headers(dict(request.headers), integration.secret_values),
                body=request.body.decode("utf-8"),
                remote_addr=request.META.get("REMOTE_ADDR"),
            )
    except IntegrityError:
        # A replay: acknowledged so the provider stops retrying, but never processed twice.
        return JsonResponse(adapter_ack(adapter, duplicate=True), status=200)

    from .tasks import process_webhook_event

    transaction.on_commit(lambda: process_webhook_event.delay(event.pk))
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
    """Run the adapter's handler for a stored event; state is claimed so a duplicate does nothing."""
    import traceback

    if not event.claim():
        return False
    try:
        with transaction.atomic():
            event.integration.adapter.handle_webhook(event)
    except Exception:  # noqa: BLE001 - the traceback is kept on the row for operators to replay
        event.finish(error=traceback.format_exc(limit=20))
        return False
    event.finish()
    return True
