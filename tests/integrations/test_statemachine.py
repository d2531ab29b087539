"""The core's state machine: allowed transitions, compare-and-set moves, append-only history."""

import threading

import pytest
from django.contrib.admin.sites import site
from django.db import connection
from django.urls import reverse

from integrations.models import AppendOnlyError, ExternalIntegration, StateTransition, WebhookEvent
from integrations.statemachine import StateMachine

E = WebhookEvent.State
MACHINE = StateMachine(
    {
        E.RECEIVED: {E.PROCESSING, E.REJECTED},
        E.PROCESSING: {E.PROCESSED, E.FAILED},
        E.FAILED: {E.PROCESSING},
        E.PROCESSED: set(),
        E.REJECTED: set(),
    },
    field="state",
)


def event(**extra):
    return WebhookEvent.objects.create(kind="smm", code="jap", **extra)


def test_the_table_answers_which_moves_are_allowed():
    assert MACHINE.can_move(E.RECEIVED, E.PROCESSING)
    assert MACHINE.can_move("received", "processing")
    assert not MACHINE.can_move(E.PROCESSED, E.PROCESSING)
    assert not MACHINE.can_move("nonsense", E.PROCESSING)
    assert MACHINE.sources_of(E.PROCESSING) == {"received", "failed"}
    assert MACHINE.sources_of(E.RECEIVED) == set()
    assert MACHINE.final == {"processed", "rejected"}
    assert MACHINE.is_final(E.PROCESSED) and not MACHINE.is_final(E.FAILED)


def test_a_table_naming_a_state_it_does_not_define_is_refused():
    with pytest.raises(ValueError, match="done"):
        StateMachine({"open": {"done"}})


@pytest.mark.django_db
def test_a_move_updates_the_row_and_writes_one_history_row(staff):
    row = event()
    assert MACHINE.move(row, E.PROCESSING, reason="claimed", actor=staff, error="")
    row.refresh_from_db()
    assert row.state == E.PROCESSING
    (history,) = MACHINE.history_of(row)
    assert (history.field, history.from_state, history.to_state) == ("state", "received", "processing")
    assert (history.reason, history.actor, history.object_id) == ("claimed", staff, str(row.pk))
    assert list(StateTransition.objects.of(row)) == [history]


@pytest.mark.django_db
def test_a_finished_row_never_reopens_and_a_refused_move_writes_no_history():
    row = event()
    assert MACHINE.move(row, E.PROCESSING)
    assert MACHINE.move(row, E.PROCESSED)
    assert not MACHINE.move(row, E.PROCESSING)
    assert not MACHINE.move(row, E.FAILED)
    row.refresh_from_db()
    assert row.state == E.PROCESSED
    assert [(h.from_state, h.to_state) for h in MACHINE.history_of(row).order_by("id")] == [
        ("received", "processing"),
        ("processing", "processed"),
    ]


@pytest.mark.django_db
def test_of_two_instances_read_in_the_same_state_only_one_moves():
    row = event()
    first, second = WebhookEvent.objects.get(pk=row.pk), WebhookEvent.objects.get(pk=row.pk)
    assert MACHINE.move(first, E.PROCESSING)
    assert not MACHINE.move(second, E.REJECTED)
    assert second.state == E.RECEIVED  # the loser's instance is left as it was read
    row.refresh_from_db()
    assert row.state == E.PROCESSING
    assert MACHINE.history_of(row).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_moves_from_one_state_only_one_wins():
    row = event()
    barrier = threading.Barrier(2)
    results = {}

    def mover(target):
        try:
            instance = WebhookEvent.objects.get(pk=row.pk)
            barrier.wait(timeout=10)
            results[target] = MACHINE.move(instance, target)
        finally:
            connection.close()

    threads = [threading.Thread(target=mover, args=(target,)) for target in (E.PROCESSING, E.REJECTED)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results.values()) == [False, True]
    (winner,) = [target for target, won in results.items() if won]
    row.refresh_from_db()
    assert row.state == winner
    assert [h.to_state for h in MACHINE.history_of(row)] == [winner]


@pytest.mark.django_db
def test_only_if_adds_conditions_to_the_compare_and_set():
    row = event(attempts=2)
    assert not MACHINE.move(row, E.PROCESSING, only_if={"attempts": 1})
    assert MACHINE.history_of(row).count() == 0
    assert MACHINE.move(row, E.PROCESSING, only_if={"attempts": 2})


@pytest.mark.django_db
def test_expressions_in_the_fields_are_read_back():
    from django.db.models import F

    row = event(attempts=2)
    assert MACHINE.move(row, E.PROCESSING, attempts=F("attempts") + 1)
    assert row.attempts == 3


@pytest.mark.django_db
def test_move_many_moves_only_the_rows_the_table_allows_and_records_each():
    received, failed, processed = event(event_id="a"), event(event_id="b"), event(event_id="c")
    MACHINE.move(failed, E.PROCESSING) and MACHINE.move(failed, E.FAILED)
    MACHINE.move(processed, E.PROCESSING) and MACHINE.move(processed, E.PROCESSED)
    moved = MACHINE.move_many(WebhookEvent.objects.all(), E.PROCESSING, reason="replay")
    assert sorted(moved) == sorted([received.pk, failed.pk])
    states = dict(WebhookEvent.objects.values_list("pk", "state"))
    assert states == {received.pk: "processing", failed.pk: "processing", processed.pk: "processed"}
    last = {row.pk: MACHINE.history_of(row).order_by("-id").first() for row in (received, failed, processed)}
    assert (last[received.pk].from_state, last[received.pk].reason) == ("received", "replay")
    assert last[failed.pk].from_state == "failed"
    assert last[processed.pk].to_state == "processed"  # nothing new for the finished row


@pytest.mark.django_db
def test_history_fits_uuid_primary_keys(make_provider):
    machine = StateMachine({"active": {"inactive"}, "inactive": {"active"}})
    provider = make_provider()
    assert machine.move(provider, "inactive")
    assert ExternalIntegration.objects.get(pk=provider.pk).status == "inactive"
    assert machine.history_of(provider).get().object_id == str(provider.pk)


@pytest.mark.django_db
def test_record_many_writes_many_rows_in_one_insert(django_assert_num_queries):
    rows = [event(event_id=str(i)) for i in range(5)]
    MACHINE.record_many(WebhookEvent, [(row.pk, "received", "processing") for row in rows])  # warms the cache
    with django_assert_num_queries(1):
        MACHINE.record_many(WebhookEvent, [(row.pk, "processing", "processed", "bulk") for row in rows])
    assert StateTransition.objects.filter(reason="bulk").count() == 5


@pytest.mark.django_db
def test_history_cannot_be_updated_or_deleted():
    row = event()
    MACHINE.move(row, E.PROCESSING)
    history = MACHINE.history_of(row).get()
    history.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        history.save()
    with pytest.raises(AppendOnlyError):
        history.delete()
    with pytest.raises(AppendOnlyError):
        StateTransition.objects.filter(pk=history.pk).update(reason="rewritten")
    with pytest.raises(AppendOnlyError):
        StateTransition.objects.filter(pk=history.pk).delete()
    with pytest.raises(AppendOnlyError):
        StateTransition.objects.all().delete()
    assert StateTransition.objects.get(pk=history.pk).reason == ""


@pytest.mark.django_db
def test_the_admin_lists_history_read_only(client, staff):
    row = event()
    MACHINE.move(row, E.PROCESSING, reason="claimed by the test")
    history = MACHINE.history_of(row).get()
    client.force_login(staff)
    listing = client.get(reverse("admin:integrations_statetransition_changelist"))
    assert listing.status_code == 200 and b"claimed by the test" in listing.content
    model_admin = site._registry[StateTransition]
    request = listing.wsgi_request
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, history)
    assert not model_admin.has_delete_permission(request, history)
    assert client.get(reverse("admin:integrations_statetransition_add")).status_code == 403
    delete = client.post(reverse("admin:integrations_statetransition_delete", args=[history.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert StateTransition.objects.filter(pk=history.pk).exists()
