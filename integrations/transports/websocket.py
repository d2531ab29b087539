"""WebSocket feeds: `WebSocketConsumer`, a long-running consumer of a provider's WebSocket (a
tracking feed), with every connection attempt and every message received a traced call.

    consumer = WebSocketConsumer(integration, "feed", on_message=handle)
    consumer.run(stop_event)   # blocks: a worker thread or a management command runs it

Calls it logs (transport "ws"):
- "ws.connect": one per connection attempt (TCP to a checked address, TLS, the upgrade, the auth
  message if any). A failure that speaks of an outage counts towards the circuit breaker.
- "ws.message": one per message received, the message as the response body; the handler runs
  inside the call, so its exception is logged as that call's error and the consumer goes on (a
  handler's bug is not the provider's outage and never counts towards the breaker).
- "ws.close": the provider closed or dropped the connection. An abnormal close counts one failure
  towards the breaker; a clean one (1000, 1001) counts nothing.

A connection counts as a success for the breaker, and resets the reconnection backoff, once it has
lived `stable_after` seconds: a provider that accepts connections and drops them at once is as
down as one that refuses them.

Log rows are held while messages keep arriving and written together (one transaction) as soon as
the feed pauses, every LOG_BATCH messages and when the connection ends: a row and a commit per
message would cap a busy feed at a few hundred messages a second.

`run()` reconnects after transient errors (unreachable, dropped, unreadable, message too big) with
exponential backoff and full jitter, waits out an open circuit's cooldown instead of knocking, and
stops when its stop event is set. It stops and raises on a permanent error: a refused upgrade
(401/403: ProviderAuthError; another 4xx: ProviderValidationError) or a forbidden destination.
Retrying the same credentials cannot succeed and may lock the account; the row must be fixed first.

The row's configuration (all optional):
- `reconnect_backoff` (1 s) and `reconnect_backoff_max` (60 s): the backoff's base and ceiling;
- `stable_after` (30 s), `max_message_size` (1 MiB; a bigger message closes the connection with
  1009 and is a ProviderProtocolError), `ping_interval` (20 s; websockets answers the provider's
  pings by itself and sends its own to notice a dead connection), `timeout` (opening, closing);
- `ws_auth`: how the row's `token` credential (else its `api_key`) is presented: "header" (the
  default: `Authorization: Bearer <token>` on the upgrade), "message" (sent as the first message,
  `ws_auth_message` with "{token}" replaced; default `{"type": "auth", "token": "{token}"}`) or
  "none".
"""

import logging
import random
import ssl
import threading
import time
from urllib.parse import urljoin, urlsplit

from django.utils.translation import gettext as _
from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
)
from websockets.frames import CloseCode
from websockets.sync.client import connect as ws_connect

from .. import addresses, errors
from ..http import USER_AGENT
from ..models import Transport
from ..tracing import Tracer, write_records

logger = logging.getLogger(__name__)

# How often a consumer waiting for a message looks at its stop event.
POLL_SECONDS = 0.2
# Log rows held at most before they are written together (see the module's docstring).
LOG_BATCH = 200
CLEAN_CLOSES = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY})
DEFAULT_AUTH_MESSAGE = '{"type": "auth", "token": "{token}"}'


def content_type_of(message):
    """What a message looks like, for the log's redaction: JSON, text or binary."""
    if isinstance(message, bytes):
        return "application/octet-stream"
    return "application/json" if message.lstrip()[:1] in ("{", "[") else "text/plain"


def loggable(message):
    if isinstance(message, bytes):
        try:
            return message.decode()
        except UnicodeDecodeError:
            return _("[%(size)d bytes of binary data]") % {"size": len(message)}
    return message


class WebSocketConsumer:
    transport = Transport.WEBSOCKET

    def __init__(self, integration, path="", *, on_message, subprotocols=None, headers=None):
        self.integration = integration
        self.on_message = on_message
        self.subprotocols = subprotocols
        self.tracer = Tracer(integration, transport=self.transport)
        self.breaker = self.tracer.breaker
        config = integration.configuration or {}
        base = integration.base_url
        self.url = urljoin(base.rstrip("/") + "/", path.lstrip("/")) if path else base
        parts = urlsplit(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(_("A WebSocket feed needs a ws:// or wss:// address, not %(url)s.") % {"url": self.url})
        self.host, self.secure = parts.hostname, parts.scheme == "wss"
        self.port = parts.port or (443 if self.secure else 80)
        self.backoff = float(config.get("reconnect_backoff", 1.0))
        self.backoff_max = float(config.get("reconnect_backoff_max", 60.0))
        self.stable_after = float(config.get("stable_after", 30.0))
        self.max_size = int(config.get("max_message_size", 2**20))
        self.ping_interval = float(config.get("ping_interval", 20.0))

        credentials = integration.credentials or {}
        token = credentials.get("token") or credentials.get("api_key") or ""
        mode = config.get("ws_auth", "header") if token else "none"
        self.headers = dict(headers or {})
        self.auth_message = None
        if mode == "header":
            self.headers["Authorization"] = f"Bearer {token}"
        elif mode == "message":
            self.auth_message = str(config.get("ws_auth_message") or DEFAULT_AUTH_MESSAGE).replace("{token}", token)
        elif mode != "none":
            raise ValueError(_("Unknown ws_auth %(mode)r: use header, message or none.") % {"mode": mode})
        if token:
            # A `token` credential is secret whatever the adapter declares: mask it wherever it shows.
            self.tracer.secrets = (*self.tracer.secrets, str(token))
        self.stable = False  # whether the current (or last) connection lived `stable_after` seconds
        self._held = []
        self.tracer.sink = self._held.append

    def _flush(self):
        if self._held:
            records = self._held[:]
            self._held.clear()
            write_records(self.integration, records)

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, stop_event):
        """Consume until `stop_event` is set, reconnecting after transient errors; raise a permanent
        ProviderError (see the module's docstring)."""
        attempt = 0
        while not stop_event.is_set():
            try:
                self.run_once(stop_event)
                delay = None
            except errors.CircuitOpen:
                delay = self.breaker.cooldown
            except errors.ProviderError as exc:
                if not exc.transient:
                    raise
                logger.warning("WebSocket feed of %s: %s; reconnecting", self.integration.display_name,
                               self.tracer.redact(exc))
                delay = None
            attempt = 0 if self.stable else attempt + 1
            if delay is None:
                # Full jitter: many consumers of one provider must not reconnect in step.
                delay = random.uniform(0, min(self.backoff_max, self.backoff * 2 ** attempt))
            stop_event.wait(delay)

    def run_once(self, stop_event=None):
        """One connection: open it, hand every message to the handler until the provider closes it
        (returns the number of messages) or `stop_event` is set (closes it and returns); raise a
        ProviderError when it cannot be opened or breaks."""
        stop_event = stop_event or threading.Event()
        self.stable = False
        self.breaker.before_call()  # CircuitOpen: the caller waits out the cooldown
        try:
            return self._consume(stop_event)
        finally:
            self._flush()

    def _consume(self, stop_event):
        try:
            connection = self._open()
        except errors.ProviderError as exc:
            if exc.outage:
                self.breaker.record_failure()
            raise
        opened_at = time.monotonic()
        received = 0
        try:
            while not stop_event.is_set():
                if not self.stable and time.monotonic() - opened_at >= self.stable_after:
                    self.stable = True
                    self.breaker.record_success()
                try:
                    # With log rows held, only ask whether a message is already waiting.
                    message = connection.recv(timeout=0 if self._held else POLL_SECONDS)
                except TimeoutError:
                    self._flush()  # the feed has paused
                    continue
                except ConnectionClosed as exc:
                    self._closed(exc)
                    return received
                received += 1
                self._deliver(message)
                if len(self._held) >= LOG_BATCH:
                    self._flush()
        finally:
            connection.close()
        return received

    # --- the traced calls -------------------------------------------------------------------------
    def _open(self):
        with self.tracer.call("ws.connect", endpoint=self.url, method="GET", breaker=False) as call:
            call.request(self.auth_message, content_type=content_type_of(self.auth_message or ""),
                         headers=self.headers or None)
            try:
                sock = addresses.connect(self.host, self.port, self.tracer.timeout)
            except errors.ProviderError as exc:
                call.fail(exc, code="forbidden" if isinstance(exc, errors.ForbiddenDestination) else "dns")
                raise
            except TimeoutError as exc:
                raise call.fail(self._unavailable(_("Timed out after %(timeout)gs connecting to %(name)s.")),
                                code="timeout", timed_out=True) from exc
            except OSError as exc:
                raise call.fail(self._unavailable(_("Could not reach %(name)s: %(error)s"), exc),
                                code="connection") from exc
            try:
                connection = ws_connect(
                    self.url, sock=sock, server_hostname=self.host if self.secure else None,
                    additional_headers=self.headers or None, subprotocols=self.subprotocols,
                    user_agent_header=USER_AGENT, open_timeout=self.tracer.timeout,
                    close_timeout=self.tracer.timeout, ping_interval=self.ping_interval,
                    ping_timeout=self.ping_interval, max_size=self.max_size, legacy=True,
                )
            except Exception as exc:
                sock.close()
                error = self._handshake_error(call, exc)
                if error is exc:
                    raise
                raise error from exc
            response = connection.response
            call.response(None, status=response.status_code, headers=lambda: dict(response.headers.raw_items()))
            if self.auth_message is not None:
                try:
                    connection.send(self.auth_message)
                except ConnectionClosed as exc:
                    raise call.fail(self._unavailable(_("%(name)s closed the connection: %(error)s"), exc),
                                    code="connection") from exc
        return connection

    def _handshake_error(self, call, exc):
        name = self.integration.display_name
        if isinstance(exc, ValueError) and isinstance(exc.__cause__, InvalidStatus):
            exc = exc.__cause__  # a redirect, which a checked socket never follows
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            call.response(lambda: (exc.response.body or b"").decode(errors="replace"), status=status,
                          headers=lambda: dict(exc.response.headers.raw_items()), code=f"http_{status}")
            kwargs = {"provider_message": f"HTTP {status}", "status_code": status, "sent": True}
            if status in (401, 403):
                return errors.ProviderAuthError(**kwargs)
            if status == 429:
                return errors.ProviderRateLimited(retry_after=exc.response.headers.get("Retry-After"), **kwargs)
            if status >= 500:
                return errors.ProviderUnavailable(**kwargs)
            if status < 400:
                return errors.ProviderProtocolError(
                    _("The provider answered with a redirect (HTTP %(status)s); redirects are not followed.")
                    % {"status": status}, status_code=status)
            return errors.ProviderValidationError(**kwargs)
        if isinstance(exc, TimeoutError):
            return call.fail(self._unavailable(_("Timed out after %(timeout)gs connecting to %(name)s.")),
                             code="timeout", timed_out=True)
        if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, EOFError | OSError):
            return call.fail(self._unavailable(_("%(name)s closed the connection: %(error)s"), exc),
                             code="connection")
        if isinstance(exc, InvalidHandshake):
            return call.fail(errors.ProviderProtocolError(
                _("%(name)s did not complete the WebSocket handshake: %(error)s") % {"name": name, "error": exc},
                sent=False), code="handshake")
        if isinstance(exc, ssl.SSLError):
            return call.fail(self._unavailable(_("TLS with %(name)s failed: %(error)s"), exc), code="tls")
        if isinstance(exc, OSError):
            return call.fail(self._unavailable(_("Could not reach %(name)s: %(error)s"), exc), code="connection")
        return exc

    def _unavailable(self, message, exc=None):
        values = {"name": self.integration.display_name, "timeout": self.tracer.timeout, "error": exc}
        return errors.ProviderUnavailable(message % values, sent=False)

    def _deliver(self, message):
        try:
            with self.tracer.call("ws.message", endpoint=self.url, method="RECV", breaker=False) as call:
                call.response(lambda: loggable(message), content_type=content_type_of(message))
                self.on_message(message)
        except Exception:
            # The call's log row holds the error; the feed goes on with the next message.
            logger.exception("WebSocket feed of %s: the handler failed on a message", self.integration.display_name)

    def _closed(self, exc):
        """Log the provider's close; raise when it was abnormal (one failure for the breaker)."""
        frame = exc.rcvd or exc.sent
        code = frame.code if frame is not None else CloseCode.ABNORMAL_CLOSURE
        reason = frame.reason if frame is not None else ""
        with self.tracer.call("ws.close", endpoint=self.url, method="CLOSE", breaker=False) as call:
            call.response(reason, status=int(code), content_type="text/plain")
            if isinstance(exc, ConnectionClosedOK) or code in CLEAN_CLOSES:
                return
            name = self.integration.display_name
            if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
                raise call.fail(errors.ProviderProtocolError(
                    _("%(name)s sent a message bigger than %(size)d bytes; the connection was closed.")
                    % {"name": name, "size": self.max_size}), code="ws_1009")
            self.breaker.record_failure()
            raise call.fail(errors.ProviderUnavailable(
                _("%(name)s closed the connection abnormally (code %(code)s).") % {"name": name, "code": int(code)}),
                code=f"ws_{int(code)}")

