"""Issue 12 (4): the seed's default panels (JAP, SMM Kings, Secsers) are created "at registration", for
every new merchant by any path, without keys until the merchant sets them; a panel without its key
is valid, shown as such, and never called by any job."""

from io import StringIO

import pytest
import responses
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import translation

from integrations.models import ExternalIntegration, Status
from monitoring import health
from smm import providers, tasks
from smm.models import SMMProvider
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

DEFAULTS = [("jap", "justanotherpanel", "Just Another Panel"), ("secsers", "secsers", "Secsers"),
            ("smmkings", "smmkings", "SMM Kings")]


@pytest.fixture(autouse=True)
def english(settings):
    """The messages below are read in English (the site's default language is Arabic)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def at_registration(settings):
    settings.SMM_DEFAULT_PANELS_AT_REGISTRATION = True  # production's default (tests/conftest.py turns it off)


def panels_of(user):
    return list(SMMProvider.objects.filter(integration__owner=user).select_related("integration")
                .order_by("integration__code"))


def new_merchant(username="shop"):
    return get_user_model().objects.create_user(username, f"{username}@example.ly", "pw-shop-123")


def test_a_new_merchant_gets_the_three_panels_without_keys_inactive_and_valid():
    call_command("create_merchant", "shop", "--email", "shop@example.ly", stdout=StringIO())
    user = get_user_model().objects.get(username="shop")
    panels = panels_of(user)
    assert [(p.integration.code, p.integration.name, p.integration.display_name) for p in panels] == DEFAULTS
    for panel in panels:
        integration = panel.integration
        assert integration.status == Status.INACTIVE and not providers.has_api_key(panel)
        assert integration.base_url == providers.DEFAULT_PROVIDERS[integration.code][2]
        integration.full_clean()  # a valid row while it waits for its key …
        integration.status = Status.ACTIVE
        with pytest.raises(ValidationError, match="api_key"):
            integration.full_clean()  # … but never an active one without it


def test_it_is_idempotent_and_only_for_merchants(settings, staff):
    user = new_merchant()
    assert providers.create_default_panels(user) == []
    user.email = "new@example.ly"
    user.save()
    assert len(panels_of(user)) == 3

    assert panels_of(staff) == []  # a superuser
    operator = get_user_model().objects.create_user("operator", "op@example.ly", "pw", is_staff=True)
    assert panels_of(operator) == []

    settings.SMM_DEFAULT_PANELS_AT_REGISTRATION = False
    assert panels_of(new_merchant("quiet")) == []


def test_a_merchant_added_in_the_admin_gets_them(staff):
    client = Client()
    client.force_login(staff)
    password = "a-long-pass-phrase-41"
    r = client.post("/admin/auth/user/add/", {"username": "shop", "usable_password": "true",
                                              "password1": password, "password2": password})
    assert r.status_code == 302, r.content.decode()[:2000]
    assert len(panels_of(get_user_model().objects.get(username="shop"))) == 3


def test_the_demo_merchant_gets_its_keys_on_the_same_panels(settings):
    call_command("load_demo_data", stdout=StringIO())
    call_command("load_demo_data", stdout=StringIO())
    panels = panels_of(get_user_model().objects.get(username="demo-merchant"))
    assert [p.integration.code for p in panels] == ["jap", "secsers", "smmkings"]
    for p in panels:
        assert p.integration.status == Status.ACTIVE
        assert p.integration.credentials == {"api_key": f"sandbox-{p.integration.code}-key"}
        assert p.integration.base_url == f"{settings.SANDBOX_BASE_URL}/smm/{p.integration.code}/api/v2"


@responses.activate  # any HTTP call would fail the test: none is registered
def test_no_job_calls_a_panel_without_its_key():
    user = new_merchant()
    assert tasks.sync_all_services.apply().get() == 0
    assert tasks.refresh_all_balances.apply().get() == 0
    assert tasks.poll_all_orders.apply().get() == 0
    assert health.run_round().checked == 0

    # Even a row switched on around the API and the admin is never called without a key.
    panel = panels_of(user)[0]
    ExternalIntegration.objects.filter(pk=panel.integration_id).update(status=Status.ACTIVE)
    assert tasks.refresh_provider_balance.apply(args=[panel.pk]).get() == "skipped"
    assert tasks.sync_provider_services.apply(args=[panel.pk]).get() == "skipped"
    result = health.run_round()
    assert result.checked == 1 and list(result.statuses.values()) == ["error"]
    assert "No API key yet" in panel.integration.health_checks.get().error
    assert len(responses.calls) == 0


def test_the_api_and_the_admin_say_no_key_yet_and_setting_it_activates_the_panel(staff):
    user = new_merchant()
    api = client_for(user)
    listed = api.get("/api/smm/providers").json()["results"]
    assert [(p["hasApiKey"], p["isActive"], p["status"]) for p in listed] == [(False, False, "inactive")] * 3

    admin = Client()
    admin.force_login(staff)
    assert admin.get("/admin/smm/smmprovider/").content.decode().count("(no API key yet)") == 3

    jap = panels_of(user)[0]
    r = api.patch(f"/api/smm/providers/{jap.pk}/toggle")
    assert r.status_code == 400 and "No API key yet" in r.json()["isActive"][0]
    r = api.patch(f"/api/smm/providers/{jap.pk}", {"isActive": True}, format="json")
    assert r.status_code == 400 and "isActive" in r.json()
    r = api.patch(f"/api/smm/providers/{jap.pk}", {"apiKey": "merchant-key-1"}, format="json")
    assert r.status_code == 200, r.json()
    assert (r.json()["hasApiKey"], r.json()["isActive"]) == (True, True)
    assert admin.get("/admin/smm/smmprovider/").content.decode().count("(no API key yet)") == 2
    # Switched off by its merchant, it stays off when its key changes.
    api.patch(f"/api/smm/providers/{jap.pk}/toggle")
    r = api.patch(f"/api/smm/providers/{jap.pk}", {"apiKey": "merchant-key-2"}, format="json")
    assert r.json()["isActive"] is False
