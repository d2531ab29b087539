"""Invariants that a one-line change could break without any other test noticing: two concurrent
requests with one Idempotency-Key make one order, and a finished order never reopens."""

import json
import threading
from urllib.parse import parse_qs

import pytest
import responses
from django.db import connection

from integrations.models import StateTransition
from smm import orders
from smm.catalogue import sync_services
from smm.models import FINAL_STATES, OrderStatus, SandboxPanelOrder, SMMOrder, SMMService
from smm.orders import refresh_order

from ..conftest import client_for
from .conftest import PANEL_URL, first_service


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_make_one_order_and_both_get_it(sandbox_provider, merchant,
                                                                               monkeypatch):
    provider = sandbox_provider("jap")
    sync_services(provider)
    spec = first_service("jap", 60, "Default")
    body = {"providerId": provider.pk, "serviceId": str(spec["service"]), "link": "https://instagram.com/p/abc",
            "quantity": spec["min"]}
    # Both requests pass the "is this key known?" check before either writes its row: the race
    # that only the database's unique constraint can settle.
    both_checked = threading.Barrier(2, timeout=15)
    validate = orders.validate_order

    def validate_together(*args, **kwargs):
        both_checked.wait()
        return validate(*args, **kwargs)

    monkeypatch.setattr(orders, "validate_order", validate_together)
    answers = [None, None]

    def post(i):
        try:
            answers[i] = client_for(merchant).post("/api/smm/orders", body, format="json",
                                                   HTTP_IDEMPOTENCY_KEY="same-key-1")
        finally:
            connection.close()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers), "a request did not finish"
    assert sorted(a.status_code for a in answers) == [200, 201], [a.content for a in answers]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert SMMOrder.objects.count() == 1
    order = SMMOrder.objects.get()
    assert order.idempotency_key == "same-key-1"
    assert SandboxPanelOrder.objects.count() == 1  # and the panel got it once


def finished_order(status, make_provider, merchant):
    provider = make_provider()
    service = SMMService.objects.create(provider=provider, service_id="1", name="Followers", rate="0.9",
                                        min_quantity=10, max_quantity=10_000)
    return SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly",
                                   quantity=100, status=status, external_order_id="1000")


@pytest.mark.django_db
@pytest.mark.parametrize("final", FINAL_STATES)
def test_a_finished_order_never_reopens(final, make_provider, merchant):
    order = finished_order(final, make_provider, merchant)
    for status in OrderStatus.values:
        assert not SMMOrder.machine.move(order, status), (final, status)
        assert not order.transition(status), (final, status)
    order.refresh_from_db()
    assert order.status == final
    assert not StateTransition.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("final", FINAL_STATES)
@responses.activate
def test_a_late_panel_answer_does_not_reopen_a_finished_order(final, make_provider, merchant):
    order = finished_order(final, make_provider, merchant)

    def pending(request):
        fields = parse_qs(request.body)
        assert fields["action"] == ["status"]
        return 200, {}, json.dumps({"status": "Pending", "charge": "0.09", "remains": "100", "currency": "USD"})

    responses.add_callback(responses.POST, PANEL_URL, callback=pending)
    refresh_order(order)
    order.refresh_from_db()
    assert order.status == final
