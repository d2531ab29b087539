"""One traced call to a provider, whatever the transport.

Every transport (HTTP, SOAP, FTP, WebSocket, SMTP, S3) makes each call inside `Tracer.call()`:

    with tracer.call("status", endpoint=url, method="POST") as call:
        call.request(body, content_type="application/x-www-form-urlencoded", headers=headers)
        answer = <the transport's own I/O>
        call.response(answer.text, status=answer.status, content_type=..., headers=...)

The tracer asks the circuit breaker first, times the call, turns the transport's faults into the
`integrations.errors` family (the transport raises them through `call.fail()`), and records one
`IntegrationLog` row (operation, transport, endpoint, redacted by each body's content type) and the
registry row's counters together, in one transaction. The transport says only what went out and
what came back.

Log rows are built when they are written, not when the call ends, so that a call someone waits for
pays no redaction. A bulk job may take the records itself (`Tracer.sink`) and write many at once
with its own writes (`write_records`); otherwise each call is written as it ends.
"""

import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import errors, outbound
from .breaker import CircuitBreaker
from .redaction import redact_body, redact_headers, redact_text, redact_url


@dataclass(frozen=True)
class Record:
    """One finished call: `build()` makes its IntegrationLog row."""

    build: object
    ok: bool
    duration_ms: Decimal


def write_records(integration, records):
    """Write calls' log rows (one INSERT) and counters (one UPDATE) in one transaction (the
    caller's, if one is open). Returns how many."""
    from .models import IntegrationLog

    if not records:
        return 0
    with transaction.atomic(savepoint=False):
        IntegrationLog.objects.insert_many([record.build() for record in records])
        integration.record_calls(
            len(records), sum(1 for r in records if r.ok), sum(r.duration_ms for r in records)
        )
    return len(records)


def _value(value):
    return value() if callable(value) else value


def truncate(text):
    limit = settings.INTEGRATION_LOG_BODY_LIMIT
    if text and len(text) > limit:
        return storable(text[:limit]) + f"… [{len(text) - limit} more characters]"
    return storable(text or "")


def storable(value):
    """`value` with NUL characters shown as U+FFFD. PostgreSQL refuses NUL in text and in jsonb, so a
    provider answering binary garbage would otherwise fail the log row's INSERT (and with it the call's
    outcome): what a provider sends is untrusted, down to its bytes."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value


_DECODER = json.JSONDecoder()


def stored_items(body):
    """`(head, left)`: a JSON array answer far longer than a log row keeps (a panel's catalogue,
    megabytes) cut to its leading elements, as a JSON array, and how many characters of it are left
    out; `(body, 0)` for anything else. Redacting every element of the whole answer only for
    `truncate` to keep the first few made a 5,000-service sync spend most of its time here; the
    elements kept are redacted exactly as they would be in the whole array."""
    limit = settings.INTEGRATION_LOG_BODY_LIMIT
    if not isinstance(body, str) or len(body) <= 4 * limit or body.lstrip()[:1] != "[":
        return body, 0
    items, start = [], body.index("[")
    at = start + 1
    try:
        while at - start <= limit:
            while body[at] in " \t\r\n,":
                at += 1
            if body[at] == "]":
                return body, 0
            item, at = _DECODER.raw_decode(body, at)
            items.append(item)
    except (ValueError, IndexError, RecursionError):  # nested past the parser's depth: not well-formed either
        return body, 0  # not a well-formed array: redacted whole, as the text it is
    return json.dumps(items, ensure_ascii=False), len(body) - at


def _redacted_response(body, content_type, secrets, names):
    head, left = stored_items(body)
    text = truncate(redact_body(head, content_type, secrets, names))
    return f"{text} [and {left} more characters, not logged]" if left else text


class Call:
    """What one call sent and received, filled in by the transport. Bodies and the endpoint may be
    given as callables, evaluated only when the log row is built."""

    __slots__ = (
        "code",
        "endpoint",
        "method",
        "operation",
        "outage",
        "request_body",
        "request_headers",
        "request_id",
        "request_type",
        "response_body",
        "response_headers",
        "response_type",
        "status",
        "timed_out",
        "user",
    )

    def __init__(self, operation, endpoint, method, request_id, user):
        self.operation, self.endpoint, self.method = operation, endpoint, method
        self.request_id, self.user = request_id, user
        self.request_body = self.response_body = None
        self.request_type = self.response_type = ""
        self.request_headers = self.response_headers = None
        self.status = None
        self.outage = False
        self.code = ""
        self.timed_out = False

    def request(self, body=None, *, content_type="", headers=None):
        self.request_body, self.request_type, self.request_headers = body, content_type, headers

    def response(self, body=None, *, status=None, content_type="", headers=None, code="", outage=False):
        """The provider's answer. A `code` (e.g. "http_404") logs it as an error; `outage` says it
        also speaks of the provider's availability (a 5xx, a 429) and counts towards the breaker."""
        self.response_body, self.response_type, self.response_headers = body, content_type, headers
        self.status = status
        self.outage = outage
        self.code = code or ("error" if outage else "")

    def fail(self, error, *, code="", timed_out=False):
        """Return `error` (to raise) after noting how to log it."""
        self.code = code or self.code or "error"
        self.timed_out = timed_out
        return error


class Tracer:
    """The traced calls of one provider row over one transport."""

    def __init__(self, integration, *, transport):
        from .adapters import UnknownAdapter, adapter_class

        self.integration = integration
        self.transport = transport
        config = integration.configuration or {}
        try:
            meta = adapter_class(integration.code).meta
            self.secret_names, self.default_timeout = frozenset(meta.secret_fields), meta.timeout
        except UnknownAdapter:
            self.secret_names, self.default_timeout = frozenset(), 10.0
        self.timeout = float(config.get("timeout") or self.default_timeout)
        self.breaker = CircuitBreaker(
            integration.pk,
            threshold=int(config.get("circuit_breaker_threshold", 5)),
            cooldown=float(config.get("circuit_breaker_cooldown", 30)),
        )
        self.secrets = integration.secret_values
        # Where finished calls go: None writes each at once; a callable taking a Record holds them
        # for a bulk job that writes them with its own writes (see `write_records`).
        self.sink = None

    def redact(self, text):
        """A provider's message, safe to store or show: this row's secrets and secret shapes masked."""
        return redact_text(str(text), self.secrets) if text else text

    @contextmanager
    def call(self, operation, *, endpoint, method="", breaker=True, request_id=None, user=None):
        """Trace one call (see the module's docstring). Raises CircuitOpen before the call when the
        breaker is open; a ProviderError raised inside is logged and re-raised, any other exception
        is logged as an error and propagates unchanged."""
        dirty = self.breaker.before_call() if breaker else False
        call = Call(operation, endpoint, method, request_id or uuid.uuid4().hex, user)
        outbound.call_started()  # from here on the request may reach the provider
        started_at = timezone.now()
        t0 = time.perf_counter()
        error = None
        try:
            yield call
        except errors.ProviderError as exc:
            # Whatever a transport put in the message (a library's fault quoting the URL with its
            # query, a server's reply quoting the password it got), it leaves with this row's
            # secrets masked: the one place every transport's errors pass through.
            error = exc.mask(self.secrets)
            raise
        except Exception as exc:
            error = exc
            call.code = call.code or type(exc).__name__[:50]
            raise
        finally:
            duration_ms = (time.perf_counter() - t0) * 1000
            outage = call.outage or getattr(error, "outage", False)
            if breaker:
                if outage:
                    self.breaker.record_failure()
                else:
                    self.breaker.record_success(dirty)
            ok = error is None and not call.code
            self._record(call, error, ok, started_at, duration_ms)

    def _record(self, call, error, ok, started_at, duration_ms):
        completed_at = timezone.now()
        record = Record(
            build=lambda: self._log_row(call, error, started_at, completed_at, duration_ms),
            ok=ok,
            duration_ms=Decimal(f"{duration_ms:.2f}"),
        )
        if self.sink is not None:
            self.sink(record)
        else:
            write_records(self.integration, [record])

    def _log_row(self, call, error, started_at, completed_at, duration_ms):
        from .models import IntegrationLog

        secrets, names = self.secrets, self.secret_names
        if error is None and not call.code:
            outcome = IntegrationLog.Outcome.SUCCESS
        else:
            outcome = IntegrationLog.Outcome.TIMEOUT if call.timed_out else IntegrationLog.Outcome.ERROR
        request_body, response_body = _value(call.request_body), _value(call.response_body)
        response_headers = _value(call.response_headers)
        return IntegrationLog(
            integration=self.integration,
            transport=self.transport,
            operation=(call.operation or "")[:100],
            request_id=call.request_id,
            endpoint=storable(redact_url(str(_value(call.endpoint)), secrets, names)[:500]),
            method=(call.method or "")[:10],
            request_headers=storable(redact_headers(call.request_headers, secrets)) if call.request_headers else None,
            request_body=truncate(redact_body(request_body, call.request_type, secrets, names)),
            response_status=call.status,
            response_headers=(storable(redact_headers(response_headers, secrets))
                              if response_headers is not None else None),
            response_body=_redacted_response(response_body, call.response_type, secrets, names),
            request_duration=Decimal(f"{duration_ms:.3f}"),
            started_at=started_at,
            completed_at=completed_at,
            status=outcome,
            error_message=storable(redact_text(str(error), secrets)[:4000]) if error is not None else "",
            error_code=storable(call.code[:50]),
            user=call.user if getattr(call.user, "pk", None) else None,
        )
