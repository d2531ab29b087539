"""The SMTP transport against a real aiosmtpd server on loopback."""

import asyncio
import datetime
import json
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from integrations import errors
from integrations.models import IntegrationLog
from integrations.transports.smtp import TracedEmailBackend, send_mail_via

PASSWORD = "Relay-Pa55word-7731"
CARD = "4111 1111 1111 1111"


class Inbox(Message):
    """Keeps what arrives; `rcpt_reply` refuses the recipients nobody*@, `data_delay` answers DATA late."""

    def __init__(self, rcpt_reply=None, data_delay=0):
        super().__init__()
        self.messages, self.rcpt_reply, self.data_delay = [], rcpt_reply, data_delay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply and address.startswith("nobody"):
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return await super().handle_DATA(server, session, envelope)

    def handle_message(self, message):
        self.messages.append(message)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"relay" and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    controllers = []

    def start(inbox=None, **kwargs):
        """A server asking for our login (over plain TCP unless told otherwise)."""
        inbox = inbox or Inbox()
        kwargs = {"authenticator": authenticator, "auth_require_tls": False, **kwargs}
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kwargs)
        controller.start()
        controllers.append(controller)
        return inbox, controller.port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def relay(make_provider):
    def make(port, scheme="smtp", host="127.0.0.1", **config):
        return make_provider(base_url=f"{scheme}://{host}:{port}",
                             credentials={"username": "relay", "password": PASSWORD},
                             configuration={"timeout": 2, "from_email": "noreply@eishro.ly", **config})

    return make


@pytest.fixture
def tls(tmp_path, monkeypatch):
    """A certificate for "localhost" that this process trusts, and the server's TLS context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # what ssl.create_default_context() trusts
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def rows(integration):
    return list(IntegrationLog.objects.filter(integration=integration).order_by("started_at", "id"))


def row_text(row):
    return json.dumps([row.endpoint, row.request_headers, row.request_body, row.response_headers,
                       row.response_body, row.error_message], ensure_ascii=False)


def test_a_message_is_delivered_and_logged_as_one_send_call(smtp_server, relay):
    inbox, port = smtp_server()
    integration = relay(port)

    assert send_mail_via(integration, "Parcel LY123", "مرحبا، طردك في الطريق", ["buyer@example.ly"]) == 1

    (message,) = inbox.messages
    assert message["To"] == "buyer@example.ly" and message["From"] == "noreply@eishro.ly"
    connect, send = rows(integration)
    assert (connect.operation, connect.transport, connect.status) == ("smtp.connect", "smtp", "success")
    assert (send.operation, send.transport, send.status) == ("smtp.send", "smtp", "success")
    assert send.endpoint == f"smtp://127.0.0.1:{port}"
    assert "Subject: Parcel LY123" in send.request_body and "طردك في الطريق" in send.request_body
    assert json.loads(send.response_body) == {"accepted": ["buyer@example.ly"], "refused": {}}
    integration.refresh_from_db()
    assert (integration.total_requests, integration.successful_requests) == (2, 2)


def test_the_password_and_a_card_number_never_reach_the_log(smtp_server, relay):
    inbox, port = smtp_server()
    integration = relay(port)
    body = f"Card {CARD}; the relay password is {PASSWORD}."
    sent = send_mail_via(integration, f"Password {PASSWORD}", body, ["buyer@example.ly"],
                         headers={"X-Note": f"card {CARD} pw {PASSWORD}"}, html=f"<p>{CARD} {PASSWORD}</p>")
    assert sent == 1
    assert PASSWORD in inbox.messages[0]["X-Note"]  # the recipient gets what was sent
    logged = rows(integration)
    assert [r.operation for r in logged] == ["smtp.connect", "smtp.send"]
    assert logged[0].method == "AUTH" and logged[0].response_status == 235
    for row in logged:
        text = row_text(row)
        assert PASSWORD not in text and CARD not in text and CARD.replace(" ", "") not in text
    assert "the relay password is [REDACTED]" in logged[1].request_body


def test_a_bad_password_is_an_auth_error_not_an_outage(smtp_server, relay):
    inbox, port = smtp_server()
    integration = relay(port)
    integration.credentials = {"username": "relay", "password": "Wrong-Pa55word-0000"}
    integration.save(update_fields=["credentials"])
    backend = TracedEmailBackend(integration)
    with pytest.raises(errors.ProviderAuthError) as caught:
        send_mail_via(integration, "Hello", "Body", ["buyer@example.ly"])
    assert caught.value.status_code == 535
    assert inbox.messages == []
    (row,) = rows(integration)
    assert (row.operation, row.status, row.error_code) == ("smtp.connect", "error", "smtp_535")
    assert "Wrong-Pa55word-0000" not in row_text(row)
    assert backend.tracer.breaker.before_call() is False  # no failure counted


def test_fail_silently_hides_the_error_from_the_caller_not_from_the_log(smtp_server, relay):
    _inbox, port = smtp_server()
    integration = relay(port)
    integration.credentials = {"username": "relay", "password": "Wrong-Pa55word-0000"}
    integration.save(update_fields=["credentials"])
    assert send_mail_via(integration, "Hello", "Body", ["buyer@example.ly"], fail_silently=True) == 0
    (row,) = rows(integration)
    assert (row.status, row.error_code) == ("error", "smtp_535")


def test_a_server_that_is_down_is_unavailable_and_nothing_was_sent(relay):
    integration = relay(free_port())
    with pytest.raises(errors.ProviderUnavailable) as caught:
        send_mail_via(integration, "Hello", "Body", ["buyer@example.ly"])
    assert caught.value.sent is False
    (row,) = rows(integration)
    assert (row.operation, row.status, row.error_code) == ("smtp.connect", "error", "connection")
    assert TracedEmailBackend(integration).tracer.breaker.before_call() is True  # a failure counted


@pytest.mark.parametrize(("reply", "error"), [("550 5.1.1 No such user", errors.ProviderValidationError),
                                              ("451 4.7.1 Try again later", errors.ProviderUnavailable)])
def test_refused_recipients_map_by_reply_class(smtp_server, relay, reply, error):
    _inbox, port = smtp_server(Inbox(rcpt_reply=reply))
    integration = relay(port)
    with pytest.raises(error) as caught:
        send_mail_via(integration, "Hello", "Body", ["nobody@example.ly"])
    assert caught.value.sent is False and caught.value.status_code == int(reply[:3])
    assert reply[4:] in caught.value.provider_message
    send = rows(integration)[-1]
    assert (send.operation, send.status, send.error_code) == ("smtp.send", "error", f"smtp_{reply[:3]}")


def test_a_message_some_recipients_refused_is_sent_and_logged_with_the_refusals(smtp_server, relay):
    inbox, port = smtp_server(Inbox(rcpt_reply="550 5.1.1 No such user"))
    integration = relay(port)
    assert send_mail_via(integration, "Hello", "Body", ["buyer@example.ly", "nobody@example.ly"]) == 1
    assert len(inbox.messages) == 1
    send = rows(integration)[-1]
    assert (send.status, send.error_code) == ("error", "partly_refused")
    assert json.loads(send.response_body) == {"accepted": ["buyer@example.ly"],
                                              "refused": {"nobody@example.ly": "550 5.1.1 No such user"}}


def test_a_timeout_after_data_is_an_unknown_outcome(smtp_server, relay):
    _inbox, port = smtp_server(Inbox(data_delay=1.0))
    integration = relay(port, timeout=0.4)
    with pytest.raises(errors.UnknownOutcome):
        send_mail_via(integration, "Hello", "Body", ["buyer@example.ly"])
    send = rows(integration)[-1]
    assert (send.operation, send.status, send.error_code) == ("smtp.send", "timeout", "timeout")


def test_starttls_verifies_the_host_name_while_connecting_to_the_checked_address(smtp_server, relay, tls):
    inbox, port = smtp_server(tls_context=tls, require_starttls=True, auth_require_tls=True)
    integration = relay(port, host="localhost", starttls=True)
    assert send_mail_via(integration, "Over TLS", "Body", ["buyer@example.ly"]) == 1
    assert len(inbox.messages) == 1
    assert rows(integration)[0].response_status == 235  # AUTH, which the server allows only after STARTTLS


def test_implicit_tls_on_smtps(smtp_server, relay, tls):
    inbox, port = smtp_server(ssl_context=tls, server_hostname="localhost")
    integration = relay(port, scheme="smtps", host="localhost")
    assert send_mail_via(integration, "Over TLS", "Body", ["buyer@example.ly"]) == 1
    assert len(inbox.messages) == 1


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_private_addresses_are_refused_when_connecting_and_no_connection_is_made(relay, settings, scheme):
    settings.PROVIDER_URL_ALLOW_PRIVATE = False
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.1)
        integration = relay(listener.getsockname()[1], scheme=scheme)
        with pytest.raises(errors.ForbiddenDestination):
            send_mail_via(integration, "Hello", "Body", ["buyer@example.ly"])
        with pytest.raises(TimeoutError):
            listener.accept()
    (row,) = rows(integration)
    assert (row.operation, row.error_code) == ("smtp.connect", "forbidden")
