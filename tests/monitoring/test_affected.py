import pytest
from django.apps import apps
from django.core import mail

from integrations.models import Kind
from monitoring import alerts, health
from monitoring.models import Notification

from .conftest import script

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders_app(merchant, other_merchant):
    """A test double of a domain app: its open orders on a provider belong to these merchants."""
    config = apps.get_app_config("payments")
    seen = []

    def affected_owners(integration):
        seen.append(integration)
        return [merchant, other_merchant, merchant]

    config.affected_owners = affected_owners
    yield seen
    del config.affected_owners


@pytest.fixture(autouse=True)
def locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.OPERATIONS_EMAILS = []


def test_merchants_with_open_orders_are_notified_once(make_provider, orders_app, merchant, other_merchant, settings):
    settings.MONITORING_DEGRADED_FAILURES = 99
    p = make_provider(kind=Kind.PAYMENT)
    for outcome in ["status", "status", "error"]:
        script(p, fail=outcome)
        health.run_round()
        alerts.process_changes()
    assert orders_app == [p]  # asked once: when the incident opened
    assert Notification.objects.count() == 2
    assert sorted(m.to[0] for m in mail.outbox) == [merchant.email, other_merchant.email]
    assert p.display_name in mail.outbox[0].subject


def test_merchants_see_their_own_notifications_in_the_api(make_provider, orders_app, api, other_api, merchant):
    p = make_provider(kind=Kind.PAYMENT)
    script(p, fail="status")
    health.run_round()
    alerts.process_changes()
    response = api.get("/api/monitoring/notifications/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == 1 and rows[0]["provider"] == p.display_name
    assert other_api.get("/api/monitoring/notifications/").json()["count"] == 1
    # marking read
    pk = rows[0]["id"]
    assert api.post(f"/api/monitoring/notifications/{pk}/read/").status_code == 200
    assert Notification.objects.get(pk=pk).read_at is not None
    assert other_api.post(f"/api/monitoring/notifications/{pk}/read/").status_code == 404


def test_a_failing_hook_does_not_stop_the_others(make_provider, merchant):
    config = apps.get_app_config("shipping")
    config.affected_owners = lambda integration: 1 / 0
    payments = apps.get_app_config("payments")
    payments.affected_owners = lambda integration: [merchant]
    try:
        p = make_provider()
        assert alerts.affected_owners(p) == [merchant]
    finally:
        del config.affected_owners
        del payments.affected_owners
