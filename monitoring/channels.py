"""Alert channels of the seed: e-mail, SMS, a log row in the database, a support ticket.

Each `send(alert)` returns (outcome, error). Permanent problems (nothing configured) are recorded
as NOT_CONFIGURED, never passed over in silence.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import AlertDelivery, Channel, SupportTicket

log = logging.getLogger("monitoring.alerts")
Outcome = AlertDelivery.Outcome


@dataclass
class Alert:
    change: object
    incident: object
    severity: str
    subject: str
    message: str
    recovered: bool = False


def email_recipients(route):
    return (route.recipient_list if route else []) or list(getattr(settings, "OPERATIONS_EMAILS", []) or [])


class EmailChannel:
    code = Channel.EMAIL

    def send(self, alert, route):
        recipients = email_recipients(route)
        if not recipients:
            return Outcome.NOT_CONFIGURED, _("No recipients: set OPERATIONS_EMAILS or the route's recipients."), ""
        context = {"alert": alert, "change": alert.change, "incident": alert.incident}
        text = render_to_string("monitoring/email/alert.txt", context)
        html = render_to_string("monitoring/email/alert.html", context)
        mail = EmailMultiAlternatives(alert.subject, text, settings.DEFAULT_FROM_EMAIL, recipients)
        mail.attach_alternative(html, "text/html")
        try:
            mail.send()
        except Exception as exc:  # noqa: BLE001 - SMTP errors of every kind are recorded on the row
            return Outcome.FAILED, f"{type(exc).__name__}: {exc}", ", ".join(recipients)
        return Outcome.SENT, "", ", ".join(recipients)


def sms_gateway():
    """The messaging app's SMS sender once it exists (`messaging.services.send_sms(to, text)`)."""
    try:
        from messaging.services import send_sms
    except ImportError:
        return None
    return send_sms


class SmsChannel:
    code = Channel.SMS

    def send(self, alert, route):
        gateway = sms_gateway()
        if gateway is None:
            return (
                Outcome.NOT_CONFIGURED,
                _("SMS is not configured: the messaging app has no SMS gateway (messaging.services.send_sms) yet."),
                "",
            )
        numbers = route.recipient_list if route else []
        if not numbers:
            return Outcome.NOT_CONFIGURED, _("No phone numbers in the SMS route's recipients."), ""
        try:
            for number in numbers:
                gateway(number, f"{alert.subject}")
        except Exception as exc:  # noqa: BLE001
            return Outcome.FAILED, f"{type(exc).__name__}: {exc}", ", ".join(numbers)
        return Outcome.SENT, "", ", ".join(numbers)


class LogChannel:
    """The delivery row itself is the database log; this also writes it to the application log."""

    code = Channel.LOG

    def send(self, alert, route):
        level = logging.WARNING if not alert.recovered else logging.INFO
        log.log(level, "[%s] %s", alert.severity, alert.subject)
        return Outcome.LOGGED, "", ""


class TicketChannel:
    code = Channel.TICKET

    def send(self, alert, route):
        incident = alert.incident
        if alert.recovered:
            if incident is None:
                return Outcome.LOGGED, "", ""
            SupportTicket.objects.filter(incident=incident).exclude(state=SupportTicket.State.CLOSED).update(
                state=SupportTicket.State.CLOSED, closed_at=timezone.now()
            )
            return Outcome.SENT, "", ""
        if incident is not None:
            _ticket, _created = SupportTicket.objects.get_or_create(
                incident=incident,
                defaults={"subject": alert.subject[:300], "body": alert.message, "priority": alert.severity},
            )
        else:
            SupportTicket.objects.create(subject=alert.subject[:300], body=alert.message, priority=alert.severity)
        return Outcome.SENT, "", ""


CHANNELS = {c.code: c() for c in (EmailChannel, SmsChannel, LogChannel, TicketChannel)}
