"""Processing of recorded status changes: incidents, fallbacks, affected merchants, alerts.

`process_changes()` claims every unprocessed `StatusChange` with a compare-and-set update (one row
updated = this worker owns it; a second worker or a re-run does nothing), then:
  1. down (unhealthy): opens an Incident (one open per provider) with a severity from the provider's
     kind and how many providers are down; activates its fallbacks; notifies affected merchants;
  2. back to healthy: resolves the open incident; deactivates fallbacks;
     degraded after down: fallbacks off (it answers again), the incident stays open until healthy;
  3. alerts through the channels routed for the severity (AlertRoute rows; built-in defaults when
     the table is empty), one AlertDelivery row per (change, channel) — a unique constraint makes a
     second delivery impossible. Cool-down: when the same state was already alerted for the same
     provider within MONITORING_ALERT_COOLDOWN_SECONDS (default 600), the change is only logged
     (`alerts_suppressed`), so a flapping provider does not flood anyone.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from integrations import selection
from integrations.domain import domain_configs
from integrations.models import ExternalIntegration, Health, Kind

from . import fallbacks
from .channels import CHANNELS, Alert
from .models import (
    SEVERITY_ORDER,
    AlertDelivery,
    AlertRoute,
    Channel,
    Incident,
    Notification,
    Severity,
    StatusChange,
)

log = logging.getLogger(__name__)

# Used when no AlertRoute rows exist (load_demo_data writes them so operators can edit them).
DEFAULT_ROUTES = {
    Channel.LOG: Severity.INFO,
    Channel.EMAIL: Severity.MEDIUM,
    Channel.SMS: Severity.HIGH,
    Channel.TICKET: Severity.HIGH,
}

KIND_SEVERITY = {
    Kind.PAYMENT: Severity.HIGH,
    Kind.SHIPPING: Severity.MEDIUM,
    Kind.TELECOM: Severity.MEDIUM,
    Kind.EMAIL: Severity.MEDIUM,
    Kind.IDENTITY: Severity.MEDIUM,
}


def seed_routes():
    created = 0
    for channel, severity in DEFAULT_ROUTES.items():
        _route, new = AlertRoute.objects.get_or_create(channel=channel, defaults={"min_severity": severity})
        created += new
    return created


def routes():
    rows = {r.channel: r for r in AlertRoute.objects.all()}
    if rows:
        return rows
    return {c: AlertRoute(channel=c, min_severity=s) for c, s in DEFAULT_ROUTES.items()}


def bump(severity, steps=1):
    order = Severity.values
    return order[min(len(order) - 1, SEVERITY_ORDER[severity] + steps)]


def severity_for(integration):
    """Severity of an outage: from the provider's kind (payments matter most; a merchant's own SMM
    panel affects one merchant), one level up when 3+ providers or half of the active platform
    providers are down at once."""
    if integration.owner_id:
        base = Severity.LOW
    else:
        base = KIND_SEVERITY.get(integration.kind, Severity.LOW)
    active = ExternalIntegration.objects.active().platform()
    total = active.count()
    down = active.filter(health_status=Health.UNHEALTHY).count()
    if down >= 3 or (total >= 2 and down * 2 >= total):
        base = bump(base)
    return base


def cooldown():
    return timedelta(seconds=int(getattr(settings, "MONITORING_ALERT_COOLDOWN_SECONDS", 600)))


def process_changes(limit=500):
    """Process pending status changes in order; returns how many this call processed."""
    processed = 0
    pending = StatusChange.objects.filter(processed_at=None).order_by("created_at", "pk")[:limit]
    for change in list(pending.select_related("integration", "integration__owner")):
        claimed = StatusChange.objects.filter(pk=change.pk, processed_at=None).update(processed_at=timezone.now())
        if not claimed:
            continue
        try:
            with translation.override(settings.LANGUAGE_CODE):
                handle(change)
        except Exception:
            log.exception("processing status change %s failed", change.pk)
            # Leave it for the next run rather than lose it.
            StatusChange.objects.filter(pk=change.pk).update(processed_at=None)
            raise
        processed += 1
    return processed


def handle(change):
    integration = change.integration
    incident = Incident.objects.filter(integration=integration, resolved_at=None).first()
    recovered = False
    if change.new_status == Health.UNHEALTHY:
        if incident is None:
            incident = open_incident(change)
            if incident is not None:
                notify_affected(incident)
        fallbacks.activate(integration, reason=change.error)
        severity = incident.severity if incident else severity_for(integration)
        subject = _("[EISHRO] %(severity)s: %(provider)s is down") % {
            "severity": Severity(severity).label,
            "provider": integration.display_name,
        }
    elif change.new_status == Health.HEALTHY:
        fallbacks.deactivate(integration)
        if incident is not None:
            resolve(incident)
            recovered = True
            severity = incident.severity
        else:
            severity = Severity.INFO
        subject = _("[EISHRO] %(provider)s has recovered") % {"provider": integration.display_name}
    else:  # degraded
        fallbacks.deactivate(integration)
        severity = Severity.LOW
        subject = _("[EISHRO] %(provider)s is degraded") % {"provider": integration.display_name}

    message = render_to_string(
        "monitoring/email/alert.txt",
        {"change": change, "incident": incident, "alert": {"subject": subject, "severity": severity}},
    )
    alert = Alert(change, incident, severity, subject, message, recovered=recovered)
    deliver(alert)


def open_incident(change):
    integration = change.integration
    description = change.error or _("%(provider)s does not answer its health check.") % {
        "provider": integration.display_name
    }
    try:
        with transaction.atomic():
            return Incident.objects.create(
                integration=integration,
                severity=severity_for(integration),
                description=description,
                started_at=change.created_at,
            )
    except IntegrityError:
        return Incident.objects.filter(integration=integration, resolved_at=None).first()


def resolve(incident):
    now = timezone.now()
    done = Incident.objects.filter(pk=incident.pk, resolved_at=None).update(
        resolved_at=now, state=Incident.State.RESOLVED
    )
    if done:
        incident.resolved_at, incident.state = now, Incident.State.RESOLVED
    return bool(done)


def suppressed(change):
    """True when the same state of this provider was already alerted within the cool-down."""
    since = change.created_at - cooldown()
    return (
        StatusChange.objects.filter(
            integration_id=change.integration_id,
            new_status=change.new_status,
            created_at__gte=since,
            alerts_suppressed=False,
            deliveries__isnull=False,
        )
        .exclude(pk=change.pk)
        .exists()
    )


def deliver(alert):
    change = alert.change
    quiet = suppressed(change)
    if quiet:
        StatusChange.objects.filter(pk=change.pk).update(alerts_suppressed=True)
        change.alerts_suppressed = True
    for channel, route in routes().items():
        if quiet and channel != Channel.LOG:
            continue
        if not route.accepts(alert.severity):
            continue
        if AlertDelivery.objects.filter(change=change, channel=channel).exists():
            continue
        outcome, error, recipients = CHANNELS[channel].send(alert, route)
        try:
            with transaction.atomic():
                AlertDelivery.objects.create(
                    change=change,
                    incident=alert.incident,
                    channel=channel,
                    severity=alert.severity,
                    subject=alert.subject[:300],
                    message=alert.message,
                    recipients=recipients,
                    outcome=outcome,
                    error=error + (" " + _("(cool-down: alerts suppressed)") if quiet else ""),
                )
        except IntegrityError:
            pass


MAX_ATTEMPTS = 3


def retry_failed(max_age=timedelta(hours=1)):
    """Transient failures (an SMTP server that was down) are tried again, up to MAX_ATTEMPTS times in
    the hour after the change. Each retry is claimed with a compare-and-set on `attempts`."""
    retried = 0
    candidates = AlertDelivery.objects.filter(
        outcome=AlertDelivery.Outcome.FAILED, attempts__lt=MAX_ATTEMPTS, created_at__gte=timezone.now() - max_age
    ).select_related("change__integration", "incident")
    for delivery in list(candidates):
        claimed = AlertDelivery.objects.filter(
            pk=delivery.pk, outcome=AlertDelivery.Outcome.FAILED, attempts=delivery.attempts
        ).update(attempts=delivery.attempts + 1)
        if not claimed:
            continue
        alert = Alert(
            delivery.change,
            delivery.incident,
            delivery.severity,
            delivery.subject,
            delivery.message,
            recovered=delivery.change.new_status == Health.HEALTHY,
        )
        route = routes().get(delivery.channel)
        with translation.override(settings.LANGUAGE_CODE):
            outcome, error, recipients = CHANNELS[delivery.channel].send(alert, route)
        AlertDelivery.objects.filter(pk=delivery.pk).update(
            outcome=outcome, error=error, recipients=recipients or delivery.recipients
        )
        retried += 1
    return retried


# --- affected merchants ---------------------------------------------------------------------------


def affected_owners(integration):
    """Users with open work on `integration`: the sum of every domain app's `affected_owners`."""
    users = {}
    for config in domain_configs():
        try:
            for user in config.affected_owners(integration) or ():
                users[user.pk] = user
        except Exception:
            log.exception("%s.affected_owners failed", config.label)
    return list(users.values())


def notify_affected(incident):
    integration = incident.integration
    owners = affected_owners(integration)
    if not owners:
        return 0
    title = _("%(provider)s is unavailable") % {"provider": integration.display_name}
    alternatives = selection.configured_alternatives(integration.code)
    body = render_to_string(
        "monitoring/email/merchant_notice.txt",
        {"integration": integration, "incident": incident, "alternatives": alternatives},
    )
    Notification.objects.bulk_create(
        [Notification(user=u, incident=incident, integration=integration, title=title, body=body) for u in owners],
        ignore_conflicts=True,
    )
    sent = 0
    for notice in Notification.objects.filter(incident=incident, emailed_at=None).select_related("user"):
        if not notice.user.email:
            continue
        # Claim before sending: a concurrent worker never e-mails the same merchant twice.
        if not Notification.objects.filter(pk=notice.pk, emailed_at=None).update(emailed_at=timezone.now()):
            continue
        try:
            send_mail(notice.title, notice.body, settings.DEFAULT_FROM_EMAIL, [notice.user.email])
            sent += 1
        except Exception:
            log.exception("e-mail to %s failed", notice.user.email)
            Notification.objects.filter(pk=notice.pk).update(emailed_at=None)
    return sent


def open_incidents():
    return Incident.objects.filter(Q(resolved_at=None)).select_related("integration", "acknowledged_by")
