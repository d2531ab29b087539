"""Refunds: bounded by what was paid (racing too), sent once, and the payment's state following."""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from integrations.errors import ProviderUnavailable, UnknownOutcome
from payments import services
from payments.interface import Notification, ProviderStatus, RefundResult, State
from payments.models import Payment, Refund

from .conftest import FakeGateway

pytestmark = pytest.mark.django_db


def refunds_sent():
    return [op for op, _ in FakeGateway.calls if op == "refund"]


def test_partial_then_full_refund(paid_payment):
    first = services.refund(paid_payment, "30.000", reason="damaged", idempotency_key="r1")
    paid_payment.refresh_from_db()
    assert (first.status, paid_payment.status, paid_payment.refunded_amount) == (
        "refunded", "partially_refunded", Decimal("30.000"))
    assert first.provider_reference == f"R-{first.pk}"
    services.refund(paid_payment, Decimal("70"))
    paid_payment.refresh_from_db()
    assert (paid_payment.status, paid_payment.refunded_amount) == ("refunded", Decimal("100.000"))
    assert len(refunds_sent()) == 2


def test_never_more_than_paid_minus_refunded(paid_payment):
    services.refund(paid_payment, "60")
    with pytest.raises(ValidationError) as err:
        services.refund(paid_payment, "40.001")
    assert "40.000" in err.value.message_dict["amount"][0]
    assert len(refunds_sent()) == 1
    services.refund(paid_payment, "40")


def test_double_refund_with_one_key_is_sent_once(paid_payment):
    a = services.refund(paid_payment, "10", idempotency_key="same")
    b = services.refund(paid_payment, "10.000", idempotency_key="same")
    assert a.pk == b.pk and len(refunds_sent()) == 1
    with pytest.raises(services.IdempotencyConflict):
        services.refund(paid_payment, "11", idempotency_key="same")


def test_only_paid_payments_refund(card_payment):
    with pytest.raises(ValidationError) as err:
        services.refund(card_payment, "1")
    assert "payment" in err.value.message_dict
    for bad in ("0", "-1", "1.0001", "x"):
        with pytest.raises(ValidationError):
            services.refund(card_payment, bad)


def test_a_lost_answer_leaves_the_refund_unknown_and_holding_its_amount(paid_payment):
    FakeGateway.script["refund"] = UnknownOutcome("timeout", sent=True)
    lost = services.refund(paid_payment, "80")
    assert lost.status == "unknown"
    paid_payment.refresh_from_db()
    assert (paid_payment.status, paid_payment.refunded_amount) == ("paid", 0)
    with pytest.raises(ValidationError):  # the unknown refund still holds its 80
        services.refund(paid_payment, "21")
    assert services.retry_refunds() == {}  # unknown is never sent again
    assert len(refunds_sent()) == 1
    services.refund_submission.resolve_sent(lost, "BANK-77")
    paid_payment.refresh_from_db()
    assert (paid_payment.status, paid_payment.refunded_amount) == ("partially_refunded", Decimal("80.000"))


def test_a_refund_that_certainly_did_not_leave_is_queued_and_retried(paid_payment):
    FakeGateway.script["refund"] = ProviderUnavailable("refused", sent=False)
    queued = services.refund(paid_payment, "5")
    assert queued.status == "requested" and queued.attempts == 1
    FakeGateway.script.pop("refund")
    Refund.objects.filter(pk=queued.pk).update(next_attempt_at=None)
    assert services.retry_refunds() == {"sent": 1}
    paid_payment.refresh_from_db()
    assert paid_payment.refunded_amount == Decimal("5.000")


def test_a_refused_refund_frees_its_amount(paid_payment):
    FakeGateway.script["refund"] = RefundResult(state="failed", message="too late")
    refused = services.refund(paid_payment, "100")
    assert refused.status == "failed" and refused.error == "too late"
    FakeGateway.script.pop("refund")
    assert services.refund(paid_payment, "100").status == "refunded"


def test_a_pending_refund_completes_by_notification(paid_payment, fake_gateway):
    FakeGateway.script["refund"] = RefundResult(state="pending", provider_reference="RF-9")
    pending = services.refund(paid_payment, "25")
    assert pending.status == "pending"
    status = ProviderStatus(state=State.REFUNDED, amount=Decimal("25.000"), currency="LYD", provider_reference="RF-9")
    services.apply_notification(fake_gateway, Notification(paid_payment.reference, "refund", status))
    pending.refresh_from_db()
    paid_payment.refresh_from_db()
    assert pending.status == "refunded"
    assert (paid_payment.status, paid_payment.refunded_amount) == ("partially_refunded", Decimal("25.000"))
    services.apply_notification(fake_gateway, Notification(paid_payment.reference, "refund", status))  # replay
    paid_payment.refresh_from_db()
    assert paid_payment.refunded_amount == Decimal("25.000")


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's in-memory test database is one connection: "
                    "threads cannot race on it")
@pytest.mark.django_db(transaction=True)
def test_racing_refunds_never_exceed_the_payment(merchant, fake_gateway):
    from .conftest import paid_status

    payment, _ = services.create_payment(merchant, amount="100", currency="LYD", method="card_credit")
    services.apply_status(payment, paid_status(payment))
    barrier = threading.Barrier(6)
    outcomes = []

    def ask():
        from django.db import connection as conn

        try:
            copy = Payment.objects.get(pk=payment.pk)
            barrier.wait()
            try:
                outcomes.append(services.refund(copy, "30").status)
            except ValidationError:
                outcomes.append("refused")
        finally:
            conn.close()

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refunded"] * 3 + ["refused"] * 3
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("90.000") and payment.status == "partially_refunded"
    assert len(refunds_sent()) == 3
