from datetime import timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone

from integrations.models import Fallback, Health, Kind
from integrations.selection import install_seed_table
from monitoring import alerts, fallbacks, health
from monitoring.models import (
    AlertDelivery,
    AlertRoute,
    Channel,
    FallbackActivation,
    Incident,
    Severity,
    StatusChange,
    SupportTicket,
)

from .conftest import script

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ops_emails")]


@pytest.fixture
def ops_emails(settings):
    settings.OPERATIONS_EMAILS = ["ops@eishro.ly"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def round_and_deliver():
    health.run_round()
    return alerts.process_changes()


def test_a_change_is_recorded_first_and_delivered_after(make_provider):
    p = make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    health.run_round()
    change = StatusChange.objects.get()
    assert change.processed_at is None and change.new_status == Health.UNHEALTHY
    assert not AlertDelivery.objects.exists() and not mail.outbox
    assert alerts.process_changes() == 1
    change.refresh_from_db()
    assert change.processed_at is not None
    channels = set(AlertDelivery.objects.values_list("channel", flat=True))
    assert channels == {Channel.LOG, Channel.EMAIL, Channel.SMS, Channel.TICKET}  # payment: high severity
    assert len(mail.outbox) == 1
    assert "down" in mail.outbox[0].subject or "متوقف" in mail.outbox[0].subject


def test_alerts_are_sent_once_per_change(make_provider):
    p = make_provider()
    script(p, fail="status")
    round_and_deliver()
    round_and_deliver()  # still down: no new change
    assert alerts.process_changes() == 0
    StatusChange.objects.update(processed_at=None)  # even a re-run of the same change
    alerts.process_changes()
    assert StatusChange.objects.count() == 1
    assert AlertDelivery.objects.filter(channel=Channel.EMAIL).count() == 1
    assert len(mail.outbox) == 1


def test_sms_channel_is_recorded_as_not_configured(make_provider):
    p = make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    round_and_deliver()
    sms = AlertDelivery.objects.get(channel=Channel.SMS)
    assert sms.outcome == AlertDelivery.Outcome.NOT_CONFIGURED
    assert "messaging" in sms.error


def test_email_without_recipients_is_not_configured(make_provider, settings):
    settings.OPERATIONS_EMAILS = []
    p = make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    round_and_deliver()
    assert AlertDelivery.objects.get(channel=Channel.EMAIL).outcome == AlertDelivery.Outcome.NOT_CONFIGURED
    assert not mail.outbox


def test_routing_is_read_from_the_admin_table(make_provider):
    AlertRoute.objects.create(channel=Channel.LOG, min_severity=Severity.INFO)
    AlertRoute.objects.create(channel=Channel.EMAIL, min_severity=Severity.CRITICAL)
    p = make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    round_and_deliver()
    assert set(AlertDelivery.objects.values_list("channel", flat=True)) == {Channel.LOG}
    assert not mail.outbox


@override_settings(MONITORING_DEGRADED_FAILURES=99)
def test_a_flapping_provider_does_not_flood_anyone(make_provider):
    p = make_provider(kind=Kind.PAYMENT)
    for _ in range(4):
        script(p, fail="status")
        round_and_deliver()
        script(p)
        round_and_deliver()
    assert StatusChange.objects.count() == 8  # every change is recorded …
    assert len(mail.outbox) == 2  # … but only the first "down" and the first "recovered" are e-mailed
    assert StatusChange.objects.filter(alerts_suppressed=True).count() == 6
    # the database log still has a row for every change
    assert AlertDelivery.objects.filter(channel=Channel.LOG).count() == 8


@override_settings(MONITORING_DEGRADED_FAILURES=99, MONITORING_ALERT_COOLDOWN_SECONDS=60)
def test_after_the_cool_down_alerts_flow_again(make_provider):
    p = make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    round_and_deliver()
    script(p)
    round_and_deliver()
    StatusChange.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    script(p, fail="status")
    round_and_deliver()
    assert len(mail.outbox) == 3


def test_incident_opens_when_down_and_closes_when_healthy(make_provider, settings):
    settings.MONITORING_DEGRADED_FAILURES = 99
    p = make_provider(kind=Kind.SHIPPING)
    script(p, fail="error")
    round_and_deliver()
    round_and_deliver()
    incident = Incident.objects.get()
    assert incident.is_open and incident.severity == Severity.MEDIUM
    assert "Timed out" in incident.description
    ticket = SupportTicket.objects.filter(incident=incident).first()
    assert ticket is None  # medium: no ticket with the default routes
    script(p)
    round_and_deliver()
    incident.refresh_from_db()
    assert incident.resolved_at is not None and incident.state == Incident.State.RESOLVED
    assert Incident.objects.count() == 1


def test_recovering_provider_stays_in_incident_while_degraded(make_provider):
    p = make_provider(kind=Kind.PAYMENT)
    for outcome in ["status", "status", "", "", "", ""]:
        script(p, fail=outcome)
        round_and_deliver()
    changes = list(StatusChange.objects.order_by("created_at", "pk").values_list("new_status", flat=True))
    assert changes == ["unhealthy", "degraded", "healthy"]
    incident = Incident.objects.get()
    assert incident.resolved_at is not None
    # a ticket was opened (high) and closed on recovery
    ticket = SupportTicket.objects.get(incident=incident)
    assert ticket.state == SupportTicket.State.CLOSED


def test_severity_rises_when_many_providers_are_down(make_provider):
    providers = [make_provider(kind=Kind.ANALYTICS) for _ in range(3)]
    providers.append(make_provider(kind=Kind.ANALYTICS))
    for p in providers[:3]:
        script(p, fail="status")
    round_and_deliver()
    assert set(Incident.objects.values_list("severity", flat=True)) == {Severity.MEDIUM}


def test_merchant_owned_provider_is_low_severity(make_provider, merchant):
    p = make_provider(kind=Kind.SMM, owner=merchant)
    make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    round_and_deliver()
    assert Incident.objects.get().severity == Severity.LOW


def test_acknowledge_is_compare_and_set(make_provider, staff):
    p = make_provider()
    script(p, fail="status")
    round_and_deliver()
    incident = Incident.objects.get()
    assert incident.acknowledge(staff)
    assert not Incident.objects.get().acknowledge(staff)
    incident.refresh_from_db()
    assert incident.acknowledged_by == staff and incident.state == Incident.State.ACKNOWLEDGED


def test_fallbacks_switch_on_when_down_and_off_when_back(make_provider):
    install_seed_table()  # migration integrations 0004 installed it; this is for after a flush
    moamalat = make_provider(code="scripted", name="moamalat")
    # the adapter code is what fallbacks key on
    from integrations.models import ExternalIntegration

    ExternalIntegration.objects.filter(pk=moamalat.pk).update(code="moamalat")
    moamalat.refresh_from_db()
    assert fallbacks.is_available("moamalat")
    fallbacks.activate(moamalat, reason="HTTP 503")
    assert fallbacks.activate(moamalat) is None  # already active
    assert not fallbacks.is_available("moamalat")
    assert fallbacks.alternatives_for("moamalat") == ["cash_on_delivery", "bank_transfer"]
    assert fallbacks.active_fallbacks() == {"moamalat": ["cash_on_delivery", "bank_transfer"]}
    fallbacks.deactivate(moamalat)
    assert fallbacks.is_available("moamalat")
    assert FallbackActivation.objects.count() == 1  # logged


def test_round_switches_fallbacks_through_the_table(make_provider, settings):
    settings.MONITORING_DEGRADED_FAILURES = 99
    Fallback.objects.create(code="scripted", alternative="vanex", position=2)
    Fallback.objects.create(code="scripted", alternative="darbsail", position=1)
    Fallback.objects.create(code="scripted", alternative="wingsly", position=3, enabled=False)
    p = make_provider(kind=Kind.SHIPPING)
    script(p, fail="status")
    round_and_deliver()
    assert not fallbacks.is_available("scripted")
    activation = FallbackActivation.objects.get()
    assert activation.alternatives == ["darbsail", "vanex"]
    assert "503" in activation.reason
    script(p)
    round_and_deliver()
    assert fallbacks.is_available("scripted")
    activation.refresh_from_db()
    assert activation.deactivated_at is not None


def test_alternative_that_is_itself_down_is_not_offered(make_provider):
    # The seed's rows (installed by migration integrations 0004), whatever an earlier test left.
    Fallback.objects.update_or_create(code="amyal", alternative="darbsail", defaults={"position": 1, "enabled": True})
    Fallback.objects.update_or_create(code="amyal", alternative="vanex", defaults={"position": 2, "enabled": True})
    darbsail = make_provider(name="darbsail")
    from integrations.models import ExternalIntegration

    ExternalIntegration.objects.filter(pk=darbsail.pk).update(code="darbsail")
    darbsail.refresh_from_db()
    fallbacks.activate(darbsail)
    assert fallbacks.alternatives_for("amyal") == ["vanex"]


def test_load_demo_seeds_table_and_routes_idempotently():
    from django.apps import apps

    config = apps.get_app_config("monitoring")
    config.load_demo()
    config.load_demo()
    assert Fallback.objects.count() == 6
    assert AlertRoute.objects.count() == 4
