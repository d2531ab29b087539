"""Monitoring under Django's model permissions (issue 11, points 7 and 8): the health and incident API
need staff with the view permissions (403 otherwise, `is_staff` alone included); notifications are
the caller's own unless they hold the view permission, and marking another user's read needs change;
acknowledging and resolving incidents in the admin needs the change permission."""

import pytest
from django.contrib.messages import ERROR, get_messages

from monitoring.models import Incident, Notification
from tests.staff import admin_client_for, api_client_for, staff_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(make_provider, merchant):
    provider = make_provider()
    incident = Incident.objects.create(integration=provider, severity="critical", description="down")
    Notification.objects.create(user=merchant, incident=incident, integration=provider, title="Provider down")
    return incident


@pytest.mark.parametrize(
    ("perms", "health", "incidents"),
    [
        ((), 403, 403),
        (("monitoring.view_healthcheck",), 403, 403),  # the rows shown are providers too
        (("integrations.view_externalintegration",), 403, 403),  # and their checks
        (("monitoring.view_healthcheck", "integrations.view_externalintegration"), 200, 403),
        (("monitoring.view_incident",), 403, 200),
    ],
)
def test_health_and_incidents_need_the_view_permissions(incident, perms, health, incidents):
    api = api_client_for(staff_with("clerk", *perms))
    for url in ("/api/monitoring/health/", f"/api/monitoring/health/{incident.integration_id}/",
                f"/api/monitoring/health/{incident.integration_id}/history/"):
        response = api.get(url)
        assert response.status_code == health, (url, response.status_code)
        if health == 403:
            assert "permission" in response.json()["detail"]
    for url in ("/api/monitoring/incidents/", f"/api/monitoring/incidents/{incident.pk}/"):
        assert api.get(url).status_code == incidents, url


def test_notifications_are_the_callers_own_without_the_view_permission(incident):
    notice = Notification.objects.get()
    api = api_client_for(staff_with("clerk"))
    assert api.get("/api/monitoring/notifications/").json()["count"] == 0
    assert api.get(f"/api/monitoring/notifications/{notice.pk}/").status_code == 404
    assert api.post(f"/api/monitoring/notifications/{notice.pk}/read/").status_code == 404
    assert Notification.objects.get().read_at is None


def test_reading_anothers_notification_does_not_mark_it_read(incident):
    notice = Notification.objects.get()
    api = api_client_for(staff_with("auditor", "monitoring.view_notification"))
    assert api.get("/api/monitoring/notifications/").json()["count"] == 1
    assert api.get(f"/api/monitoring/notifications/{notice.pk}/").status_code == 200
    response = api.post(f"/api/monitoring/notifications/{notice.pk}/read/")
    assert response.status_code == 403 and "permission" in response.json()["detail"]
    assert Notification.objects.get().read_at is None
    api = api_client_for(staff_with("support", "monitoring.view_notification", "monitoring.change_notification"))
    assert api.post(f"/api/monitoring/notifications/{notice.pk}/read/").status_code == 200
    assert Notification.objects.get().read_at is not None


def test_the_owner_marks_their_notification_read(incident, api):
    notice = Notification.objects.get()
    assert api.post(f"/api/monitoring/notifications/{notice.pk}/read/").status_code == 200


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_a_view_only_operator_cannot_acknowledge_or_resolve(incident, action):
    client = admin_client_for(staff_with("viewer", "monitoring.view_incident"))
    assert f'value="{action}"' not in client.get("/admin/monitoring/incident/").content.decode()
    response = client.post("/admin/monitoring/incident/", {"action": action, "index": 0,
                                                           "_selected_action": [incident.pk]}, follow=True)
    assert [m.level for m in get_messages(response.wsgi_request)] == [ERROR]
    incident.refresh_from_db()
    assert (incident.state, incident.acknowledged_by, incident.resolved_at) == ("open", None, None)


def test_an_operator_with_the_change_permission_acknowledges_and_resolves(incident):
    operator = staff_with("operator", "monitoring.view_incident", "monitoring.change_incident")
    client = admin_client_for(operator)
    for action in ("acknowledge", "resolve"):
        client.post("/admin/monitoring/incident/", {"action": action, "index": 0, "_selected_action": [incident.pk]})
    incident.refresh_from_db()
    assert (incident.state, incident.acknowledged_by) == ("resolved", operator)
