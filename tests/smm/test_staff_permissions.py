"""Staff in the SMM API and admin follow Django's model permissions (issue 11, points 7 and 8).

API: a staff user without the model's view permission is an ordinary user (their own rows only,
another merchant's a 404); view lets them read every merchant's rows and nothing more (403 on a
write, nothing sent to the panel); change lets them write. A provider's URL changes only with its key
entered again in the same request, or with integrations.change_provider_url_keep_key.
Admin: the panel actions (sync, toggle, balance; refresh, refill, cancel) need the change permission."""

import json
from urllib.parse import parse_qs

import pytest
import responses
from django.contrib.messages import ERROR, get_messages

from smm.models import SMMOrder, SMMProvider, SMMService
from tests.staff import admin_client_for, api_client_for, staff_with

from .conftest import PANEL_URL

pytestmark = pytest.mark.django_db

NEW_URL = "https://elsewhere.example.test/api/v2"
KEY = "k-SECRET-123456"
VIEW_PROVIDERS = "smm.view_smmprovider"
CHANGE_PROVIDERS = "smm.change_smmprovider"
KEEP_KEY = "integrations.change_provider_url_keep_key"


@pytest.fixture
def panel():
    """The merchant's panel, answering every action; `panel.actions` lists what reached it."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        actions = []

        def answer(request):
            action = parse_qs(request.body or "").get("action", [""])[0]
            actions.append(action)
            body = {"cancel": [{"order": "5", "cancel": 1}], "status": {"charge": "1", "status": "Completed",
                                                                          "remains": "0", "currency": "USD"},
                    "refill": {"refill": "9"}, "balance": {"balance": "3.5", "currency": "USD"},
                    "services": [{"service": 1, "name": "IG", "rate": "2", "min": 10, "max": 100}]}.get(action, {})
            return 200, {}, json.dumps(body)

        for url in (PANEL_URL, NEW_URL):
            mock.add_callback(responses.POST, url, callback=answer)
        mock.actions = actions
        yield mock


@pytest.fixture
def theirs(make_provider, merchant):
    """Merchant A's provider and one open order of it."""
    provider = make_provider(owner=merchant, name="theirs", key=KEY)
    service = SMMService.objects.create(provider=provider, service_id="1", name="IG", type="Default", rate="1",
                                        min_quantity=10, max_quantity=1000, refill=True, cancel=True)
    order = SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly",
                                    quantity=100, status="pending", external_order_id="5")
    return provider, order


def stored(provider):
    integration = SMMProvider.objects.select_related("integration").get(pk=provider.pk).integration
    return integration.base_url, integration.credentials.get("api_key"), integration.status


# --- API: staff without permissions are ordinary users -----------------------------------------------------

def test_staff_without_permissions_see_and_touch_only_their_own(theirs, panel):
    provider, order = theirs
    api = api_client_for(staff_with("clerk"))
    assert api.get("/api/smm/providers").json()["count"] == 0
    assert api.get("/api/smm/orders").json()["count"] == 0
    for method, url in [("get", f"/api/smm/providers/{provider.pk}"),
                        ("patch", f"/api/smm/providers/{provider.pk}"),
                        ("delete", f"/api/smm/providers/{provider.pk}"),
                        ("post", f"/api/smm/providers/{provider.pk}/toggle"),
                        ("post", f"/api/smm/providers/{provider.pk}/sync"),
                        ("post", f"/api/smm/providers/{provider.pk}/balance"),
                        ("get", f"/api/smm/providers/{provider.pk}/services"),
                        ("get", f"/api/smm/orders/{order.pk}"),
                        ("post", f"/api/smm/orders/{order.pk}/cancel"),
                        ("post", f"/api/smm/orders/{order.pk}/refill"),
                        ("post", f"/api/smm/orders/{order.pk}/refresh")]:
        response = getattr(api, method)(url, {"apiUrl": NEW_URL, "displayName": "x"}, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert stored(provider) == (PANEL_URL, KEY, "active") and panel.actions == []
    assert SMMOrder.objects.get(pk=order.pk).cancel_requested_at is None


# --- API: view reads, change writes ------------------------------------------------------------------------

def test_the_view_permission_reads_every_merchants_rows_and_writes_none(theirs, panel):
    provider, order = theirs
    api = api_client_for(staff_with("auditor", VIEW_PROVIDERS, "smm.view_smmorder"))
    every = set(SMMProvider.objects.values_list("pk", flat=True))  # the merchant's default panels too
    assert provider.pk in every
    assert {p["id"] for p in api.get("/api/smm/providers").json()["results"]} == every
    assert api.get(f"/api/smm/providers/{provider.pk}").status_code == 200
    assert api.get(f"/api/smm/providers/{provider.pk}/services").status_code == 200
    assert [o["id"] for o in api.get("/api/smm/orders").json()["results"]] == [order.pk]
    assert api.get(f"/api/smm/orders/{order.pk}").status_code == 200
    for method, url in [("patch", f"/api/smm/providers/{provider.pk}"),
                        ("put", f"/api/smm/providers/{provider.pk}"),
                        ("delete", f"/api/smm/providers/{provider.pk}"),
                        ("post", f"/api/smm/providers/{provider.pk}/toggle"),
                        ("post", f"/api/smm/providers/{provider.pk}/sync"),
                        ("post", f"/api/smm/providers/{provider.pk}/balance"),
                        ("post", f"/api/smm/orders/{order.pk}/cancel"),
                        ("post", f"/api/smm/orders/{order.pk}/refill"),
                        ("post", f"/api/smm/orders/{order.pk}/refresh")]:
        response = getattr(api, method)(url, {"apiUrl": NEW_URL, "apiKey": "mine"}, format="json")
        assert response.status_code == 403, (method, url, response.status_code)
        assert "permission" in response.json()["detail"]
    assert stored(provider) == (PANEL_URL, KEY, "active") and panel.actions == []
    assert SMMOrder.objects.get(pk=order.pk).cancel_requested_at is None


def test_the_change_permission_writes_and_delete_needs_its_own(theirs, panel):
    provider, order = theirs
    api = api_client_for(staff_with("operator", VIEW_PROVIDERS, CHANGE_PROVIDERS, "smm.view_smmorder",
                                    "smm.change_smmorder"))
    response = api.patch(f"/api/smm/providers/{provider.pk}", {"displayName": "Renamed"}, format="json")
    assert response.status_code == 200 and response.json()["displayName"] == "Renamed"
    assert api.post(f"/api/smm/providers/{provider.pk}/toggle").json()["isActive"] is False
    assert api.post(f"/api/smm/orders/{order.pk}/cancel").status_code == 202
    assert panel.actions == ["cancel"]
    assert api.delete(f"/api/smm/providers/{provider.pk}").status_code == 403
    assert SMMProvider.objects.filter(pk=provider.pk).exists()


# --- API: a new URL needs the key again ----------------------------------------------------------------------

def test_staff_who_may_change_providers_cannot_send_a_merchants_key_elsewhere(theirs):
    provider, _order = theirs
    api = api_client_for(staff_with("operator", VIEW_PROVIDERS, CHANGE_PROVIDERS))
    response = api.patch(f"/api/smm/providers/{provider.pk}", {"apiUrl": NEW_URL}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["apiUrl"] and "API key again" in response.json()["apiUrl"][0]
    assert stored(provider) == (PANEL_URL, KEY, "active")
    # Entering a key in the same request replaces the merchant's: theirs never leaves.
    response = api.patch(f"/api/smm/providers/{provider.pk}", {"apiUrl": NEW_URL, "apiKey": "k-OPERATOR"},
                         format="json")
    assert response.status_code == 200 and response.json()["apiUrl"] == NEW_URL
    assert stored(provider) == (NEW_URL, "k-OPERATOR", "active")


def test_the_owner_enters_the_key_again_too(theirs, api):
    provider, _order = theirs
    response = api.put(f"/api/smm/providers/{provider.pk}", {"apiUrl": NEW_URL, "priority": 4}, format="json")
    assert response.status_code == 400 and list(response.json()) == ["apiUrl"]
    assert stored(provider) == (PANEL_URL, KEY, "active")
    assert api.patch(f"/api/smm/providers/{provider.pk}", {"apiUrl": PANEL_URL}, format="json").status_code == 200
    response = api.patch(f"/api/smm/providers/{provider.pk}", {"apiUrl": NEW_URL, "apiKey": KEY}, format="json")
    assert response.status_code == 200
    assert stored(provider) == (NEW_URL, KEY, "active")


def test_the_dedicated_permission_keeps_the_key_with_a_new_url(theirs):
    provider, _order = theirs
    api = api_client_for(staff_with("trusted", VIEW_PROVIDERS, CHANGE_PROVIDERS, KEEP_KEY))
    response = api.patch(f"/api/smm/providers/{provider.pk}", {"apiUrl": NEW_URL}, format="json")
    assert response.status_code == 200
    assert stored(provider) == (NEW_URL, KEY, "active")


# --- admin: the panel actions need the change permission -------------------------------------------------

PROVIDER_ACTIONS = ["sync_services", "toggle", "refresh_balance"]
ORDER_ACTIONS = ["refresh_status", "refill", "cancel"]


def post_action(client, changelist, action, pk):
    return client.post(changelist, {"action": action, "index": 0, "_selected_action": [pk]}, follow=True)


@pytest.mark.parametrize("action", PROVIDER_ACTIONS)
def test_a_view_only_operator_cannot_run_a_provider_action(theirs, panel, action):
    provider, _order = theirs
    client = admin_client_for(staff_with("viewer", VIEW_PROVIDERS))
    assert f'value="{action}"' not in client.get("/admin/smm/smmprovider/").content.decode()
    response = post_action(client, "/admin/smm/smmprovider/", action, provider.pk)
    assert [m.level for m in get_messages(response.wsgi_request)] == [ERROR]
    assert panel.actions == [] and stored(provider) == (PANEL_URL, KEY, "active")
    assert not SMMService.objects.filter(provider=provider, service_id="1", rate=2).exists()


@pytest.mark.parametrize("action", ORDER_ACTIONS)
def test_a_view_only_operator_cannot_run_an_order_action(theirs, panel, action):
    _provider, order = theirs
    SMMOrder.objects.filter(pk=order.pk).update(status="completed")  # refillable
    client = admin_client_for(staff_with("viewer", "smm.view_smmorder"))
    response = post_action(client, "/admin/smm/smmorder/", action, order.pk)
    assert [m.level for m in get_messages(response.wsgi_request)] == [ERROR]
    assert panel.actions == []
    order.refresh_from_db()
    assert (order.cancel_requested_at, order.refills.count(), order.last_checked_at) == (None, 0, None)


def test_an_operator_with_the_change_permission_runs_them(theirs, panel):
    provider, order = theirs
    client = admin_client_for(staff_with("operator", VIEW_PROVIDERS, CHANGE_PROVIDERS, "smm.view_smmorder",
                                         "smm.change_smmorder"))
    post_action(client, "/admin/smm/smmorder/", "cancel", order.pk)
    post_action(client, "/admin/smm/smmorder/", "refresh_status", order.pk)  # the panel says Completed
    post_action(client, "/admin/smm/smmorder/", "refill", order.pk)
    for action in PROVIDER_ACTIONS:  # after the orders': the sync rewrites the service's refill and cancel
        post_action(client, "/admin/smm/smmprovider/", action, provider.pk)
    assert panel.actions == ["cancel", "status", "refill", "services", "balance"]
    assert stored(provider)[2] == "inactive"
    order.refresh_from_db()
    assert order.cancel_requested_at is not None and order.status == "completed" and order.refills.count() == 1
