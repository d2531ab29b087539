"""The dashboard shows a staff user what their model permissions let them read in the admin, and
nothing else: no provider health without the registry's and health checks' view permissions, no
incidents without the incident's, and each domain's figures only with that domain's permission."""

import pytest

from integrations.models import Kind
from monitoring import alerts, health
from smm.models import SMMOrder
from tests.staff import admin_client_for, staff_with

from .conftest import script

pytestmark = pytest.mark.django_db

HEALTH = ("integrations.view_externalintegration", "monitoring.view_healthcheck")


@pytest.fixture
def world(make_provider, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_provider(kind=Kind.PAYMENT, display_name="Moamalat", name="moamalat")
    down = make_provider(kind=Kind.TELECOM, display_name="Almadar", name="almadar")
    script(down, fail="status")
    health.run_round()
    alerts.process_changes()


def dashboard(user):
    response = admin_client_for(user).get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def test_staff_without_permissions_see_no_health_no_incidents_and_no_figures(world):
    html = dashboard(staff_with("bare"))
    assert 'id="monitoring-dashboard"' in html
    assert "data-provider=" not in html and "Almadar" not in html
    assert "Open incidents" not in html and "No open incidents" not in html
    assert "<h3>SMM orders</h3>" not in html
    assert "Ask an administrator" in html


def test_health_needs_the_registry_and_health_view_permissions(world):
    assert 'data-provider="almadar" data-status="unhealthy"' in dashboard(staff_with("h", *HEALTH))
    # one of the two is not enough
    assert "data-provider=" not in dashboard(staff_with("half", HEALTH[0]))


def test_incidents_need_the_incident_view_permission(world):
    html = dashboard(staff_with("i", "monitoring.view_incident"))
    assert "Open incidents (1)" in html and "Almadar" in html
    assert "data-provider=" not in html  # the incident names its provider; the health table stays hidden


@pytest.mark.parametrize("perm", ["smm.view_smmorder", "smm.change_smmorder"])
def test_a_domains_figures_follow_its_declared_permission(world, perm):
    assert "<h3>SMM orders</h3>" in dashboard(staff_with("f", perm))
    assert "<h3>SMM orders</h3>" not in dashboard(staff_with("other", "smm.view_smmprovider"))


def test_queries_for_hidden_parts_are_not_run(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from monitoring.dashboard import build

    user = staff_with("nobody")
    with CaptureQueriesContext(connection) as queries:
        data = build(user=user)
    assert data["groups"] == [] and data["open_incidents"] == [] and data["figure_blocks"] == []
    read = " ".join(q["sql"] for q in queries.captured_queries)
    assert queries.captured_queries  # the permission look-ups themselves
    for table in ("external_integrations", "monitoring_", "integration_logs", SMMOrder._meta.db_table):
        assert table not in read, table
