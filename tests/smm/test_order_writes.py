"""SMM's `add` through the core's exactly-once writes: an add that never left goes back to the queue
and the retry task sends it later, once; a lost answer leaves the order unknown; a worker that died
mid-send is swept to unknown; refills move along their own table."""

from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.utils import timezone

from smm import orders, tasks
from smm.models import SMMOrder, SMMRefill, SMMService

from .conftest import PANEL_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(make_provider, merchant):
    provider = make_provider()
    provider.integration.configuration = {"retries": 0, "backoff": 0}
    provider.integration.save()
    service = SMMService.objects.create(provider=provider, service_id="1", name="IG", type="Default", rate="1",
                                        min_quantity=10, max_quantity=1000, refill=True)
    return SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly",
                                   quantity=100)


def adds():
    return [c for c in responses.calls if parse_qs(c.request.body).get("action") == ["add"]]


def moves(order):
    return [(h.from_state, h.to_state) for h in SMMOrder.machine.history_of(order).order_by("id")]


@responses.activate
def test_an_add_that_never_left_is_queued_with_backoff_and_sent_once_later_by_the_task(order):
    responses.add(responses.POST, PANEL_URL, body=requests.ConnectTimeout("connect timed out"))
    orders.submit_order(order)
    order.refresh_from_db()
    assert (order.status, order.attempts) == ("created", 1)
    assert order.next_attempt_at > timezone.now()
    assert tasks.retry_queued_orders.apply().get() == {}  # not due yet
    assert len(adds()) == 1

    responses.reset()
    responses.add(responses.POST, PANEL_URL, json={"order": 4242})
    SMMOrder.objects.filter(pk=order.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.retry_queued_orders.apply().get() == {"sent": 1}
    assert tasks.retry_queued_orders.apply().get() == {}
    assert tasks.submit_order.apply(args=[order.pk]).get() == "pending"  # a late duplicate task: no-op
    assert len(adds()) == 1
    order.refresh_from_db()
    assert (order.status, order.external_order_id) == ("pending", "4242")
    assert moves(order) == [("created", "submitting"), ("submitting", "created"), ("created", "submitting"),
                            ("submitting", "pending")]


@responses.activate
def test_a_lost_answer_leaves_the_order_unknown_and_it_is_never_resent(order):
    responses.add(responses.POST, PANEL_URL, body=requests.ReadTimeout("read timed out"))
    assert tasks.submit_order.apply(args=[order.pk]).get() == "unknown"
    SMMOrder.objects.filter(pk=order.pk).update(next_attempt_at=None)
    assert tasks.retry_queued_orders.apply().get() == {}
    assert tasks.submit_order.apply(args=[order.pk]).get() == "unknown"
    assert len(adds()) == 1
    assert moves(order) == [("created", "submitting"), ("submitting", "unknown")]


@responses.activate
def test_a_panel_refusal_fails_the_order(order):
    responses.add(responses.POST, PANEL_URL, json={"error": "Not enough funds on balance"})
    assert tasks.submit_order.apply(args=[order.pk]).get() == "failed"
    order.refresh_from_db()
    assert order.error == "Not enough funds on balance" and order.completed_at is not None


@responses.activate
def test_a_worker_that_died_mid_send_leaves_nothing_to_send_twice_and_the_sweep_makes_it_unknown(order):
    responses.add(responses.POST, PANEL_URL, json={"order": 1})
    assert orders.submission.claim(order)  # the worker claimed it, then died before the answer
    assert tasks.submit_order.apply(args=[order.pk]).get() == "submitting"  # the task delivered again
    assert tasks.retry_queued_orders.apply().get() == {}
    assert adds() == []
    assert orders.mark_stale_submissions() == 0  # not stale yet
    SMMOrder.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=11))
    assert tasks.mark_stale_submissions.apply().get() == 1  # the beat job of the sweep
    order.refresh_from_db()
    assert order.status == "unknown" and order.error
    assert moves(order) == [("created", "submitting"), ("submitting", "unknown")]


@responses.activate
def test_refills_move_along_their_table_with_history(order):
    SMMOrder.objects.filter(pk=order.pk).update(status="completed", external_order_id="77")
    order.refresh_from_db()
    responses.add(responses.POST, PANEL_URL, json={"refill": 5})
    refill = orders.refill_order(order)
    assert (refill.status, refill.external_refill_id) == ("pending", "5")
    responses.reset()
    responses.add(responses.POST, PANEL_URL, json=[{"refill": 5, "status": "Completed"}])
    assert orders.poll_refills(order.provider) == 1
    refill.refresh_from_db()
    assert refill.status == "completed" and refill.last_checked_at is not None
    history = [(h.from_state, h.to_state) for h in SMMRefill.machine.history_of(refill).order_by("id")]
    assert history == [("requested", "pending"), ("pending", "completed")]
    assert not SMMRefill.machine.move(refill, "pending")  # final: never reopens


@responses.activate
def test_a_refill_finished_meanwhile_is_not_reopened_by_the_poll(order, monkeypatch):
    SMMOrder.objects.filter(pk=order.pk).update(status="completed", external_order_id="77")
    refill = SMMRefill.objects.create(order=order, status="in_progress", external_refill_id="5")
    responses.add(responses.POST, PANEL_URL, json=[{"refill": 5, "status": "Rejected"}])
    adapter_class = type(order.provider.adapter)
    refill_statuses = adapter_class.refill_statuses

    def finished_meanwhile(self, ids):
        answers = refill_statuses(self, ids)
        assert SMMRefill.machine.move(SMMRefill.objects.get(pk=refill.pk), "completed")
        return answers

    monkeypatch.setattr(adapter_class, "refill_statuses", finished_meanwhile)
    orders.poll_refills(order.provider)
    refill.refresh_from_db()
    assert refill.status == "completed"
    assert [h.to_state for h in SMMRefill.machine.history_of(refill)] == ["completed"]
