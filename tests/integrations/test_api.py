"""The foundation's API under /api/: authentication, scoping, secrecy, pagination, throttling, schema."""

import datetime as dt
import json

import pytest
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import ExternalIntegration, IntegrationLog

SECRETS = ("sk_live_ABCDEF123456", "whsec_TOPSECRET99")


@pytest.fixture
def providers(make_provider, merchant, other_merchant):
    """One provider each for two merchants and one of the platform's, each with a logged call."""
    mine = make_provider(owner=merchant, name="mine")
    theirs = make_provider(owner=other_merchant, name="theirs")
    platform = make_provider(name="platform")
    for provider in (mine, theirs, platform):
        IntegrationLog.objects.create(
            integration=provider, endpoint=f"{provider.name}/health", method="POST", response_status=200,
            # Bodies and headers are for operators: even an unredacted secret there must not reach the API.
            request_headers={"Authorization": f"Bearer {SECRETS[0]}"}, request_body=json.dumps({"key": SECRETS[0]}),
            response_body=SECRETS[1],
        )
    return {"mine": mine, "theirs": theirs, "platform": platform}


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# --- authentication ---------------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/me/", "/api/integrations/", "/api/integration-logs/"])
def test_anonymous_is_refused(path):
    response = APIClient().get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_refused(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert client.get("/api/me/").status_code == 401


def test_token_authentication(api, merchant):
    response = api.get("/api/me/")
    assert response.status_code == 200
    assert response.json() == {"id": merchant.pk, "username": "merchant-a", "isStaff": False}


def test_session_authentication(merchant):
    client = APIClient()
    # django-axes counts sign-ins per address, so authentication needs the request.
    assert client.login(request=HttpRequest(), username="merchant-a", password="pw-merchant-a")
    response = client.get("/api/me/")
    assert response.status_code == 200 and response.json()["username"] == "merchant-a"
    client.logout()
    assert client.get("/api/me/").status_code == 401


def test_session_writes_need_the_csrf_token(merchant):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(merchant)
    response = client.post("/api/integrations/", {}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


# --- scoping ----------------------------------------------------------------------------------------

def test_a_merchant_sees_only_its_own_integrations(api, providers):
    assert ids(api.get("/api/integrations/")) == {str(providers["mine"].pk)}
    assert api.get(f"/api/integrations/{providers['mine'].pk}/").status_code == 200
    for other in ("theirs", "platform"):
        assert api.get(f"/api/integrations/{providers[other].pk}/").status_code == 404


def test_the_other_merchant_sees_only_its_own(other_api, providers):
    assert ids(other_api.get("/api/integrations/")) == {str(providers["theirs"].pk)}


def test_staff_see_every_integration(staff_api, providers):
    assert ids(staff_api.get("/api/integrations/")) == {str(p.pk) for p in providers.values()}
    assert staff_api.get(f"/api/integrations/{providers['theirs'].pk}/").status_code == 200


def test_a_merchant_sees_only_the_logs_of_its_own_integrations(api, providers):
    response = api.get("/api/integration-logs/")
    rows = response.json()["results"]
    assert [row["endpoint"] for row in rows] == ["mine/health"]
    assert rows[0]["integration"] == str(providers["mine"].pk)
    theirs = IntegrationLog.objects.get(integration=providers["theirs"])
    assert api.get(f"/api/integration-logs/{theirs.pk}/").status_code == 404


def test_staff_see_every_log(staff_api, providers):
    assert len(ids(staff_api.get("/api/integration-logs/"))) == 3


def test_filtering_logs_by_someone_elses_integration_reveals_nothing(api, providers):
    mine = api.get("/api/integration-logs/", {"integration": providers["mine"].pk})
    assert len(ids(mine)) == 1
    theirs = api.get("/api/integration-logs/", {"integration": providers["theirs"].pk})
    unknown = api.get("/api/integration-logs/", {"integration": "00000000-0000-0000-0000-000000000000"})
    # Another merchant's provider is answered exactly like one that does not exist.
    assert theirs.status_code == unknown.status_code == 400
    assert set(theirs.json()) == set(unknown.json()) == {"integration"}


def test_filters_narrow_the_list(api, make_provider, merchant):
    provider = make_provider(owner=merchant)
    IntegrationLog.objects.create(integration=provider, endpoint="old", method="GET",
                                  started_at=timezone.now() - dt.timedelta(days=3))
    IntegrationLog.objects.create(integration=provider, endpoint="failed", method="GET", status="error")
    since = (timezone.now() - dt.timedelta(days=1)).isoformat()
    rows = api.get("/api/integration-logs/", {"since": since}).json()["results"]
    assert [row["endpoint"] for row in rows] == ["failed"]
    rows = api.get("/api/integration-logs/", {"status": "error"}).json()["results"]
    assert [row["endpoint"] for row in rows] == ["failed"]


# --- secrecy ----------------------------------------------------------------------------------------

def test_credentials_never_appear_in_any_response(api, staff_api, providers):
    log = IntegrationLog.objects.get(integration=providers["mine"])
    responses = [
        api.get("/api/integrations/"),
        api.get(f"/api/integrations/{providers['mine'].pk}/"),
        api.get("/api/integration-logs/"),
        api.get(f"/api/integration-logs/{log.pk}/"),
        staff_api.get("/api/integrations/"),
        staff_api.get("/api/integration-logs/"),
        *(staff_api.get(f"/api/integrations/{p.pk}/") for p in providers.values()),
        staff_api.get("/api/schema/", {"format": "json"}),
    ]
    for response in responses:
        assert response.status_code == 200
        body = response.content.decode()
        for secret in SECRETS:
            assert secret not in body
        assert "credentials" not in body and "request_body" not in body and "request_headers" not in body
    # The secrets are really stored (the test would prove nothing otherwise).
    assert ExternalIntegration.objects.get(pk=providers["mine"].pk).credentials["api_key"] == SECRETS[0]
    assert SECRETS[0] in IntegrationLog.objects.get(pk=log.pk).request_body


# --- pagination -------------------------------------------------------------------------------------

@pytest.fixture
def many_logs(make_provider, merchant):
    provider = make_provider(owner=merchant)
    now = timezone.now()
    IntegrationLog.objects.bulk_create(
        IntegrationLog(integration=provider, endpoint=f"call-{n:03d}", method="GET",
                       started_at=now - dt.timedelta(seconds=n))
        for n in range(105)
    )
    return provider


def test_pagination_shape(api, many_logs):
    first = api.get("/api/integration-logs/").json()
    assert set(first) == {"count", "countCapped", "next", "previous", "nextCursor", "results"}
    assert first["count"] == 105 and first["countCapped"] is False and first["previous"] is None
    assert len(first["results"]) == 20  # PAGE_SIZE
    assert [row["endpoint"] for row in first["results"][:2]] == ["call-000", "call-001"]  # newest first
    assert "page=2" in first["next"]
    last = api.get("/api/integration-logs/", {"page": 6}).json()
    assert len(last["results"]) == 5 and last["next"] is None and "page=5" in last["previous"]


def test_limit_chooses_the_page_size_and_is_capped(api, many_logs):
    page = api.get("/api/integration-logs/", {"limit": 7, "page": 2}).json()
    assert [row["endpoint"] for row in page["results"]] == [f"call-{n:03d}" for n in range(7, 14)]
    assert len(api.get("/api/integration-logs/", {"limit": 1000}).json()["results"]) == 100


def test_a_page_past_the_end_is_404(api, many_logs):
    response = api.get("/api/integration-logs/", {"page": 99})
    assert response.status_code == 404 and response.json()["detail"]


# --- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "params",
    [{"since": "yesterday-ish"}, {"status": "exploded"}, {"integration": "not-a-uuid"}],
)
def test_bad_filters_get_400_with_a_message_per_field(api, providers, params):
    response = api.get("/api/integration-logs/", params)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == set(params)
    messages = body[next(iter(params))]
    assert isinstance(messages, list) and messages and all(isinstance(m, str) and m for m in messages)


def test_bad_integration_filters_get_400(api, providers):
    response = api.get("/api/integrations/", {"kind": "teleportation"})
    assert response.status_code == 400 and list(response.json()) == ["kind"]


# --- throttling -------------------------------------------------------------------------------------

@pytest.fixture
def three_writes_a_minute(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"writes": "3/min"}}
    cache.clear()
    yield
    cache.clear()


def test_a_burst_of_writes_is_throttled_and_reads_are_not(three_writes_a_minute, api, other_api, providers):
    codes = [api.post("/api/integrations/", {"name": "x"}, format="json").status_code for _ in range(5)]
    # The list is read-only (405) until the write budget is spent; then 429.
    assert codes == [405, 405, 405, 429, 429]
    throttled = api.post("/api/integrations/", {}, format="json")
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    for _ in range(10):
        assert api.get("/api/integrations/").status_code == 200
    # The budget is per user: another merchant still writes.
    assert other_api.post("/api/integrations/", {}, format="json").status_code == 405


def test_the_default_write_rate_allows_a_normal_burst(api, providers):
    codes = {api.post("/api/integrations/", {}, format="json").status_code for _ in range(10)}
    assert codes == {405}


# --- schema and docs --------------------------------------------------------------------------------

def test_the_openapi_schema(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert "openapi" in response["Content-Type"]
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "EISHRO integrations hub API"
    assert {"/api/integrations/", "/api/integrations/{id}/", "/api/integration-logs/", "/api/me/"} <= set(
        schema["paths"]
    )
    parameters = {p["name"] for p in schema["paths"]["/api/integration-logs/"]["get"]["parameters"]}
    assert {"page", "limit", "integration", "status", "since"} <= parameters
    assert "tokenAuth" in schema["components"]["securitySchemes"]


def test_the_yaml_schema_is_served_by_default(db):
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    assert response.content.startswith(b"openapi: 3.")


def test_the_docs_page(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "swagger-ui" in html and "/api/schema/" in html
    assert "cdn.jsdelivr.net" not in html  # served from our own static files

