"""/api/smm/: the seed's route table, scoping, write-only key, 400s, idempotency."""

import pytest
import responses

from smm.models import SandboxPanelOrder, SMMOrder, SMMProvider, SMMService
from smm.providers import initialize_default_providers

from .conftest import PANEL_URL, first_service

pytestmark = pytest.mark.django_db


def make_service(provider, service_id="1", **extra):
    defaults = dict(name="IG Followers", type="Default", category="Instagram Followers", rate="0.90",
                    min_quantity=50, max_quantity=10000, refill=True, cancel=True)
    defaults.update(extra)
    return SMMService.objects.create(provider=provider, service_id=service_id, **defaults)


def test_provider_crud_with_the_seeds_fields(api):
    body = {"name": "provider_name", "displayName": "Provider Display Name", "apiUrl": PANEL_URL,
            "apiKey": "your_api_key", "priority": 1}
    r = api.post("/api/smm/providers", body, format="json")
    assert r.status_code == 201, r.json()
    data = r.json()
    assert data["displayName"] == "Provider Display Name" and data["code"] == "panel_v2" and data["isActive"]
    assert "apiKey" not in data and "your_api_key" not in r.content.decode() and data["hasApiKey"] is True
    pk = data["id"]
    assert set(data["stats"]) >= {"successRate", "averageResponseTime", "totalSpent", "completedOrders"}

    r = api.get("/api/smm/providers")
    assert r.status_code == 200 and r.json()["count"] == 1
    assert "your_api_key" not in r.content.decode()

    r = api.put(f"/api/smm/providers/{pk}", {"displayName": "Renamed", "priority": 3}, format="json")
    assert r.status_code == 200 and r.json()["displayName"] == "Renamed" and r.json()["priority"] == 3
    provider = SMMProvider.objects.get(pk=pk)
    assert provider.integration.credentials == {"api_key": "your_api_key"}  # key kept when not sent
    api.put(f"/api/smm/providers/{pk}", {"apiKey": "new-key"}, format="json")
    provider.integration.refresh_from_db()
    assert provider.integration.credentials == {"api_key": "new-key"}

    r = api.patch(f"/api/smm/providers/{pk}/toggle")
    assert r.status_code == 200 and r.json()["isActive"] is False
    r = api.patch(f"/api/smm/providers/{pk}/toggle/")
    assert r.json()["isActive"] is True

    r = api.delete(f"/api/smm/providers/{pk}")
    assert r.status_code == 204 and not SMMProvider.objects.exists()


def test_provider_create_400s_have_field_messages(api, make_provider):
    make_provider(name="taken")
    r = api.post("/api/smm/providers", {"name": "taken", "apiUrl": "not a url"}, format="json")
    assert r.status_code == 400
    errors = r.json()
    assert {"apiUrl", "apiKey"} <= set(errors)
    r = api.post("/api/smm/providers", {"name": "taken", "apiUrl": PANEL_URL, "apiKey": "x"}, format="json")
    assert r.status_code == 400 and "name" in r.json()
    r = api.post("/api/smm/providers", {"name": "has spaces", "apiUrl": PANEL_URL, "apiKey": "x"}, format="json")
    assert r.status_code == 400 and "name" in r.json()


def test_snake_case_input_is_accepted(api):
    r = api.post("/api/smm/providers", {"name": "jap", "display_name": "JAP", "api_url": PANEL_URL,
                                        "api_key": "k"}, format="json")
    assert r.status_code == 201 and r.json()["displayName"] == "JAP" and r.json()["code"] == "jap"


def test_merchants_never_see_or_touch_each_others_providers_and_orders(api, other_api, make_provider, merchant,
                                                                      other_merchant, staff_api):
    mine = make_provider(owner=merchant, name="mine")
    theirs = make_provider(owner=other_merchant, name="theirs")
    service = make_service(theirs)
    order = SMMOrder.objects.create(owner=other_merchant, provider=theirs, service=service,
                                    link="https://x.ly", quantity=100, status="pending", external_order_id="5")
    assert [p["id"] for p in api.get("/api/smm/providers").json()["results"]] == [mine.pk]
    for method, url in [("get", f"/api/smm/providers/{theirs.pk}"), ("put", f"/api/smm/providers/{theirs.pk}"),
                        ("delete", f"/api/smm/providers/{theirs.pk}"),
                        ("patch", f"/api/smm/providers/{theirs.pk}/toggle"),
                        ("post", f"/api/smm/providers/{theirs.pk}/sync"),
                        ("get", f"/api/smm/providers/{theirs.pk}/services"),
                        ("get", f"/api/smm/orders/{order.pk}"), ("post", f"/api/smm/orders/{order.pk}/cancel"),
                        ("post", f"/api/smm/orders/{order.pk}/refill")]:
        r = getattr(api, method)(url, {}, format="json")
        assert r.status_code == 404, (method, url, r.status_code)
    assert api.get("/api/smm/orders").json()["count"] == 0
    r = api.post("/api/smm/orders", {"providerId": theirs.pk, "serviceId": "1", "link": "https://x.ly",
                                     "quantity": 100}, format="json")
    assert r.status_code == 400 and "providerId" in r.json()
    theirs.integration.refresh_from_db()
    assert theirs.integration.status == "active" and SMMOrder.objects.count() == 1
    assert other_api.get("/api/smm/orders").json()["count"] == 1
    assert staff_api.get("/api/smm/providers").json()["count"] == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantity": 10}, "quantity"),  # below min 50
        ({"quantity": 20000}, "quantity"),
        ({"link": "not-a-link"}, "link"),
        ({"quantity": None}, "quantity"),
        ({"serviceId": "999"}, "serviceId"),
        ({"runs": 3}, "runs"),
        ({"quantity": "many"}, "quantity"),
    ],
)
def test_order_400s_name_the_field(api, make_provider, body, field):
    provider = make_provider()
    make_service(provider)
    payload = {"providerId": provider.pk, "serviceId": "1", "link": "https://instagram.com/p/x", "quantity": 100}
    payload.update(body)
    payload = {k: v for k, v in payload.items() if v is not None}
    r = api.post("/api/smm/orders", payload, format="json")
    assert r.status_code == 400, r.json()
    assert field in r.json(), r.json()
    assert not SMMOrder.objects.exists()


def test_inactive_service_or_provider_is_refused(api, make_provider):
    provider = make_provider()
    make_service(provider, is_active=False)
    r = api.post("/api/smm/orders", {"providerId": provider.pk, "serviceId": "1", "link": "https://x.ly/a",
                                     "quantity": 100}, format="json")
    assert r.status_code == 400 and "serviceId" in r.json()
    provider.integration.set_status("inactive")
    SMMService.objects.update(is_active=True)
    r = api.post("/api/smm/orders", {"providerId": provider.pk, "serviceId": "1", "link": "https://x.ly/a",
                                     "quantity": 100}, format="json")
    assert r.status_code == 400 and "providerId" in r.json()


def test_custom_comments_need_comments_and_count_them(api, make_provider):
    provider = make_provider()
    make_service(provider, service_id="2", type="Custom Comments", min_quantity=2, max_quantity=5)
    base = {"providerId": provider.pk, "serviceId": "2", "link": "https://instagram.com/p/x"}
    r = api.post("/api/smm/orders", base, format="json")
    assert r.status_code == 400 and "customComments" in r.json()
    r = api.post("/api/smm/orders", {**base, "customComments": ["only one"]}, format="json")
    assert r.status_code == 400 and "customComments" in r.json()


@responses.activate
def test_create_order_with_the_seeds_example_submits_once(api, make_provider, django_capture_on_commit_callbacks):
    provider = make_provider()
    make_service(provider, service_id="2", type="Custom Comments", min_quantity=1, max_quantity=100)
    responses.post(PANEL_URL, json={"order": 777})
    body = {"providerId": str(provider.pk), "serviceId": "2", "link": "https://social-media-link.com",
            "quantity": 1000, "customComments": ["comment1", "comment2"]}
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert r.status_code == 201, r.json()
    order = SMMOrder.objects.get()
    assert order.quantity == 2 and order.extra == {"comments": "comment1\ncomment2"}
    assert order.status == "pending" and order.external_order_id == "777"
    assert "comments=comment1%0Acomment2" in responses.calls[0].request.body
    with django_capture_on_commit_callbacks(execute=True):
        again = api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="abc-1")
    assert again.status_code == 200 and again.json()["id"] == order.pk
    assert len(responses.calls) == 1 and SMMOrder.objects.count() == 1
    r = api.post("/api/smm/orders", {**body, "link": "https://other.ly"}, format="json",
                 HTTP_IDEMPOTENCY_KEY="abc-1")
    assert r.status_code == 409


def test_orders_list_filters_by_status_and_pages(api, make_provider, merchant):
    provider = make_provider()
    service = make_service(provider)
    for i, status in enumerate(["pending"] * 12 + ["completed"] * 3 + ["unknown"]):
        SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly",
                                quantity=100, status=status, external_order_id=str(i))
    r = api.get("/api/smm/orders?status=Pending&page=1&limit=10")
    assert r.status_code == 200
    data = r.json()
    assert data["count"] == 12 and len(data["results"]) == 10
    assert {o["status"] for o in data["results"]} == {"Pending"}
    assert len(api.get("/api/smm/orders?status=Pending&page=2&limit=10").json()["results"]) == 2
    assert api.get("/api/smm/orders?status=completed").json()["count"] == 3
    under_review = api.get("/api/smm/orders?status=Under review").json()
    assert under_review["count"] == 1 and under_review["results"][0]["status"] == "Under review"
    assert api.get("/api/smm/orders?status=bogus").status_code == 400


def test_provider_services_lists_the_catalogue_with_filters(api, make_provider):
    provider = make_provider()
    make_service(provider, "1")
    make_service(provider, "2", name="TikTok Likes", category="TikTok Likes")
    make_service(provider, "3", is_active=False)
    r = api.get(f"/api/smm/providers/{provider.pk}/services")
    assert r.status_code == 200 and r.json()["count"] == 2
    r = api.get(f"/api/smm/providers/{provider.pk}/services?category=TikTok Likes")
    assert [s["serviceId"] for s in r.json()["results"]] == ["2"]
    assert api.get(f"/api/smm/providers/{provider.pk}/services?search=tiktok").json()["count"] == 1


def test_delete_is_refused_while_orders_exist(api, make_provider, merchant):
    provider = make_provider()
    service = make_service(provider)
    SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly", quantity=100)
    r = api.delete(f"/api/smm/providers/{provider.pk}")
    assert r.status_code == 409 and SMMProvider.objects.filter(pk=provider.pk).exists()


def test_sync_refill_cancel_against_the_simulator(api, sandbox_provider, django_capture_on_commit_callbacks):
    provider = sandbox_provider("jap", step_seconds=30)
    r = api.post(f"/api/smm/providers/{provider.pk}/sync")
    assert r.status_code == 200 and r.json()["result"]["created"] == 60
    assert r.json()["provider"]["supportedServices"] == 60
    spec = first_service("jap", 60, "Default", cancel=True)
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/smm/orders", {"providerId": provider.pk, "serviceId": str(spec["service"]),
                                         "link": "https://instagram.com/p/z", "quantity": spec["min"]},
                     format="json")
    assert r.status_code == 201 and r.json()["status"] == "Pending"
    pk = r.json()["id"]
    r = api.post(f"/api/smm/orders/{pk}/refill")
    assert r.status_code == 400 and "detail" in r.json()  # not finished yet
    r = api.post(f"/api/smm/orders/{pk}/cancel")
    assert r.status_code == 202 and r.json()["cancelRequestedAt"]
    r = api.post(f"/api/smm/orders/{pk}/refresh")
    assert r.status_code == 200 and r.json()["status"] == "Canceled"
    assert SandboxPanelOrder.objects.get().canceled
    r = api.post(f"/api/smm/providers/{provider.pk}/balance")
    assert r.status_code == 200 and r.json()["balance"] == "1000.00000"


def test_panel_down_is_a_503_with_a_message(api, make_provider):
    provider = make_provider(url="http://127.0.0.1:9/api/v2")
    provider.integration.configuration = {"retries": 0}
    provider.integration.save()
    r = api.post(f"/api/smm/providers/{provider.pk}/sync")
    assert r.status_code == 503 and "Could not reach" in r.json()["detail"]
    provider.refresh_from_db()
    assert provider.last_sync_error


def test_initialize_default_providers_is_idempotent(merchant):
    keys = {"justanotherpanel": "k1", "smmkings": "k2", "secsers": "k3"}
    first = initialize_default_providers(merchant, keys)
    again = initialize_default_providers(merchant, keys)
    assert [p.pk for p in first] == [p.pk for p in again] and SMMProvider.objects.count() == 3
    assert sorted(p.integration.code for p in first) == ["jap", "secsers", "smmkings"]
