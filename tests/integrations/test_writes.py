"""Exactly-once external writes (integrations.writes), on a scripted domain: claims, backoff of
writes that were certainly not sent, unknown after a lost answer, the stale sweep, resolution."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from integrations import outbound
from integrations.errors import (
    CircuitOpen,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.models import ExternalIntegration, Kind, StateTransition
from integrations.writes import ExternalWrite, Outcome, certainly_not_sent
from smm.models import OrderStatus as S
from smm.models import SMMOrder, SMMProvider, SMMService


class ScriptedWrite(ExternalWrite):
    """SMM orders as the domain, with a provider that answers from a script."""

    model = SMMOrder
    machine = SMMOrder.machine
    queued, submitting, unknown, failed = S.CREATED, S.SUBMITTING, S.UNKNOWN, S.FAILED
    max_attempts = 3
    backoff_seconds = 60

    def __init__(self, *answers):
        self.answers = list(answers)
        self.sent = []

    def send(self, order):
        outbound.call_started()  # as the tracer does when a real call is handed to its transport
        self.sent.append(order.pk)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def sent_state_and_fields(self, order, answer):
        return S.PENDING, {"external_order_id": answer, "submitted_at": timezone.now(), "error": ""}

    def failed_fields(self, order, error):
        return {"completed_at": timezone.now()}

    def resolved_state_and_fields(self, order, reference):
        return self.sent_state_and_fields(order, reference)

    def check_reference(self, order, reference):
        if SMMOrder.objects.filter(external_order_id=reference).exclude(pk=order.pk).exists():
            raise ValidationError("taken")


@pytest.fixture
def order(db, merchant):
    integration = ExternalIntegration.objects.create(
        kind=Kind.SMM, code="panel_v2", name="panel", display_name="Panel", owner=merchant,
        base_url="https://panel.example.test/api/v2", credentials={"api_key": "k"},
    )
    provider = SMMProvider.objects.create(integration=integration)
    service = SMMService.objects.create(provider=provider, service_id="1", name="Likes", rate="1.0",
                                        min_quantity=1, max_quantity=1000)

    def make(**fields):
        return SMMOrder.objects.create(owner=merchant, provider=provider, service=service,
                                       link="https://x.test/p", quantity=10, **fields)

    make.first = make()
    return make


def moves(order):
    return [(h.from_state, h.to_state) for h in SMMOrder.machine.history_of(order).order_by("id")]


def fresh(order):
    return SMMOrder.objects.get(pk=order.pk)


def test_what_certainly_was_not_sent():
    assert certainly_not_sent(CircuitOpen())
    assert certainly_not_sent(ProviderUnavailable(sent=False))
    assert not certainly_not_sent(ProviderUnavailable())
    assert not certainly_not_sent(UnknownOutcome())
    assert not certainly_not_sent(ProviderValidationError(sent=True))


def test_a_sent_write_is_recorded_with_its_history(order):
    write = ScriptedWrite("777")
    assert write.submit(order.first) == Outcome.SENT
    row = fresh(order.first)
    assert (row.status, row.external_order_id) == (S.PENDING, "777")
    assert moves(row) == [("created", "submitting"), ("submitting", "pending")]


def test_a_write_is_sent_once_however_often_it_is_submitted(order):
    write = ScriptedWrite("1", "2")
    assert write.submit(fresh(order.first)) == Outcome.SENT
    assert write.submit(fresh(order.first)) == Outcome.SKIPPED
    assert write.sent == [order.first.pk]


def test_of_two_workers_holding_the_same_queued_row_one_sends(order):
    write = ScriptedWrite("1", "2")
    first, second = fresh(order.first), fresh(order.first)
    assert write.claim(first)
    assert not write.claim(second)
    assert write.submit(second) == Outcome.SKIPPED and write.sent == []


def test_not_sent_goes_back_to_the_queue_with_backoff_and_is_retried_later_once(order):
    write = ScriptedWrite(CircuitOpen("paused"), "4242")
    before = timezone.now()
    assert write.submit(order.first) == Outcome.QUEUED
    row = fresh(order.first)
    assert (row.status, row.attempts) == (S.CREATED, 1)
    assert "paused" in row.error
    # First retry: 60 s, half of it jitter.
    assert before + timedelta(seconds=30) <= row.next_attempt_at <= timezone.now() + timedelta(seconds=60)
    assert moves(row) == [("created", "submitting"), ("submitting", "created")]

    # Not due yet: nothing is sent, and a stale instance cannot claim it early either.
    assert write.retry_due() == {}
    assert write.submit(fresh(order.first)) == Outcome.SKIPPED
    assert write.sent == [row.pk]

    later = row.next_attempt_at + timedelta(seconds=1)
    assert write.retry_due(now=later) == {"sent": 1}
    assert write.retry_due(now=later) == {}
    row = fresh(order.first)
    assert (row.status, row.external_order_id, row.attempts) == (S.PENDING, "4242", 1)
    assert write.sent == [row.pk, row.pk]


def test_a_stale_instance_read_before_a_failed_attempt_cannot_claim(order):
    write = ScriptedWrite(ProviderError("refused to connect", sent=False))
    stale = fresh(order.first)
    assert write.submit(fresh(order.first)) == Outcome.QUEUED
    SMMOrder.objects.filter(pk=order.first.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert not write.claim(stale)  # it read attempts=0; the row has 1 now


def test_backoff_grows_and_is_capped():
    write = ScriptedWrite()
    write.backoff_max_seconds = 300
    for attempts, (low, high) in {1: (30, 60), 2: (60, 120), 3: (120, 240), 6: (150, 300)}.items():
        delays = {write.backoff(attempts).total_seconds() for _ in range(20)}
        assert all(low <= d <= high for d in delays), (attempts, delays)
        assert len(delays) > 1  # jitter
    assert write.backoff(1, ProviderRateLimited(retry_after=500)) == timedelta(seconds=500)


def test_after_the_last_attempt_a_write_that_was_never_sent_fails_with_the_last_error(order):
    write = ScriptedWrite(*[ProviderError(f"refused {i}", sent=False) for i in range(3)])
    for _ in range(3):
        SMMOrder.objects.filter(pk=order.first.pk).update(next_attempt_at=None)
        outcome = write.submit(fresh(order.first))
    assert outcome == Outcome.FAILED
    row = fresh(order.first)
    assert (row.status, row.attempts, row.error) == (S.FAILED, 3, "refused 2")
    assert row.completed_at is not None
    assert moves(row)[-1] == ("submitting", "failed")


def test_a_lost_answer_leaves_the_write_unknown_and_it_is_never_resent(order):
    write = ScriptedWrite(UnknownOutcome("read timeout"))
    assert write.submit(order.first) == Outcome.UNKNOWN
    row = fresh(order.first)
    assert (row.status, row.error, row.attempts) == (S.UNKNOWN, "read timeout", 0)
    assert write.retry_due(now=timezone.now() + timedelta(days=1)) == {}
    assert write.sent == [row.pk]


def test_the_domain_says_what_may_have_been_accepted(order):
    class Cautious(ScriptedWrite):
        def may_have_been_accepted(self, exc):
            return exc.status_code == 502

    assert Cautious(ProviderUnavailable(status_code=502)).submit(order.first) == Outcome.UNKNOWN


def test_a_definite_refusal_fails(order):
    assert ScriptedWrite(ProviderValidationError("bad link")).submit(order.first) == Outcome.FAILED
    row = fresh(order.first)
    assert (row.status, row.error) == (S.FAILED, "bad link")


def test_an_unexpected_error_leaves_the_write_unknown_and_is_raised(order):
    with pytest.raises(ZeroDivisionError):
        ScriptedWrite(ZeroDivisionError("bug")).submit(order.first)
    assert fresh(order.first).status == S.UNKNOWN


class FailsBeforeSending(ScriptedWrite):
    """A fault of ours (the cache, a bug) before any call reached a transport."""

    def send(self, order):
        raise ConnectionError("Error 111 connecting to the cache. Connection refused.")


def test_an_error_before_any_call_left_queues_the_write_again_and_it_is_sent_later_once(order):
    write = FailsBeforeSending()
    assert write.submit(order.first) == Outcome.QUEUED
    row = fresh(order.first)
    assert (row.status, row.attempts) == (S.CREATED, 1)
    assert row.next_attempt_at > timezone.now() and "Connection refused" in row.error
    assert moves(row) == [("created", "submitting"), ("submitting", "created")]
    # Retried once due, through the ordinary path: sent, and only then.
    retry = ScriptedWrite("77")
    assert retry.retry_due() == {}
    assert retry.retry_due(now=row.next_attempt_at + timedelta(seconds=1)) == {"sent": 1}
    assert (fresh(row).status, fresh(row).external_order_id, retry.sent) == (S.PENDING, "77", [row.pk])


def test_an_error_before_sending_fails_the_write_after_its_last_attempt(order):
    write = FailsBeforeSending()
    row = order.first
    SMMOrder.objects.filter(pk=row.pk).update(attempts=write.max_attempts - 1)
    assert write.submit(fresh(row)) == Outcome.FAILED
    assert fresh(row).status == S.FAILED


def test_an_error_inside_a_real_traced_call_is_unknown(order):
    """The tracer marks the call as handed to its transport: a fault from there on may have sent it."""
    from integrations.tracing import Tracer

    class BrokenTransport(ScriptedWrite):
        def send(self, order):
            tracer = Tracer(order.provider.integration, transport="http")
            with tracer.call("add", endpoint="https://x.test", method="POST"):
                raise ZeroDivisionError("the library failed after writing the request")

    with pytest.raises(ZeroDivisionError):
        BrokenTransport().submit(order.first)
    assert fresh(order.first).status == S.UNKNOWN


def test_the_sweep_moves_stale_submissions_to_unknown_with_history(order):
    stale, recent, queued = order.first, order(), order()
    write = ScriptedWrite()
    assert write.claim(stale) and write.claim(recent)
    SMMOrder.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(minutes=11))
    assert write.sweep_stale() == [stale.pk]
    assert [fresh(o).status for o in (stale, recent, queued)] == [S.UNKNOWN, S.SUBMITTING, S.CREATED]
    history = SMMOrder.machine.history_of(stale).order_by("-id").first()
    assert (history.from_state, history.to_state) == ("submitting", "unknown")
    assert history.reason and history.reason == fresh(stale).error
    assert write.sweep_stale() == []


def test_an_answer_arriving_after_the_sweep_is_still_recorded(order):
    class Slow(ScriptedWrite):
        def send(self, order):
            SMMOrder.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(hours=1))
            self.sweep_stale()
            return super().send(order)

    assert Slow("99").submit(order.first) == Outcome.SENT
    row = fresh(order.first)
    assert (row.status, row.external_order_id) == (S.PENDING, "99")
    assert moves(row) == [("created", "submitting"), ("submitting", "unknown"), ("unknown", "pending")]


def test_operator_resolution_goes_through_the_machine_with_the_operator_as_actor(order, staff):
    write = ScriptedWrite(UnknownOutcome(), UnknownOutcome())
    first, second = order.first, order()
    write.submit(first), write.submit(second)
    assert write.resolve_sent(fresh(first), " 555 ", actor=staff)
    with pytest.raises(ValidationError):
        write.resolve_sent(fresh(second), "555", actor=staff)  # the reference is another row's
    with pytest.raises(ValidationError):
        write.resolve_sent(fresh(second), "  ", actor=staff)
    assert write.resolve_failed(fresh(second), actor=staff)
    with pytest.raises(ValidationError):
        write.resolve_failed(fresh(second), actor=staff)  # only unknown rows
    assert (fresh(first).status, fresh(first).external_order_id) == (S.PENDING, "555")
    assert fresh(second).status == S.FAILED
    resolved = StateTransition.objects.filter(actor=staff).order_by("id")
    assert [(h.object_id, h.from_state, h.to_state) for h in resolved] == [
        (str(first.pk), "unknown", "pending"),
        (str(second.pk), "unknown", "failed"),
    ]
