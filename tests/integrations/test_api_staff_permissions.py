"""Staff in /api/integrations/ and /api/integration-logs/ follow Django's model permissions (issue 11,
point 8): `is_staff` alone shows a staff user their own rows only, like any merchant; the model's
view permission (or change, which implies it, as in the admin) shows every merchant's."""

import pytest

from integrations.models import ExternalIntegration, IntegrationLog
from tests.staff import api_client_for, staff_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(make_provider, merchant):
    theirs = make_provider(owner=merchant, name="theirs")
    platform = make_provider(name="platform")
    logs = [IntegrationLog.objects.create(integration=p, endpoint="/x", method="GET") for p in (theirs, platform)]
    return theirs, platform, logs


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_staff_without_permissions_see_only_their_own(rows):
    theirs, platform, logs = rows
    clerk = staff_with("clerk")
    own = ExternalIntegration.objects.create(kind="analytics", code="echo", name="own", display_name="Own",
                                             base_url="http://127.0.0.1:9/", owner=clerk)
    api = api_client_for(clerk)
    assert ids(api.get("/api/integrations/")) == {str(own.pk)}
    assert ids(api.get("/api/integration-logs/")) == set()
    for provider in (theirs, platform):
        assert api.get(f"/api/integrations/{provider.pk}/").status_code == 404
    assert api.get(f"/api/integration-logs/{logs[0].pk}/").status_code == 404
    response = api.get("/api/integration-logs/", {"integration": str(theirs.pk)})
    assert response.status_code == 400 and "integration" in response.json()


@pytest.mark.parametrize("perm", ["view", "change"])
def test_the_view_permission_on_providers_shows_every_provider_not_their_logs(rows, perm):
    theirs, platform, _logs = rows
    api = api_client_for(staff_with("auditor", f"integrations.{perm}_externalintegration"))
    assert ids(api.get("/api/integrations/")) == {str(theirs.pk), str(platform.pk)}
    assert api.get(f"/api/integrations/{theirs.pk}/").status_code == 200
    assert ids(api.get("/api/integration-logs/")) == set()


def test_the_view_permission_on_logs_shows_every_call_and_filters_by_any_provider(rows):
    theirs, _platform, logs = rows
    api = api_client_for(staff_with("auditor", "integrations.view_integrationlog"))
    assert ids(api.get("/api/integration-logs/")) == {str(log.pk) for log in logs}
    assert ids(api.get("/api/integration-logs/", {"integration": str(theirs.pk)})) == {str(logs[0].pk)}
    assert api.get(f"/api/integration-logs/{logs[0].pk}/").status_code == 200
    assert ids(api.get("/api/integrations/")) == set()



def test_permissions_count_for_staff_only(rows, merchant):
    """A merchant account granted a model permission by mistake stays a merchant: only staff
    accounts, which the admin also requires, read other merchants' rows."""
    from django.contrib.auth.models import Permission

    merchant.user_permissions.add(Permission.objects.get(codename="view_externalintegration"),
                                  Permission.objects.get(codename="view_integrationlog"))
    api = api_client_for(type(merchant).objects.get(pk=merchant.pk))
    theirs, _platform, logs = rows
    assert ids(api.get("/api/integrations/")) == {str(theirs.pk)}
    assert ids(api.get("/api/integration-logs/")) == {str(logs[0].pk)}


@pytest.mark.parametrize(("perms", "visible"), [((), {"own"}), (("view",), {"own", "theirs", "platform"}),
                                                (("change",), {"own", "theirs", "platform"})])
def test_visible_to_follows_the_permission_asked(rows, perms, visible):
    clerk = staff_with("clerk", *(f"integrations.{p}_externalintegration" for p in perms))
    ExternalIntegration.objects.create(kind="analytics", code="echo", name="own", display_name="Own",
                                       base_url="http://127.0.0.1:9/", owner=clerk)
    assert {p.name for p in ExternalIntegration.objects.visible_to(clerk)} == visible
    # Reading is not writing: only the change permission widens what may be changed.
    writable = {p.name for p in ExternalIntegration.objects.visible_to(clerk, perm="change")}
    assert writable == (visible if "change" in perms else {"own"})
