"""The poll's bulk writes obey SMMOrder's state machine: a row finished by someone else between the
poll's read and its write is left alone, a status move leaves a history row, and every checked order
gets its check time, changed or not."""

import json
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses

from smm import polling
from smm.models import SMMOrder, SMMService
from smm.polling import poll_orders

from .conftest import PANEL_URL

pytestmark = pytest.mark.django_db

STORED = {"charge": "0.09", "start_count": "5", "remains": "40", "currency": "USD"}


@pytest.fixture
def open_orders(make_provider, merchant):
    """A provider (no retries) with `count` pending orders, panel ids 1000, 1001, …, whose stored
    fields are what the panel answers for a pending order (STORED)."""

    def make(count):
        provider = make_provider()
        provider.integration.configuration = {"retries": 0, "backoff": 0}
        provider.integration.save()
        service = SMMService.objects.create(provider=provider, service_id="1", name="Followers", rate="0.9",
                                            min_quantity=10, max_quantity=10_000)
        SMMOrder.objects.bulk_create(
            [SMMOrder(owner=merchant, provider=provider, service=service, link="https://x.ly", quantity=100,
                      status="pending", external_order_id=str(1000 + n), charge=Decimal("0.09"), start_count=5,
                      remains=40, currency="USD") for n in range(count)]
        )
        return provider

    return make


def panel_answering(statuses):
    """A `status` callback: each id gets STORED and the status `statuses[id]` (default Pending)."""

    def callback(request):
        ids = parse_qs(request.body)["orders"][0].split(",")
        return 200, {}, json.dumps({i: {**STORED, "status": statuses.get(i, "Pending")} for i in ids})

    return callback


def history(external_id):
    order = SMMOrder.objects.get(external_order_id=external_id)
    return [(h.from_state, h.to_state) for h in SMMOrder.machine.history_of(order).order_by("id")]


@responses.activate
def test_an_unchanged_orders_check_time_is_stamped(open_orders):
    provider = open_orders(150)  # two calls, two batches: each stamped with its own check time
    responses.add_callback(responses.POST, PANEL_URL, callback=panel_answering({"1149": "In progress"}))
    before = {o.pk: o.updated_at for o in SMMOrder.objects.all()}
    result = poll_orders(provider)
    assert result["checked"] == 150 and result["changed"] == 1
    unchanged = SMMOrder.objects.exclude(external_order_id="1149")
    assert unchanged.count() == 149
    assert not unchanged.filter(last_checked_at__isnull=True).exists()
    assert all(o.updated_at > before[o.pk] for o in unchanged)
    assert unchanged.filter(status="pending", remains=40).count() == 149
    assert len(set(unchanged.values_list("last_checked_at", flat=True))) == 2  # one per batch
    moved = SMMOrder.objects.get(external_order_id="1149")
    assert moved.status == "in_progress" and moved.last_checked_at is not None


@responses.activate
def test_a_row_finished_meanwhile_is_not_overwritten_by_the_poll(open_orders, monkeypatch):
    provider = open_orders(3)
    # The panel says 1000 is in progress (a move), 1001 has fewer remains (a change of fields), and
    # 1002 is as stored (nothing to write but the check time).
    answers = {"1000": "In progress", "1001": "Pending", "1002": "Pending"}

    def callback(request):
        ids = parse_qs(request.body)["orders"][0].split(",")
        body = {i: {**STORED, "status": answers[i]} for i in ids}
        body["1001"]["remains"] = "10"
        return 200, {}, json.dumps(body)

    responses.add_callback(responses.POST, PANEL_URL, callback=callback)
    apply_answers = polling._apply_answers

    def someone_finishes_them_meanwhile(chunk, answers, now, stats):
        apply_answers(chunk, answers, now, stats)
        # After the poll read the orders as pending, before it writes: an operator, a refresh, another poll.
        for external_id in ("1000", "1001", "1002"):
            order = SMMOrder.objects.get(external_order_id=external_id)
            assert order.transition("completed", remains=0, reason="finished elsewhere")

    monkeypatch.setattr(polling, "_apply_answers", someone_finishes_them_meanwhile)
    poll_orders(provider)
    for external_id in ("1000", "1001", "1002"):
        order = SMMOrder.objects.get(external_order_id=external_id)
        assert (order.status, order.remains, order.last_checked_at) == ("completed", 0, None), external_id
        assert history(external_id) == [("pending", "completed")]  # nothing from the poll


@responses.activate
def test_a_row_moved_meanwhile_to_another_open_status_is_not_written_from_the_stale_read(open_orders, monkeypatch):
    provider = open_orders(1)
    responses.add_callback(responses.POST, PANEL_URL, callback=panel_answering({"1000": "In progress"}))
    apply_answers = polling._apply_answers

    def refreshed_meanwhile(chunk, answers, now, stats):
        apply_answers(chunk, answers, now, stats)
        assert SMMOrder.objects.get().transition("processing")

    monkeypatch.setattr(polling, "_apply_answers", refreshed_meanwhile)
    poll_orders(provider)
    order = SMMOrder.objects.get()
    assert order.status == "processing"  # the next poll asks again, from what the row holds then
    assert history("1000") == [("pending", "processing")]


@responses.activate
def test_status_moves_get_history_rows_and_unchanged_orders_none(open_orders):
    provider = open_orders(4)
    responses.add_callback(responses.POST, PANEL_URL,
                           callback=panel_answering({"1000": "Completed", "1001": "In progress"}))
    poll_orders(provider)
    assert history("1000") == [("pending", "completed")]
    assert history("1001") == [("pending", "in_progress")]
    assert history("1002") == history("1003") == []
    assert SMMOrder.objects.get(external_order_id="1000").completed_at is not None


@responses.activate
def test_a_finished_order_never_reopens(open_orders):
    provider = open_orders(1)
    responses.add_callback(responses.POST, PANEL_URL, callback=panel_answering({"1000": "Completed"}))
    poll_orders(provider)
    order = SMMOrder.objects.get()
    assert order.status == "completed"
    # A late answer saying pending: the poll no longer asks about it, and a direct move is refused.
    responses.reset()
    responses.add_callback(responses.POST, PANEL_URL, callback=panel_answering({"1000": "Pending"}))
    poll_orders(provider)
    assert not order.transition("pending")
    assert not order.transition("in_progress")
    order.refresh_from_db()
    assert order.status == "completed"
    assert history("1000") == [("pending", "completed")]
