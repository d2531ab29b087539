"""E-mail through a provider's SMTP relay (Libya Post's): `TracedEmailBackend`, Django's SMTP mail
backend with every connection and every message a traced call, and `send_mail_via()`.

    send_mail_via(integration, "Your parcel", "It is on its way.", ["buyer@example.ly"])

Calls it logs (transport "smtp"):
- "smtp.connect": opening the connection, one per connection: TCP to a checked address, the
  greeting, EHLO, STARTTLS when configured, and the login when the row has credentials. A bad
  password is a ProviderAuthError there (an answer, not an outage).
- "smtp.send": one per message, the request body the message as a person reads it (headers
  decoded, text parts decoded, attachments by name and size: an encoded part would hide a secret
  from redaction, and a log is no file store), the response the recipients accepted and refused.

The row: `base_url` `smtp://host:587` (STARTTLS when configuration says `"starttls": true`) or
`smtps://host:465` (TLS from the start); credentials `username` and `password` (the password is
masked wherever it shows, whatever the adapter declares); configuration `timeout` (every read)
and `from_email` (`send_mail_via`'s sender when the call names none).

`fail_silently` keeps its Django meaning for the caller (no exception, the message counts as not
sent); the call is logged with its error all the same.
"""

import json
import smtplib
import ssl
from email.header import decode_header, make_header
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address
from django.core.mail.utils import DNS_NAME
from django.utils.translation import gettext as _

from .. import addresses, errors
from ..models import Transport
from ..tracing import Tracer, write_records

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}


class CheckedSMTP(smtplib.SMTP):
    """smtplib's client, connecting to a checked address of the host (see `integrations.addresses`);
    STARTTLS still verifies the certificate against the host's name. `data_started` tells a
    timeout before the message went (nothing delivered) from one after (it may have been)."""

    data_started = False

    def _get_socket(self, host, port, timeout):
        return addresses.connect(host, port, timeout, self.source_address)

    def data(self, msg):
        self.data_started = True
        return super().data(msg)


class CheckedSMTP_SSL(smtplib.SMTP_SSL, CheckedSMTP):
    """Implicit TLS: `SMTP_SSL` wraps the checked socket with the host's name."""


def _decoded(value):
    try:
        return str(make_header(decode_header(str(value))))
    except (ValueError, LookupError):
        return str(value)


def message_text(message):
    """An e-mail (`email.message.Message`) as a person reads it, for the log."""
    out = []
    for part in message.walk():
        headers = part.items() if part is message else [("Content-Type", part.get("Content-Type", ""))]
        out.extend(f"{name}: {_decoded(value)}" for name, value in headers)
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_content_maintype() == "text" and not part.get_filename():
            out.extend(["", payload.decode(part.get_content_charset() or "utf-8", errors="replace"), ""])
        else:
            out.extend(["", _("[attachment %(name)s, %(size)d bytes]")
                        % {"name": part.get_filename() or part.get_content_type(), "size": len(payload)}, ""])
    return "\n".join(out)


class TracedEmailBackend(EmailBackend):
    transport = Transport.SMTP

    def __init__(self, integration, *, fail_silently=False, **kwargs):
        self.integration = integration
        self.tracer = Tracer(integration, transport=self.transport)
        config = integration.configuration or {}
        parts = urlsplit(integration.base_url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            raise ValueError(_("An SMTP relay needs an smtp:// or smtps:// address, not %(url)s.")
                             % {"url": integration.base_url})
        port = parts.port or DEFAULT_PORTS[parts.scheme]
        self.endpoint = f"{parts.scheme}://{parts.hostname}:{port}"
        credentials = integration.credentials or {}
        password = str(credentials.get("password") or "")
        if password:
            self.tracer.secrets = (*self.tracer.secrets, password)
        self.from_email = config.get("from_email") or settings.DEFAULT_FROM_EMAIL
        # Every setting given: the hub's own EMAIL_* settings are for its own mail, not this relay.
        kwargs.setdefault("ssl_keyfile", "")
        kwargs.setdefault("ssl_certfile", "")
        super().__init__(
            host=parts.hostname, port=port, username=str(credentials.get("username") or ""), password=password,
            use_tls=bool(config.get("starttls", False)), use_ssl=parts.scheme == "smtps",
            timeout=self.tracer.timeout, fail_silently=fail_silently, **kwargs,
        )

    @property
    def connection_class(self):
        return CheckedSMTP_SSL if self.use_ssl else CheckedSMTP

    def open(self):
        """Open the connection as one traced call ("smtp.connect"). Returns True when it opened one,
        False when one was open, None when it failed silently."""
        if self.connection is not None and self.connection.sock is not None:
            return False
        login = bool(self.username and self.password)
        try:
            with self.tracer.call("smtp.connect", endpoint=self.endpoint, method="AUTH" if login else "EHLO") as call:
                call.request(None, headers={"username": self.username} if login else None)
                self.connection = self._connect(call, login)
        except errors.ProviderError:
            if not self.fail_silently:
                raise
            return None
        return True

    def _connect(self, call, login):
        params = {"local_hostname": DNS_NAME.get_fqdn(), "timeout": self.timeout}
        if self.use_ssl:
            params["context"] = self.ssl_context
        connection = None
        stage = "connect"
        try:
            connection = self.connection_class(self.host, self.port, **params)
            connection.ehlo_or_helo_if_needed()
            if self.use_tls:
                connection.starttls(context=self.ssl_context)
                connection.ehlo()
            status = 250
            if login:
                stage = "login"
                status, _reply = connection.login(self.username, self.password)
        except (smtplib.SMTPException, OSError, errors.ProviderError) as exc:
            if connection is not None:
                connection.close()
            raise self._error(call, exc, stage=stage) from exc
        call.response(lambda: (connection.ehlo_resp or connection.helo_resp or b"").decode(errors="replace"),
                      status=status, content_type="text/plain")
        return connection

    def close(self):
        """Close the connection; a QUIT that fails changes nothing about what was sent."""
        if self.connection is None:
            return
        try:
            self.connection.quit()
        except (smtplib.SMTPException, OSError):
            self.connection.close()
        finally:
            self.connection = None

    def send_messages(self, email_messages):
        """Send the messages over one connection (Django's contract); their log rows are written
        together when the batch ends, in one transaction, instead of a commit per message."""
        with self._lock:
            if self.tracer.sink is not None:  # the caller holds the records itself
                return super().send_messages(email_messages)
            held = []
            self.tracer.sink = held.append
            try:
                return super().send_messages(email_messages)
            finally:
                self.tracer.sink = None
                write_records(self.integration, held)

    def _send(self, email_message):
        """Send one message as one traced call ("smtp.send"); False when it failed silently."""
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = sanitize_address(email_message.from_email, encoding)
        recipients = [sanitize_address(address, encoding) for address in email_message.recipients()]
        message = email_message.message()
        try:
            with self.tracer.call("smtp.send", endpoint=self.endpoint, method="DATA") as call:
                call.request(lambda: message_text(message), content_type="message/rfc822",
                             headers={"MAIL FROM": from_email, "RCPT TO": ", ".join(recipients)})
                self.connection.data_started = False
                try:
                    refused = self.connection.sendmail(from_email, recipients, message.as_bytes(linesep="\r\n"))
                except (smtplib.SMTPException, OSError) as exc:
                    if not isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPRecipientsRefused):
                        # Broken half-way through a transaction: not reusable (`open` replaces it).
                        self.connection.close()
                    raise self._error(call, exc, stage="data" if self.connection.data_started else "mail") from exc
                call.response(lambda: _outcome(recipients, refused), status=250, content_type="application/json",
                              code="partly_refused" if refused else "")
        except errors.ProviderError:
            if not self.fail_silently:
                raise
            return False
        return True

    def _error(self, call, exc, *, stage):
        """Map a fault of smtplib (or of the socket) at `stage` ("connect", "login", "mail" before
        the message went, "data" after it started) into the exception family."""
        if isinstance(exc, errors.ProviderError):  # from `addresses`: not resolved, or not public
            return call.fail(exc, code="forbidden" if isinstance(exc, errors.ForbiddenDestination) else "dns")
        name = self.integration.display_name
        sent = None if stage == "data" else False
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            replies = {address: (code, _text(reply)) for address, (code, reply) in exc.recipients.items()}
            code = min(code for code, _reply in replies.values())
            message = "; ".join(f"{address}: {code} {reply}" for address, (code, reply) in replies.items())
            error = errors.ProviderUnavailable if all(400 <= c < 500 for c, _r in replies.values()) \
                else errors.ProviderValidationError
            return call.fail(error(provider_message=message, status_code=code, sent=False), code=f"smtp_{code}")
        if isinstance(exc, smtplib.SMTPResponseException):
            code, reply = exc.smtp_code, _text(exc.smtp_error)
            kwargs = {"provider_message": f"{code} {reply}", "status_code": code, "sent": sent}
            if 400 <= code < 500 or isinstance(exc, smtplib.SMTPConnectError):
                error = errors.ProviderUnavailable(**kwargs)
            elif stage == "login":
                error = errors.ProviderAuthError(**kwargs)
            else:
                error = errors.ProviderValidationError(**kwargs)
            return call.fail(error, code=f"smtp_{code}")
        if stage == "login" and isinstance(exc, smtplib.SMTPException) \
                and not isinstance(exc, smtplib.SMTPServerDisconnected):
            # No AUTH offered on this connection, or no mechanism in common: the credentials
            # cannot be used as configured.
            return call.fail(errors.ProviderAuthError(
                _("%(name)s does not accept our login on this connection: %(error)s") % {"name": name, "error": exc}),
                code="auth")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return call.fail(errors.ProviderProtocolError(
                _("%(name)s does not support %(error)s") % {"name": name, "error": exc}, sent=sent), code="protocol")
        # smtplib reports a read that timed out as SMTPServerDisconnected, the timeout its context.
        timed_out = isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)
        code = "timeout" if timed_out else "tls" if isinstance(exc, ssl.SSLError) else "connection"
        detail = str(exc) or type(exc).__name__
        if stage == "data":
            # The message went (or was going) and the answer was lost: it may have been accepted.
            return call.fail(errors.UnknownOutcome(
                _("%(name)s did not confirm the message: %(error)s") % {"name": name, "error": detail},
                sent=True), code=code, timed_out=timed_out)
        if timed_out:
            message = _("Timed out after %(timeout)gs talking to %(name)s.") % {"timeout": self.timeout, "name": name}
        else:
            message = _("Could not reach %(name)s: %(error)s") % {"name": name, "error": detail}
        return call.fail(errors.ProviderUnavailable(message, sent=False), code=code, timed_out=timed_out)


def _text(reply):
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


def _outcome(recipients, refused):
    return json.dumps({
        "accepted": [address for address in recipients if address not in refused],
        "refused": {address: f"{code} {_text(reply)}" for address, (code, reply) in refused.items()},
    }, ensure_ascii=False)


def send_mail_via(integration, subject, body, to, *, from_email=None, html=None, cc=None, bcc=None,
                  reply_to=None, headers=None, attachments=None, fail_silently=False):
    """Send one e-mail through the provider's relay; returns 1, or 0 when it failed silently."""
    backend = TracedEmailBackend(integration, fail_silently=fail_silently)
    message = EmailMultiAlternatives(subject, body, from_email or backend.from_email, to, bcc=bcc, cc=cc,
                                     reply_to=reply_to, headers=headers, attachments=attachments, connection=backend)
    if html:
        message.attach_alternative(html, "text/html")
    return message.send(fail_silently=fail_silently)
