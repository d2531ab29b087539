"""Alerts over real SMTP: a local aiosmtpd server receives what the e-mail channel sends."""

import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from integrations.models import Kind
from monitoring import alerts, health
from monitoring.models import AlertDelivery, Channel

from .conftest import script


class Inbox(Message):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server(settings):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    settings.OPERATIONS_EMAILS = ["ops@eishro.ly", "oncall@eishro.ly"]
    yield inbox
    controller.stop()


@pytest.mark.django_db
def test_outage_alert_arrives_over_smtp_in_arabic_and_html(make_provider, smtp_server):
    p = make_provider(kind=Kind.PAYMENT, display_name="Moamalat")
    script(p, fail="status")
    health.run_round()
    alerts.process_changes()
    delivery = AlertDelivery.objects.get(channel=Channel.EMAIL)
    assert delivery.outcome == AlertDelivery.Outcome.SENT, delivery.error
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    assert "ops@eishro.ly" in message["To"] and "oncall@eishro.ly" in message["To"]
    from email.header import decode_header, make_header

    subject = str(make_header(decode_header(message["Subject"])))
    assert "Moamalat" in subject
    assert "متوقف" in subject  # Arabic: the operators' language
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }
    assert "HTTP 503" in parts["text/plain"]
    assert 'dir="rtl"' in parts["text/html"]


@pytest.mark.django_db
def test_smtp_failure_is_recorded_not_raised(make_provider, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    settings.OPERATIONS_EMAILS = ["ops@eishro.ly"]
    p = make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    health.run_round()
    alerts.process_changes()
    delivery = AlertDelivery.objects.get(channel=Channel.EMAIL)
    assert delivery.outcome == AlertDelivery.Outcome.FAILED
    assert "Connection" in delivery.error or "refused" in delivery.error


@pytest.mark.django_db
def test_a_failed_alert_is_retried_when_the_smtp_server_is_back(make_provider, settings):
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    settings.OPERATIONS_EMAILS = ["ops@eishro.ly"]
    p = make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    health.run_round()
    alerts.process_changes()
    assert AlertDelivery.objects.get(channel=Channel.EMAIL).outcome == AlertDelivery.Outcome.FAILED
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        assert alerts.retry_failed() == 1
        assert alerts.retry_failed() == 0  # sent: nothing left to retry
    finally:
        controller.stop()
    delivery = AlertDelivery.objects.get(channel=Channel.EMAIL)
    assert delivery.outcome == AlertDelivery.Outcome.SENT and delivery.attempts == 2
    assert len(inbox.messages) == 1
