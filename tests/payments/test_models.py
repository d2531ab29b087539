"""Payments' reference data, migrations and state tables."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from payments.interface import Method
from payments.models import Bank, Payment, PaymentMethod, Refund, new_reference, reference_validator
from payments.reference import BANKS, METHODS, install

pytestmark = pytest.mark.django_db


def test_migration_installs_the_seeds_banks_and_methods():
    assert set(Bank.objects.values_list("code", flat=True)) == {"NBC", "JUM", "SAH", "WAH", "BCD"}
    bcd = Bank.objects.get(code="BCD")
    assert (bcd.type, bcd.cards, bcd.branches) == ("development", ["mada", "visa"], ["طرابلس", "بنغازي"])
    assert set(PaymentMethod.objects.values_list("code", flat=True)) == {
        Method.CARD_CREDIT, Method.CARD_DEBIT, Method.BANK_TRANSFER, Method.COD,
        Method.MOBICASH, Method.SADAD, Method.ONEPAY}
    credit = PaymentMethod.objects.get(code=Method.CARD_CREDIT)
    assert (credit.min_amount, credit.max_amount, credit.currencies) == (
        Decimal("1.000"), Decimal("50000.000"), ["LYD", "USD"])
    debit = PaymentMethod.objects.get(code=Method.CARD_DEBIT)
    assert (debit.min_amount, debit.max_amount, debit.currencies, debit.networks) == (
        Decimal("0.500"), Decimal("25000.000"), ["LYD"], ["mada"])
    transfer = PaymentMethod.objects.get(code=Method.BANK_TRANSFER)
    assert sorted(transfer.banks.values_list("code", flat=True)) == ["JUM", "NBC", "SAH", "WAH"]
    wallets = PaymentMethod.objects.filter(code__in=[Method.MOBICASH, Method.SADAD, Method.ONEPAY])
    assert {(w.enabled, w.planned) for w in wallets} == {(False, True)}


def test_install_again_keeps_operators_edits():
    PaymentMethod.objects.filter(code=Method.CARD_DEBIT).update(max_amount=Decimal("10000.000"), enabled=False)
    Bank.objects.filter(code="SAH").update(active=False)
    PaymentMethod.objects.get(code=Method.BANK_TRANSFER).banks.remove(Bank.objects.get(code="WAH"))
    assert install(Bank, PaymentMethod) == 0
    debit = PaymentMethod.objects.get(code=Method.CARD_DEBIT)
    assert (debit.max_amount, debit.enabled) == (Decimal("10000.000"), False)
    assert not Bank.objects.get(code="SAH").active
    assert "WAH" not in PaymentMethod.objects.get(code=Method.BANK_TRANSFER).banks.values_list("code", flat=True)
    Bank.objects.filter(code="BCD").delete()
    assert install(Bank, PaymentMethod) == 1
    assert len(BANKS) == 5 and len(METHODS) == 7


def test_references_fit_the_providers_field():
    refs = {new_reference() for _ in range(200)}
    assert len(refs) == 200
    for ref in refs:
        reference_validator(ref)
        assert len(ref) <= 30


def test_refunded_amount_can_never_exceed_the_amount_in_the_database(merchant):
    payment = Payment.objects.create(owner=merchant, amount=Decimal("10.000"), method=Method.COD, status="paid")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=Decimal("10.001"))
    Payment.objects.filter(pk=payment.pk).update(refunded_amount=Decimal("10.000"))


def test_idempotency_key_unique_per_merchant_when_set(merchant, other_merchant):
    Payment.objects.create(owner=merchant, amount=1, method=Method.COD, idempotency_key="k")
    Payment.objects.create(owner=other_merchant, amount=1, method=Method.COD, idempotency_key="k")
    Payment.objects.create(owner=merchant, amount=1, method=Method.COD)
    Payment.objects.create(owner=merchant, amount=1, method=Method.COD)
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.create(owner=merchant, amount=1, method=Method.COD, idempotency_key="k")


@pytest.mark.parametrize("old,new,allowed", [
    ("initiated", "pending", True), ("pending", "paid", True), ("pending", "unknown", True),
    ("unknown", "paid", True), ("unknown", "pending", True), ("paid", "partially_refunded", True),
    ("partially_refunded", "partially_refunded", True), ("partially_refunded", "refunded", True),
    ("paid", "pending", False), ("paid", "failed", False), ("paid", "unknown", False),
    ("failed", "paid", False), ("expired", "paid", False), ("cancelled", "pending", False),
    ("refunded", "partially_refunded", False), ("pending", "refunded", False),
])
def test_payment_transitions(old, new, allowed):
    assert Payment.machine.can_move(old, new) is allowed


def test_final_states_have_no_exit():
    assert Payment.machine.final == {"failed", "cancelled", "expired", "refunded"}
    assert Refund.machine.final == {"refunded", "failed"}


def test_a_move_is_compare_and_set_with_history(merchant):
    payment = Payment.objects.create(owner=merchant, amount=1, method=Method.COD, status="pending")
    stale = Payment.objects.get(pk=payment.pk)
    assert payment.transition("paid", reason="test")
    assert not stale.transition("failed")  # the row is no longer pending: the stale copy loses
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    assert [(h.from_state, h.to_state) for h in Payment.machine.history_of(payment)] == [("pending", "paid")]
