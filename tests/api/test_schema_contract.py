"""The schema at /api/schema/ is the contract merchants generate clients from: every real answer of
every endpoint fits it (issue 11, point 11).

One scenario drives the API as a merchant and as an operator against the panel simulator over real
HTTP — providers, services, orders, refills, health, incidents, notifications, the provider registry
and its call log — through their success answers, their null fields and their errors (400, 401, 403,
404, 409, 429, 502, 503 and 202); every answer is then checked against the schema
(tests.api.openapi_contract). A field answered null but not nullable, a value outside its enum, an
undocumented field, status code, parameter or header fails the test, with the whole list."""

import time

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from integrations.models import IntegrationLog
from monitoring.health import run_round
from monitoring.models import HealthCheck, Incident, Notification
from smm.models import SandboxPanel, SMMOrder, SMMService
from smm.providers import create_provider
from smm.sandbox import catalogue
from tests.conftest import client_for

from .openapi_contract import Contract

pytestmark = pytest.mark.django_db(transaction=True)

# Every operation the scenario must reach, so that an endpoint dropped from it is noticed.
MUST_COVER = {
    ("get", "/api/smm/providers/"), ("post", "/api/smm/providers/"), ("get", "/api/smm/providers/{id}/"),
    ("put", "/api/smm/providers/{id}/"), ("patch", "/api/smm/providers/{id}/"),
    ("delete", "/api/smm/providers/{id}/"), ("post", "/api/smm/providers/{id}/sync/"),
    ("post", "/api/smm/providers/{id}/balance/"), ("get", "/api/smm/providers/{id}/services/"),
    ("post", "/api/smm/providers/{id}/toggle/"), ("patch", "/api/smm/providers/{id}/toggle/"),
    ("get", "/api/smm/orders/"), ("post", "/api/smm/orders/"), ("get", "/api/smm/orders/{id}/"),
    ("post", "/api/smm/orders/{id}/cancel/"), ("post", "/api/smm/orders/{id}/refill/"),
    ("post", "/api/smm/orders/{id}/refresh/"),
    ("get", "/api/monitoring/health/"), ("get", "/api/monitoring/health/{id}/"),
    ("get", "/api/monitoring/health/{id}/history/"), ("get", "/api/monitoring/incidents/"),
    ("get", "/api/monitoring/incidents/{id}/"), ("get", "/api/monitoring/notifications/"),
    ("get", "/api/monitoring/notifications/{id}/"), ("post", "/api/monitoring/notifications/{id}/read/"),
    ("get", "/api/integrations/"), ("get", "/api/integrations/{id}/"), ("get", "/api/integration-logs/"),
    ("get", "/api/integration-logs/{id}/"), ("get", "/api/me/"),
}
# Status codes the scenario must produce at least once: each is an answer clients must handle.
MUST_ANSWER = {200, 201, 202, 204, 400, 401, 403, 404, 409, 429, 502, 503}


class Recorder:
    def __init__(self, contract):
        self.contract = contract
        self.problems = []
        self.covered = set()
        self.statuses = set()

    def __call__(self, client, method, url, data=None, expect=None, **extra):
        response = getattr(client, method)(url, data, format="json", **extra)
        if expect is not None:
            assert response.status_code == expect, (method, url, response.status_code, response.content[:500])
        self.problems += self.contract.check(method, url, response)
        found = self.contract.find(method, url.split("?")[0])
        if found:
            self.covered.add((method, found[0]))
        self.statuses.add(response.status_code)
        return response


@pytest.fixture
def contract(staff_api):
    response = staff_api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return Contract(response.json())


def _sandbox(live_server, owner, code="jap", key=None, name=None):
    SandboxPanel.objects.update_or_create(code=code, defaults={
        "api_key": f"sandbox-{code}-key", "step_seconds": 0.05, "catalogue_size": 40, "balance": "1000"})
    return create_provider(owner=owner, name=name or code, display_name=(name or code).title(),
                           api_url=f"{live_server.url}/sandbox/smm/{code}/api/v2", api_key=key or f"sandbox-{code}-key",
                           code=code)


def _wait_until_finished(call, api, order_id, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        data = call(api, "post", f"/api/smm/orders/{order_id}/refresh", expect=200).json()
        if data["statusCode"] in ("completed", "partial"):
            return data
        time.sleep(0.1)
    raise AssertionError("the simulated order did not finish")


def test_every_answer_of_every_endpoint_fits_the_schema(contract, live_server, merchant, other_merchant, staff,
                                                        api, staff_api):
    call = Recorder(contract)
    base = f"{live_server.url}/sandbox/smm/jap/api/v2"

    # --- providers: a new one has no balance, no sync and no success rate yet (nulls) ---------------
    SandboxPanel.objects.update_or_create(code="jap", defaults={
        "api_key": "sandbox-jap-key", "step_seconds": 0.05, "catalogue_size": 40, "balance": "1000"})
    created = call(api, "post", "/api/smm/providers", {"name": "jap", "apiUrl": base, "apiKey": "sandbox-jap-key"},
                   expect=201).json()
    assert created["balance"] is None and created["lastSyncAt"] is None and created["balanceCheckedAt"] is None
    assert created["stats"]["successRate"] is None
    pk = created["id"]
    call(api, "post", "/api/smm/providers", {"name": "jap", "apiUrl": "ftp://x", "apiKey": ""}, expect=400)
    call(api, "get", "/api/smm/providers", expect=200)
    call(api, "get", f"/api/smm/providers/{pk}", expect=200)
    call(api, "put", f"/api/smm/providers/{pk}", {"displayName": "JAP", "priority": 2}, expect=200)
    call(api, "patch", f"/api/smm/providers/{pk}", {"lowBalanceThreshold": "5"}, expect=200)
    call(api, "patch", f"/api/smm/providers/{pk}", {"priority": -1}, expect=400)
    call(api, "post", f"/api/smm/providers/{pk}/sync", expect=200)
    call(api, "post", f"/api/smm/providers/{pk}/sync?async=true", expect=202)
    call(api, "post", f"/api/smm/providers/{pk}/balance", expect=200)
    call(api, "get", f"/api/smm/providers/{pk}/services?category=Instagram Followers&active=true", expect=200)
    call(api, "get", f"/api/smm/providers/{pk}/services?search=likes&type=Default", expect=200)
    call(api, "patch", f"/api/smm/providers/{pk}/toggle", expect=200)
    call(api, "post", f"/api/smm/providers/{pk}/toggle", expect=200)
    call(api, "get", "/api/smm/providers/999999", expect=404)

    # --- orders --------------------------------------------------------------------------------
    spec = next(s for s in catalogue("jap", 40).values() if s["type"] == "Default" and s["refill"] and s["cancel"])
    order_body = {"providerId": pk, "serviceId": str(spec["service"]), "link": "https://instagram.com/p/z",
                  "quantity": spec["min"]}
    first = call(api, "post", "/api/smm/orders", order_body, expect=201, HTTP_IDEMPOTENCY_KEY="k-1").json()
    call(api, "post", "/api/smm/orders", order_body, expect=200, HTTP_IDEMPOTENCY_KEY="k-1")
    call(api, "post", "/api/smm/orders", {**order_body, "link": "https://instagram.com/p/other"}, expect=409,
         HTTP_IDEMPOTENCY_KEY="k-1")
    call(api, "post", "/api/smm/orders", {**order_body, "quantity": 0}, expect=400)
    call(api, "post", f"/api/smm/orders/{first['id']}/refill", expect=400)  # not finished: detail as a list
    finished = _wait_until_finished(call, api, first["id"])
    call(api, "post", f"/api/smm/orders/{finished['id']}/refill", expect=201)
    SandboxPanel.objects.filter(code="jap").update(step_seconds=600)  # the next order stays cancelable
    second = call(api, "post", "/api/smm/orders", order_body, expect=201).json()
    call(api, "post", f"/api/smm/orders/{second['id']}/cancel", expect=202)
    # An order with no quantity and no start count yet (a subscription's shape): nulls in the answer.
    service = SMMService.objects.get(provider_id=pk, service_id=str(spec["service"]))
    bare = SMMOrder.objects.create(owner=merchant, provider_id=pk, service=service, link="", quantity=None,
                                   status="pending", external_order_id="")
    call(api, "get", f"/api/smm/orders/{bare.pk}", expect=200)
    call(api, "get", "/api/smm/orders", expect=200)
    call(api, "get", f"/api/smm/orders?status=Pending,completed&provider={pk}&page=1&limit=5", expect=200)
    call(api, "get", "/api/smm/orders?provider=9223372036854775808", expect=400)
    call(api, "get", "/api/smm/orders/999999", expect=404)
    call(api, "post", "/api/smm/orders/abc/cancel", expect=404)
    call(api, "delete", f"/api/smm/providers/{pk}", expect=409)

    # --- provider errors: a refused key is a 502, an unreachable panel a 503 -------------------------
    wrong_key = _sandbox(live_server, merchant, name="wrongkey", key="not-the-key")
    call(api, "post", f"/api/smm/providers/{wrong_key.pk}/balance", expect=502)
    unreachable = create_provider(owner=merchant, name="down", display_name="Down", api_url="http://127.0.0.1:9/api/v2",
                                  api_key="k", code="panel_v2")
    unreachable.integration.configuration = {"retries": 0}
    unreachable.integration.save()
    call(api, "post", f"/api/smm/providers/{unreachable.pk}/sync", expect=503)
    spare = create_provider(owner=merchant, name="spare", display_name="Spare", api_url=base, api_key="k",
                            code="jap")
    call(api, "delete", f"/api/smm/providers/{spare.pk}", expect=204)

    # --- monitoring: a round gives checks, an incident for the unreachable panel, a notice -----------
    run_round()
    never_checked = create_provider(owner=other_merchant, name="new", display_name="New", api_url=base,
                                    api_key="k", code="jap")
    assert never_checked.integration.health_status == ""  # blank until its first check: in the enum too
    incident = Incident.objects.filter(integration=unreachable.integration).first() or Incident.objects.create(
        integration=unreachable.integration, severity="high", description="down")
    acknowledged = Incident.objects.create(integration=wrong_key.integration, severity="low", state="acknowledged",
                                           acknowledged_by=staff, acknowledged_at=timezone.now())
    notice = Notification.objects.filter(user=merchant).first() or Notification.objects.create(
        user=merchant, incident=incident, integration=unreachable.integration, title="Down", body="…")
    assert HealthCheck.objects.exists()
    call(staff_api, "get", "/api/monitoring/health/", expect=200)
    call(staff_api, "get", "/api/monitoring/health/?kind=smm&status=active&healthStatus=healthy", expect=200)
    call(staff_api, "get", f"/api/monitoring/health/{never_checked.integration.pk}/", expect=200)
    call(staff_api, "get", f"/api/monitoring/health/{unreachable.integration.pk}/", expect=200)
    call(staff_api, "get", f"/api/monitoring/health/{unreachable.integration.pk}/history/", expect=200)
    call(staff_api, "get", f"/api/monitoring/health/{unreachable.integration.pk}/history/?since=2000-01-01T00:00:00Z"
         "&page=1&limit=5", expect=200)
    call(staff_api, "get", f"/api/monitoring/health/{unreachable.integration.pk}/history/?since=garbage",
         expect=400)
    call(staff_api, "get", "/api/monitoring/health/1/", expect=404)
    call(api, "get", "/api/monitoring/health/", expect=403)
    call(staff_api, "get", "/api/monitoring/incidents/", expect=200)
    call(staff_api, "get", f"/api/monitoring/incidents/?open=true&severity=high&integration={incident.integration_id}",
         expect=200)
    call(staff_api, "get", f"/api/monitoring/incidents/{incident.pk}/", expect=200)
    call(staff_api, "get", f"/api/monitoring/incidents/{acknowledged.pk}/", expect=200)
    call(api, "get", "/api/monitoring/notifications/", expect=200)
    call(api, "get", f"/api/monitoring/notifications/{notice.pk}/", expect=200)
    call(api, "post", f"/api/monitoring/notifications/{notice.pk}/read/", expect=200)

    # --- the provider registry and its call log -------------------------------------------------
    call(api, "get", "/api/integrations/", expect=200)
    call(staff_api, "get", "/api/integrations/?kind=smm&healthStatus=unhealthy", expect=200)
    call(api, "get", f"/api/integrations/{unreachable.integration.pk}/", expect=200)
    call(staff_api, "get", f"/api/integrations/{never_checked.integration.pk}/", expect=200)
    call(api, "get", "/api/integration-logs/", expect=200)
    log = IntegrationLog.objects.filter(integration__owner=merchant).first()
    call(api, "get", f"/api/integration-logs/{log.pk}/", expect=200)
    call(api, "get", f"/api/integration-logs/?integration={log.integration_id}&status=success&transport=http"
         "&since=2000-01-01T00:00:00Z", expect=200)
    call(api, "get", "/api/integration-logs/?since=garbage", expect=400)
    call(api, "get", "/api/me/", expect=200)

    # --- no credentials, and too many writes or failed tokens: 401 and 429 ----------------------------
    call(APIClient(), "get", "/api/smm/providers", expect=401)
    call(APIClient(), "get", "/api/monitoring/health/", expect=401)
    rates = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"writes": "1/min"}}
    with override_settings(REST_FRAMEWORK=rates):
        throttled = client_for(other_merchant)
        call(throttled, "post", "/api/smm/providers", {"name": "x"}, expect=400)
        call(throttled, "post", "/api/smm/providers", {"name": "x"}, expect=429)
    with override_settings(API_TOKEN_FAILURE_LIMIT=1):
        guesser = APIClient()
        guesser.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
        call(guesser, "get", "/api/smm/orders", expect=429)

    missing = {op for op in MUST_COVER if op not in call.covered}
    assert not missing, f"operations the scenario no longer reaches: {sorted(missing)}"
    assert MUST_ANSWER <= call.statuses, f"answers never produced: {sorted(MUST_ANSWER - call.statuses)}"
    assert not call.problems, "answers that do not fit the schema:\n" + "\n".join(call.problems)


def test_the_contract_check_catches_drift(contract, api, merchant):
    """The checker itself: an undeclared null, an undocumented status or field is reported."""
    provider = create_provider(owner=merchant, name="p", display_name="P", api_url="https://panel.example.test/v2",
                               api_key="k", code="panel_v2")

    class Fake:
        def __init__(self, status, body):
            import json

            self.status_code, self.content, self._body = status, json.dumps(body).encode(), body

        def get(self, name, default=None):
            return "application/json" if name == "Content-Type" else default

        def has_header(self, name):
            return False

        def json(self):
            return self._body

    real = api.get(f"/api/smm/providers/{provider.pk}").json()
    assert contract.check("get", f"/api/smm/providers/{provider.pk}", Fake(200, real)) == []
    assert contract.check("get", f"/api/smm/providers/{provider.pk}", Fake(200, {**real, "name": None}))
    assert contract.check("get", f"/api/smm/providers/{provider.pk}", Fake(200, {**real, "surprise": 1}))
    assert contract.check("get", f"/api/smm/providers/{provider.pk}", Fake(418, {"detail": "teapot"}))
    assert contract.check("get", f"/api/smm/providers/{provider.pk}?undocumented=1", Fake(200, real))
    assert contract.check("get", "/api/monitoring/health/1/", Fake(200, {}))
