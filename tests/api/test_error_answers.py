"""Malformed input is a 400 or a 404 with a message, never a 500 (issue 11, point 10).

Each case was a 500 before: a path id that is not an id, a `since` that is not a date, a JSON body
nested deeper than the parser can recurse, an integer filter beyond the database's range."""

import uuid

import pytest

from integrations.api.parsers import MAX_DEPTH
from monitoring.models import HealthCheck
from smm.models import SMMOrder, SMMService
from smm.providers import create_provider

pytestmark = pytest.mark.django_db

BIGGER_THAN_ANY_ID = "9223372036854775808"  # 2**63: past SQLite's and PostgreSQL's bigint


@pytest.fixture
def provider(merchant):
    return create_provider(owner=merchant, name="panel", display_name="Panel",
                           api_url="https://panel.example.test/api/v2", api_key="k-123", code="panel_v2")


@pytest.fixture
def order(merchant, provider):
    service = SMMService.objects.create(provider=provider, service_id="1", name="IG", type="Default",
                                        category="Instagram", rate="0.90", min_quantity=10, max_quantity=1000)
    return SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly",
                                   quantity=100, status="pending", external_order_id="5")


def _json(response):
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    return response.json()


@pytest.fixture(autouse=True)
def _answers_not_raises(api, staff_api):
    # The test client re-raises a view's exception; we want the answer a client would get.
    api.raise_request_exception = staff_api.raise_request_exception = False


@pytest.mark.parametrize("action", ["cancel", "refill", "refresh"])
@pytest.mark.parametrize("bad_id", ["abc", "1.5", BIGGER_THAN_ANY_ID, "-1"])
def test_an_order_action_on_something_that_is_not_an_order_id_is_a_404(api, order, action, bad_id):
    r = api.post(f"/api/smm/orders/{bad_id}/{action}")
    assert r.status_code == 404, r.content[:300]
    assert _json(r)["detail"]


@pytest.mark.parametrize("path", ["/api/smm/nothing-here", "/api/monitoring/nothing-here/", "/api/nothing-here/"])
def test_an_address_no_api_route_matches_is_a_json_404(api, path):
    r = api.get(path)
    assert r.status_code == 404 and _json(r)["detail"]


def test_a_404_outside_the_api_is_still_the_sites_page(client):
    r = client.get("/nothing-here/")
    assert r.status_code == 404 and r["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/api/smm/orders/abc", "/api/smm/providers/abc", "/api/smm/providers/abc/toggle",
                                  "/api/smm/providers/abc/services", f"/api/smm/providers/{BIGGER_THAN_ANY_ID}"])
def test_other_detail_routes_refuse_a_bad_id_the_same_way(api, provider, path):
    r = api.get(path) if path.endswith(("abc", "services", BIGGER_THAN_ANY_ID)) else api.post(path)
    assert r.status_code == 404, r.content[:300]
    assert _json(r)["detail"]


@pytest.mark.parametrize("suffix", ["", "history/"])
@pytest.mark.parametrize("bad_id", ["1", "abc", "00000000-0000-0000-0000-00000000000g"])
def test_health_of_something_that_is_not_a_provider_uuid_is_a_404(staff_api, bad_id, suffix):
    r = staff_api.get(f"/api/monitoring/health/{bad_id}/{suffix}")
    assert r.status_code == 404, r.content[:300]
    assert _json(r)["detail"]


def test_health_of_an_unknown_uuid_is_still_a_404(staff_api):
    r = staff_api.get(f"/api/monitoring/health/{uuid.uuid4()}/history/")
    assert r.status_code == 404 and _json(r)["detail"]


def test_health_history_since_that_is_not_a_date_is_a_400_naming_the_field(staff_api, provider):
    HealthCheck.objects.create(integration=provider.integration, status="healthy", response_time=12)
    url = f"/api/monitoring/health/{provider.integration.pk}/history/"
    r = staff_api.get(url, {"since": "garbage"})
    assert r.status_code == 400, r.content[:300]
    assert list(_json(r)) == ["since"] and r.json()["since"]
    r = staff_api.get(url, {"since": "2000-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["count"] == 1


def _nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("method", "path"), [
    ("post", "/api/smm/providers"), ("put", "/api/smm/providers/{provider}"),
    ("patch", "/api/smm/providers/{provider}"), ("post", "/api/smm/orders"),
])
@pytest.mark.parametrize("depth", [100_000, MAX_DEPTH])  # with the object around it: one level too many
def test_a_json_body_nested_too_deep_is_a_400(api, provider, method, path, depth):
    body = '{"name": ' + _nested(depth) + "}"
    r = getattr(api, method)(path.format(provider=provider.pk), data=body, content_type="application/json")
    assert r.status_code == 400, r.content[:300]
    assert str(MAX_DEPTH) in _json(r)["detail"]  # the message says how deep a body may nest


def test_a_json_body_nested_within_the_limit_reaches_the_serializer(api, provider):
    # The serializer answers (a field message), not the parser: the limit leaves real bodies alone.
    body = '{"name": ' + _nested(MAX_DEPTH - 1) + "}"
    r = api.post("/api/smm/providers", data=body, content_type="application/json")
    assert r.status_code == 400 and "name" in _json(r)


@pytest.mark.parametrize("value", [BIGGER_THAN_ANY_ID, "-9223372036854775809", "99999999999999999999999", "abc",
                                   "1.5"])
def test_an_integer_filter_out_of_range_is_a_400_naming_the_field(api, order, value):
    r = api.get("/api/smm/orders", {"provider": value})
    assert r.status_code == 400, r.content[:300]
    assert list(_json(r)) == ["provider"]


def test_the_provider_filter_still_filters(api, order, provider):
    assert api.get("/api/smm/orders", {"provider": provider.pk}).json()["count"] == 1
    assert api.get("/api/smm/orders", {"provider": provider.pk + 1}).json()["count"] == 0
    assert api.get("/api/smm/orders", {"status": "pending,completed"}).json()["count"] == 1
    r = api.get("/api/smm/orders", {"status": "nonsense"})
    assert r.status_code == 400 and list(r.json()) == ["status"]
