import pytest

from integrations.models import IntegrationLog, Kind
from monitoring import alerts, health
from monitoring.models import HealthCheck

from .conftest import script

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_provider, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ok = make_provider(kind=Kind.PAYMENT, display_name="Moamalat", name="moamalat")
    slow = make_provider(kind=Kind.SHIPPING, display_name="Amyal", name="amyal")
    down = make_provider(kind=Kind.TELECOM, display_name="Almadar", name="almadar")
    make_provider(kind=Kind.TELECOM, display_name="Libyana", name="libyana", status="inactive")
    script(slow, sleep_s=0.6)
    script(down, fail="status")
    health.run_round()
    alerts.process_changes()
    IntegrationLog.objects.create(integration=ok, endpoint="/x", method="GET", status="success")
    IntegrationLog.objects.create(integration=ok, endpoint="/x", method="GET", status="error")
    return ok, slow, down


def test_dashboard_is_the_admin_index_for_staff(client, staff, world):
    client.force_login(staff)
    response = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="monitoring-dashboard"' in html
    assert 'data-provider="moamalat" data-status="healthy"' in html
    assert 'data-provider="amyal" data-status="degraded"' in html
    assert 'data-provider="almadar" data-status="unhealthy"' in html
    assert "Open incidents (1)" in html
    assert '<svg class="spark"' in html
    assert 'http-equiv="refresh"' in html
    assert "50.0%" in html  # last hour's failure rate of Moamalat: 1 of 2


def test_dashboard_in_arabic_is_right_to_left(client, staff, world):
    client.force_login(staff)
    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="ar").content.decode()
    assert 'dir="rtl"' in html
    assert "صحة التكاملات" in html


def test_health_api_is_staff_only(api, staff_api, world):
    assert api.get("/api/monitoring/health/").status_code == 403
    assert api.get("/api/monitoring/incidents/").status_code == 403
    rows = staff_api.get("/api/monitoring/health/").json()
    by_name = {r["name"]: r for r in rows}
    assert by_name["moamalat"]["status"] == "healthy"
    assert by_name["amyal"]["status"] == "degraded"
    assert by_name["almadar"]["status"] == "unhealthy" and "503" in by_name["almadar"]["error"]
    assert by_name["libyana"]["status"] == "unknown"
    assert by_name["moamalat"]["service"] == "scripted"
    assert by_name["moamalat"]["responseTime"] is not None


def test_provider_history_api(staff_api, api, world):
    ok = world[0]
    health.run_round()
    response = staff_api.get(f"/api/monitoring/health/{ok.pk}/history/")
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == HealthCheck.objects.filter(integration=ok).count() == 2
    assert api.get(f"/api/monitoring/health/{ok.pk}/history/").status_code == 403


def test_incidents_api(staff_api, world):
    data = staff_api.get("/api/monitoring/incidents/?open=true").json()
    assert data["count"] == 1
    assert data["results"][0]["service"]["name"] == "almadar"
    assert data["results"][0]["severity"] == "medium"


def test_admin_pages_render(client, staff, world):
    client.force_login(staff)
    for name in [
        "healthcheck",
        "statuschange",
        "incident",
        "alertroute",
        "alertdelivery",
        "supportticket",
        "fallbackactivation",
        "notification",
    ]:
        assert client.get(f"/admin/monitoring/{name}/").status_code == 200, name
    assert client.get("/admin/integrations/fallback/").status_code == 200  # the table is the core's
    from monitoring.models import Incident

    incident = Incident.objects.get()
    assert client.get(f"/admin/monitoring/incident/{incident.pk}/change/").status_code == 200
    response = client.post(
        "/admin/monitoring/incident/", {"action": "acknowledge", "_selected_action": [incident.pk]}, follow=True
    )
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.acknowledged_by == staff


def test_the_dashboard_shows_the_figures_each_domain_declares(client, staff, world, monkeypatch):
    from django.apps import apps
    from django.db import connection

    from integrations.domain import Figure, FigureBlock

    block = FigureBlock("Payments taken", (Figure("Captured", 7, "good"), Figure("Refused", 2, "bad")))
    monkeypatch.setattr(apps.get_app_config("payments"), "dashboard_figures", lambda since: [block])

    def broken(since):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(apps.get_app_config("shipping"), "dashboard_figures", broken)
    client.force_login(staff)
    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h3>Payments taken</h3>" in html
    assert '<div class="mon-figure tone-good"><dt>Captured</dt><dd>7</dd></div>' in html
    assert '<div class="mon-figure tone-bad"><dt>Refused</dt><dd>2</dd></div>' in html
    assert "<h3>SMM orders</h3>" in html  # the smm app's own declaration, beside it
    # the shipping app's failing query cost only its own box: the page rendered, and on PostgreSQL
    # its transaction went on after it
    assert "Recent actions" in html
