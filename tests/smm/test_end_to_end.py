"""End to end over real HTTP: the API -> the broker -> a real Celery worker process -> the simulator
(live_server) -> status polled back into the database."""

import pytest

from smm import tasks
from smm.models import SandboxPanelOrder, SMMOrder, SMMProvider, SMMService
from tests.conftest import wait_for

from .conftest import first_service


@pytest.mark.worker
def test_order_travels_api_worker_simulator_and_back(worker, api, sandbox_provider):
    provider = sandbox_provider("jap", step_seconds=0.5, catalogue_size=80)

    r = api.post(f"/api/smm/providers/{provider.pk}/sync?async=1")
    assert r.status_code == 202
    wait_for(lambda: SMMService.objects.filter(provider=provider).count() == 80, timeout=30)

    spec = first_service("jap", 80, "Default")
    r = api.post("/api/smm/orders", {"providerId": provider.pk, "serviceId": str(spec["service"]),
                                     "link": "https://instagram.com/p/e2e", "quantity": spec["min"]},
                 format="json", HTTP_IDEMPOTENCY_KEY="e2e-1")
    assert r.status_code == 201, r.json()
    pk = r.json()["id"]
    # The worker submits it to the simulator.
    order = wait_for(lambda: SMMOrder.objects.filter(pk=pk).exclude(status__in=["created", "submitting"]).first(),
                     timeout=30)
    assert order.status == "pending" and order.external_order_id

    # Scheduled polling (the beat job) on the worker moves it along until the panel finishes it.
    def finished():
        tasks.poll_all_orders.delay()
        order.refresh_from_db()
        return order.status in ("completed", "partial")

    wait_for(finished, timeout=45, interval=1.0)
    assert SandboxPanelOrder.objects.count() == 1
    r = api.get(f"/api/smm/orders/{pk}")
    assert r.json()["status"] in ("Completed", "Partial") and r.json()["charge"] is not None
    provider = SMMProvider.objects.get(pk=provider.pk)
    assert provider.total_orders == 1 and provider.total_spent > 0
    # A retried create after all that is still the same single order.
    again = api.post("/api/smm/orders", {"providerId": provider.pk, "serviceId": str(spec["service"]),
                                         "link": "https://instagram.com/p/e2e", "quantity": spec["min"]},
                     format="json", HTTP_IDEMPOTENCY_KEY="e2e-1")
    assert again.status_code == 200 and again.json()["id"] == pk
    assert SandboxPanelOrder.objects.count() == 1
