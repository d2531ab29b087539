"""create_payment, available_methods and the outcomes applied to a payment."""

import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from integrations.errors import ProviderUnavailable, ProviderValidationError, UnknownOutcome
from integrations.models import ExternalIntegration, Health, Kind
from payments import services
from payments.interface import Checkout, Method, NextStep, Notification, ProviderStatus, State
from payments.models import Payment, PaymentMethod, ReconciliationMismatch

from .conftest import FakeGateway, paid_status

pytestmark = pytest.mark.django_db


def create(owner, **overrides):
    fields = {"order_reference": "O-1", "amount": "100.000", "currency": "LYD", "method": Method.CARD_CREDIT}
    fields.update(overrides)
    return services.create_payment(owner, **fields)


# --- limits -------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,currency,amount,ok", [
    (Method.CARD_CREDIT, "LYD", "1.000", True), (Method.CARD_CREDIT, "LYD", "0.999", False),
    (Method.CARD_CREDIT, "LYD", "50000.000", True), (Method.CARD_CREDIT, "LYD", "50000.001", False),
    (Method.CARD_CREDIT, "USD", "1.00", True), (Method.CARD_CREDIT, "USD", "0.99", False),
    (Method.CARD_CREDIT, "USD", "50000.00", True), (Method.CARD_CREDIT, "USD", "50000.01", False),
    (Method.CARD_DEBIT, "LYD", "0.500", True), (Method.CARD_DEBIT, "LYD", "0.499", False),
    (Method.CARD_DEBIT, "LYD", "25000.000", True), (Method.CARD_DEBIT, "LYD", "25000.001", False),
])
def test_limits_at_and_just_past_each_bound(merchant, fake_gateway, method, currency, amount, ok):
    if ok:
        payment, created = create(merchant, method=method, currency=currency, amount=amount)
        assert created and payment.amount == Decimal(amount) and payment.status == "pending"
        return
    with pytest.raises(ValidationError) as err:
        create(merchant, method=method, currency=currency, amount=amount)
    message = err.value.message_dict["amount"][0]
    limit = PaymentMethod.objects.get(code=method)
    expected = limit.min_amount if Decimal(amount) < limit.min_amount else limit.max_amount
    assert str(expected) in message and currency in message
    assert not Payment.objects.exists()


def test_debit_cards_take_dinars_only_and_usd_has_two_decimals(merchant, fake_gateway):
    with pytest.raises(ValidationError) as err:
        create(merchant, method=Method.CARD_DEBIT, currency="USD", amount="10")
    assert list(err.value.message_dict) == ["currency"]
    with pytest.raises(ValidationError) as err:
        create(merchant, currency="USD", amount="10.005")
    assert "2" in err.value.message_dict["amount"][0]
    with pytest.raises(ValidationError) as err:
        create(merchant, amount="10.0001")
    assert "3" in err.value.message_dict["amount"][0]


@pytest.mark.parametrize("amount", ["abc", "", "NaN", "Infinity", "-5", "0"])
def test_bad_amounts_are_field_errors(merchant, fake_gateway, amount):
    with pytest.raises(ValidationError) as err:
        create(merchant, amount=amount)
    assert "amount" in err.value.message_dict


def test_transfer_needs_one_of_its_four_banks(merchant):
    with pytest.raises(ValidationError) as err:
        create(merchant, method=Method.BANK_TRANSFER, bank_code="")
    assert "NBC" in err.value.message_dict["bank_code"][0]
    with pytest.raises(ValidationError) as err:
        create(merchant, method=Method.BANK_TRANSFER, bank_code="BCD")
    assert "BCD" not in err.value.message_dict["bank_code"][0]
    payment, _ = create(merchant, method=Method.BANK_TRANSFER, bank_code="wah")
    assert payment.bank_code == "WAH" and payment.integration is None


def test_wallets_are_off_and_need_a_phone(merchant):
    with pytest.raises(ValidationError) as err:
        create(merchant, method=Method.MOBICASH)
    assert {"method", "payer_phone"} <= set(err.value.message_dict)
    with pytest.raises(ValidationError) as err:
        create(merchant, method=Method.COD, payer_phone="0912345678")
    assert "payer_phone" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        create(merchant, method="bitcoin")
    assert "method" in err.value.message_dict


# --- idempotency --------------------------------------------------------------------------------
def test_same_key_same_body_returns_the_first_payment_and_begins_once(merchant, fake_gateway):
    first, created = create(merchant, idempotency_key="k1")
    again, created_again = create(merchant, idempotency_key="k1", amount="100")  # the same amount, written otherwise
    assert created and not created_again and again.pk == first.pk
    assert [op for op, _ in FakeGateway.calls] == ["begin"]
    with pytest.raises(services.IdempotencyConflict):
        create(merchant, idempotency_key="k1", amount="101")
    other, created_other = create(merchant, idempotency_key="k2")
    assert created_other and other.pk != first.pk


# --- the provider row and the fallback -----------------------------------------------------------
def test_the_merchants_own_row_first_then_the_platforms(merchant, other_merchant, fake_gateway):
    own = ExternalIntegration.objects.create(kind=Kind.PAYMENT, code="fakepay", name="mine", owner=merchant,
                                             display_name="Mine", base_url="https://pay.example.test/")
    assert create(merchant)[0].integration_id == own.pk
    assert create(other_merchant)[0].integration_id == fake_gateway.pk


def test_unhealthy_gateway_offers_cash_and_transfer(merchant, fake_gateway):
    assert {m.code for m in services.available_methods(merchant)} == {
        Method.CARD_CREDIT, Method.CARD_DEBIT, Method.BANK_TRANSFER, Method.COD}
    assert {m.code for m in services.available_methods(merchant, currency="USD")} == {Method.CARD_CREDIT}
    ExternalIntegration.objects.filter(pk=fake_gateway.pk).update(health_status=Health.UNHEALTHY)
    PaymentMethod.objects.filter(code__in=[Method.CARD_CREDIT, Method.CARD_DEBIT]).update(adapter="moamalat")
    ExternalIntegration.objects.filter(pk=fake_gateway.pk).update(code="moamalat")
    offered = services.available_methods(merchant)
    assert [(m.code, m.fallback_for) for m in offered] == [
        (Method.BANK_TRANSFER, "moamalat"), (Method.COD, "moamalat")]
    with pytest.raises(ValidationError) as err:
        create(merchant)
    assert "cash_on_delivery" in err.value.message_dict["method"][0]


# --- begin --------------------------------------------------------------------------------------
def test_begin_stores_the_checkout(merchant, fake_gateway):
    FakeGateway.script["begin"] = Checkout(next_step=NextStep.OTP, provider_reference="S-9", data={"a": "b"},
                                           instructions="enter the code")
    payment, _ = create(merchant)
    payment.refresh_from_db()
    assert (payment.status, payment.next_step, payment.provider_reference, payment.provider_data,
            payment.instructions) == ("pending", "otp", "S-9", {"a": "b"}, "enter the code")
    assert payment.expires_at is not None
    assert [(h.from_state, h.to_state) for h in Payment.machine.history_of(payment)] == [("initiated", "pending")]


@pytest.mark.parametrize("error,state", [
    (UnknownOutcome("timeout", sent=True), "unknown"),
    (ProviderUnavailable("502", sent=None), "unknown"),
    (ProviderUnavailable("refused", sent=False), "failed"),
    (ProviderValidationError("bad amount", sent=True), "failed"),
])
def test_a_begin_that_may_have_reached_the_provider_is_unknown(merchant, fake_gateway, error, state):
    FakeGateway.script["begin"] = error
    payment, _ = create(merchant, idempotency_key="k")
    payment.refresh_from_db()
    assert payment.status == state and payment.error
    again, _ = create(merchant, idempotency_key="k")
    assert again.pk == payment.pk and len(FakeGateway.calls) == 1  # never begun a second time


# --- outcomes -----------------------------------------------------------------------------------
def note(payment, state, **extra):
    status = ProviderStatus(state=state, amount=extra.pop("amount", payment.amount),
                            currency=extra.pop("currency", payment.currency), **extra)
    return Notification(merchant_reference=payment.reference, kind="sale", status=status)


def test_notification_moves_a_pending_payment_to_paid(card_payment, fake_gateway):
    services.apply_notification(fake_gateway, note(card_payment, State.PAID, provider_reference="SYS-1",
                                                   network_reference="RRN-1", details={"card": "4111XXXX1111"}))
    card_payment.refresh_from_db()
    assert card_payment.status == "paid" and card_payment.paid_at
    assert (card_payment.provider_reference, card_payment.network_reference) == ("SYS-1", "RRN-1")
    assert card_payment.provider_data["card"] == "4111XXXX1111"


def test_late_pending_after_paid_does_nothing(paid_payment, fake_gateway):
    services.apply_notification(fake_gateway, note(paid_payment, State.PENDING))
    services.apply_notification(fake_gateway, note(paid_payment, State.PAID))  # a replay
    paid_payment.refresh_from_db()
    assert paid_payment.status == "paid"
    assert Payment.machine.history_of(paid_payment).count() == 2  # initiated->pending->paid
    assert not ReconciliationMismatch.objects.exists()


@pytest.mark.parametrize("field,value", [("amount", Decimal("99.000")), ("currency", "USD")])
def test_amount_or_currency_mismatch_is_recorded_not_applied(card_payment, fake_gateway, field, value):
    services.apply_notification(fake_gateway, note(card_payment, State.PAID, **{field: value}))
    card_payment.refresh_from_db()
    assert card_payment.status == "pending"
    mismatch = ReconciliationMismatch.objects.get()
    assert (mismatch.kind, mismatch.source, mismatch.theirs) == (field, "notification", str(value))
    services.apply_notification(fake_gateway, note(card_payment, State.PAID, **{field: value}))
    assert ReconciliationMismatch.objects.count() == 1  # repeated, not piled up


def test_paid_after_expired_is_a_mismatch(card_payment, fake_gateway):
    card_payment.transition("expired")
    services.apply_notification(fake_gateway, note(card_payment, State.PAID))
    card_payment.refresh_from_db()
    assert card_payment.status == "expired"
    assert ReconciliationMismatch.objects.get().kind == "status"


def test_a_notification_from_another_row_is_ignored(card_payment, fake_gateway):
    other = ExternalIntegration.objects.create(kind=Kind.PAYMENT, code="fakepay", name="other",
                                               display_name="Other", base_url="https://pay.example.test/")
    assert services.apply_notification(other, note(card_payment, State.PAID)) is None
    card_payment.refresh_from_db()
    assert card_payment.status == "pending"


def test_a_provider_cannot_settle_a_cash_payment(merchant, fake_gateway):
    cod, _ = create(merchant, method=Method.COD)
    assert services.apply_notification(fake_gateway, note(cod, State.PAID)) is None
    cod.refresh_from_db()
    assert cod.status == "pending"


def test_two_racing_notifications_move_the_payment_once(card_payment, fake_gateway):
    """Two copies of the payment read pending; paid and failed race: exactly one wins, and the loser,
    judged again, is recorded as a contradiction rather than applied."""
    a, b = Payment.objects.get(pk=card_payment.pk), Payment.objects.get(pk=card_payment.pk)
    assert services.apply_status(a, paid_status(a))
    assert not services.apply_status(b, ProviderStatus(state=State.FAILED, message="declined"))
    card_payment.refresh_from_db()
    assert card_payment.status == "paid"
    assert [h.to_state for h in Payment.machine.history_of(card_payment).order_by("pk")] == ["pending", "paid"]
    assert ReconciliationMismatch.objects.get().theirs == "failed"


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's in-memory test database is one connection: "
                    "threads cannot race on it")
@pytest.mark.django_db(transaction=True)
def test_racing_notifications_in_threads_move_it_once(merchant, fake_gateway):
    payment, _ = create(merchant)
    barrier = threading.Barrier(4)
    results = []

    def deliver():
        from django.db import connection as conn

        try:
            copy = Payment.objects.get(pk=payment.pk)
            barrier.wait()
            results.append(services.apply_status(copy, paid_status(copy)))
        finally:
            conn.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert [h.to_state for h in Payment.machine.history_of(payment).order_by("pk")] == ["pending", "paid"]


def test_confirm_wallet(card_payment, fake_gateway):
    with pytest.raises(ValidationError):
        services.confirm_wallet(card_payment, "")
    services.confirm_wallet(card_payment, "123456")
    card_payment.refresh_from_db()
    assert card_payment.status == "paid"
    with pytest.raises(ValidationError):
        services.confirm_wallet(card_payment, "123456")


def test_confirm_wallet_lost_answer_is_unknown(card_payment, fake_gateway):
    FakeGateway.script["confirm"] = UnknownOutcome("timeout", sent=True)
    with pytest.raises(UnknownOutcome):
        services.confirm_wallet(card_payment, "123456")
    card_payment.refresh_from_db()
    assert card_payment.status == "unknown"


def test_refresh_status_asks_the_provider(card_payment, fake_gateway):
    assert not services.refresh_status(card_payment)
    FakeGateway.script["status"] = paid_status
    assert services.refresh_status(card_payment)
    card_payment.refresh_from_db()
    assert card_payment.status == "paid" and card_payment.last_checked_at
