"""Issue 12, point 12: an order row committed while its send task could not be queued (the broker
down) or whose message was lost is still sent, once, by the retry sweep (the outbox); the API
never answers 500 for it, and a repeat with the same Idempotency-Key does not vouch for an order
that nothing would send."""

import logging

import pytest
import responses

from smm import orders, tasks
from smm.models import SMMOrder, SMMService
from tests.conftest import set_eager
from tests.smm.conftest import PANEL_URL

from .support import closed_port, publishing_to

BODY = {"serviceId": "1", "link": "https://instagram.com/p/outbox", "quantity": 100}


@pytest.fixture
def service(make_provider):
    provider = make_provider()
    service = SMMService.objects.create(provider=provider, service_id="1", name="IG Followers", type="Default",
                                        category="Instagram", rate="0.90", min_quantity=10, max_quantity=1000)
    return SMMService.objects.get(pk=service.pk)


@pytest.fixture
def broker_down():
    """Tasks really published (not run in-process) to a broker nobody listens on."""
    set_eager(False)
    try:
        with publishing_to(f"redis://127.0.0.1:{closed_port()}/0"):
            yield
    finally:
        set_eager(True)


@responses.activate
@pytest.mark.django_db(transaction=True)  # autocommit, as in production: on_commit runs inside the request
def test_an_order_taken_while_the_broker_is_down_is_in_the_outbox_and_the_sweep_sends_it_once(
    api, service, broker_down, caplog
):
    responses.post(PANEL_URL, json={"order": 5150})
    body = {**BODY, "providerId": service.provider_id}
    with caplog.at_level(logging.WARNING, logger="smm"):
        first = api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="outbox-1")
    assert first.status_code == 201, first.content
    assert first.json()["statusCode"] == "created"
    assert "could not be queued" in caplog.text and "sweep" in caplog.text
    order = SMMOrder.objects.get()
    assert (order.status, order.attempts, order.next_attempt_at) == ("created", 0, None)  # due at once

    # The client's retry: the same order, still queued, and still nothing sent twice.
    again = api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="outbox-1")
    assert again.status_code == 200 and again.json()["orderId"] == order.pk
    assert again.json()["statusCode"] == "created" and not responses.calls

    # The sweep (beat's job, run here in-process) sends it; later runs and a late task do nothing.
    assert tasks.retry_queued_orders.apply().get() == {"sent": 1}
    assert tasks.retry_queued_orders.apply().get() == {}
    assert tasks.submit_order.apply(args=[order.pk]).get() == "pending"
    assert len(responses.calls) == 1
    order.refresh_from_db()
    assert (order.status, order.external_order_id) == ("pending", "5150")
    last = api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="outbox-1")
    assert last.status_code == 200 and last.json()["statusCode"] == "pending"


@responses.activate
@pytest.mark.django_db
def test_a_repeat_of_an_order_whose_message_was_lost_queues_its_send_again(
    api, service, merchant, django_capture_on_commit_callbacks
):
    # The row committed, its message lost (a broker restarted without persistence): nothing holds it.
    responses.post(PANEL_URL, json={"order": 6160})
    order, created = orders.place_order(merchant, provider=service.provider, service=service,
                                        data={"link": BODY["link"], "quantity": 100}, idempotency_key="lost-1")
    assert created and order.status == "created"
    body = {**BODY, "providerId": service.provider_id}
    # Tasks run in-process here (eager): the repeat's queued task is the send itself.
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="lost-1")
    assert answer.status_code == 200 and answer.json()["orderId"] == order.pk
    order.refresh_from_db()
    assert (order.status, order.external_order_id) == ("pending", "6160")
    with django_capture_on_commit_callbacks(execute=True) as queued:
        assert api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="lost-1").status_code == 200
    assert not queued  # sent: nothing more to queue
    assert len(responses.calls) == 1
