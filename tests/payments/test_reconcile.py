"""Reconciliation and expiry against a scripted provider and against Moamalat's API under `responses`;
the scheduled jobs and the domain's hooks (demo data, dashboard, affected merchants)."""

import json
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import responses
from django.apps import apps
from django.utils import timezone, translation

from integrations.errors import ProviderUnavailable
from integrations.locks import provider_lock
from integrations.models import ExternalIntegration
from payments import services, tasks
from payments.interface import Method, ProviderStatus, State
from payments.models import Payment, ReconciliationMismatch

from .conftest import FakeGateway, paid_status
from .moamalat_support import API, moamalat_row, notification

pytestmark = pytest.mark.django_db
FILTER, REFUND = API + "FilterTransactions", API + "RefundTransaction"


def pay(owner, amount="100", method=Method.CARD_CREDIT, **extra):
    return services.create_payment(owner, amount=amount, currency="LYD", method=method, **extra)[0]


def test_reconcile_applies_what_the_provider_says(merchant, fake_gateway):
    paid, waiting, wrong, lost = (pay(merchant) for _ in range(4))
    cod = pay(merchant, method=Method.COD)
    lost.transition("unknown")
    answers = {paid.reference: paid_status(paid), lost.reference: paid_status(lost),
               wrong.reference: ProviderStatus(state=State.PAID, amount=Decimal("1.000"), currency="LYD")}
    FakeGateway.script["status"] = lambda p: answers.get(p.reference, ProviderStatus(state=State.PENDING))
    FakeGateway.calls.clear()
    counts = services.reconcile()
    assert counts == {"moved": 2, "unchanged": 2}
    assert {ref for op, ref in FakeGateway.calls} == {paid.reference, waiting.reference, wrong.reference,
                                                        lost.reference}  # cash on delivery is not asked
    states = dict(Payment.objects.values_list("reference", "status"))
    assert (states[paid.reference], states[waiting.reference], states[wrong.reference], states[lost.reference],
            states[cod.reference]) == ("paid", "pending", "pending", "paid", "pending")
    mismatch = ReconciliationMismatch.objects.get()
    assert (mismatch.payment_id, mismatch.kind, mismatch.source) == (wrong.pk, "amount", "reconciliation")
    assert Payment.objects.filter(pk=waiting.pk, last_checked_at__isnull=False).exists()


def test_the_least_recently_checked_first_within_the_limit(merchant, fake_gateway):
    old, new = pay(merchant), pay(merchant)
    Payment.objects.filter(pk=old.pk).update(last_checked_at=timezone.now() - timedelta(hours=1))
    Payment.objects.filter(pk=new.pk).update(last_checked_at=timezone.now())
    FakeGateway.calls.clear()
    services.reconcile(limit=1)
    assert FakeGateway.calls == [("status", old.reference)]


def test_a_provider_down_stops_its_round_not_the_others(merchant, fake_gateway):
    for _ in range(3):
        pay(merchant)
    FakeGateway.script["status"] = ProviderUnavailable("down")
    FakeGateway.calls.clear()
    assert services.reconcile() == {"errors": 1}
    assert len(FakeGateway.calls) == 1
    assert not Payment.objects.filter(last_checked_at__isnull=False).exists()


def test_a_provider_locked_by_another_round_is_skipped(merchant, fake_gateway):
    pay(merchant)
    FakeGateway.calls.clear()
    with provider_lock(fake_gateway.pk, "payment-reconcile") as acquired:
        assert acquired
        assert services.reconcile() == {"locked": 1}
    assert FakeGateway.calls == []


def test_a_never_begun_payment_is_begun_once_old_enough(merchant, fake_gateway):
    # The other cases (begun and interrupted, expired, our own ways to pay) are in test_gaps.py.
    stuck = Payment.objects.create(owner=merchant, amount=5, method=Method.CARD_CREDIT, integration=fake_gateway)
    services.reconcile()
    assert Payment.objects.get(pk=stuck.pk).status == "initiated" and FakeGateway.calls == []
    services.reconcile(now=timezone.now() + timedelta(minutes=11))
    assert Payment.objects.get(pk=stuck.pk).status == "pending"
    assert FakeGateway.calls[0] == ("begin", stuck.reference)


@pytest.mark.parametrize("answer,state", [
    (ProviderStatus(state=State.PENDING), "expired"),
    (paid_status, "paid"),  # paid in the last minute: not expired
    (ProviderStatus(state=State.FAILED, message="declined"), "failed"),
    (ProviderUnavailable("down"), "pending"),  # cannot ask: left for the next round
])
def test_expiry_asks_the_provider_first(merchant, fake_gateway, answer, state):
    payment = pay(merchant)
    FakeGateway.script["status"] = answer
    assert services.expire_payments(now=payment.expires_at - timedelta(seconds=1)) == []
    services.expire_payments(now=payment.expires_at + timedelta(seconds=1))
    assert Payment.objects.get(pk=payment.pk).status == state


def test_tasks_run_the_services(merchant, fake_gateway):
    payment = pay(merchant)
    FakeGateway.script["status"] = paid_status
    assert tasks.reconcile_payments.delay().get() == {"moved": 1}
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    assert tasks.expire_payments.delay().get() == 0
    assert tasks.retry_refunds.delay().get() == {}


# --- Moamalat, its API mocked ---------------------------------------------------------------------
@pytest.fixture
def moamalat(reference_data):
    return moamalat_row()


def sale(payment, amount, status="Approved"):
    return {"Message": None, "Success": True, "TotalCountAllTransaction": 1, "Transactions": [
        {"Date": "07/12/2026", "DateTransactions": [
            {"TransType": "Sale", "Status": status, "AmountTrxn": amount, "Currency": "LYD",
             "TransactionId": "1233317", "RRN": "224601434990", "CardNo": "639499XXXXXX2740",
             "MerchantReference": payment.reference}]}]}


@responses.activate
def test_reconcile_with_moamalat(merchant, moamalat):
    good, wrong = pay(merchant, "100.000"), pay(merchant, "12.500")
    assert good.integration_id == moamalat.pk and good.next_step == "lightbox"
    by_ref = {good.reference: sale(good, "100000"), wrong.reference: sale(wrong, "12000")}
    responses.add_callback(responses.POST, FILTER, callback=lambda request: (
        200, {}, json.dumps(by_ref[json.loads(request.body)["MerchantReference"]])))
    assert services.reconcile() == {"moved": 1, "unchanged": 1}
    good.refresh_from_db()
    assert (good.status, good.provider_reference, good.network_reference) == ("paid", "1233317", "224601434990")
    assert good.provider_data["card"] == "639499XXXXXX2740"
    mismatch = ReconciliationMismatch.objects.get(payment=wrong)
    assert (mismatch.ours, mismatch.theirs) == ("12.500", "12.000")


@responses.activate
def test_refund_through_moamalat_is_sent_once(merchant, moamalat):
    payment = pay(merchant, "100.000")
    services.apply_status(payment, ProviderStatus(state=State.PAID, amount=Decimal("100.000"), currency="LYD",
                                                  provider_reference="1233317"))
    responses.post(REFUND, json={"Message": "Approved", "Success": True, "RefNumber": "1233400"})
    refund = services.refund(payment, "40", idempotency_key="r")
    again = services.refund(payment, "40", idempotency_key="r")
    assert (refund.status, refund.provider_reference, again.pk) == ("refunded", "1233400", refund.pk)
    assert len(responses.calls) == 1
    sent = json.loads(responses.calls[0].request.body)
    assert (sent["AmountTrxn"], sent["SystemReference"]) == (40000, "1233317")
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_amount) == ("partially_refunded", Decimal("40.000"))


@responses.activate
def test_moamalat_refund_timeout_is_unknown(merchant, moamalat):
    payment = pay(merchant, "100.000")
    services.apply_status(payment, ProviderStatus(state=State.PAID, amount=Decimal("100.000"), currency="LYD",
                                                  provider_reference="1233317"))
    responses.post(REFUND, json={"Success": True})  # accepted without a RefNumber: nothing to find it by
    refund = services.refund(payment, "40")
    assert refund.status == "unknown"
    assert services.retry_refunds() == {}
    assert len(responses.calls) == 1


@responses.activate
def test_moamalat_notification_through_the_adapter(merchant, moamalat):
    payment = pay(merchant, "10.000")
    responses.post(FILTER, json=sale(payment, "10000"))  # the gateway confirms the sale it notified
    adapter = moamalat.adapter
    body = notification(reference=payment.reference, amount="10000")
    adapter.handle_webhook(SimpleNamespace(pk=1, payload=body))
    payment.refresh_from_db()
    assert (payment.status, payment.provider_reference) == ("paid", "1233317")
    refused = notification(reference=payment.reference, amount="10000", action="05")
    adapter.handle_webhook(SimpleNamespace(pk=2, payload=refused))  # a late decline after the approval
    payment.refresh_from_db()
    assert payment.status == "paid"
    assert ReconciliationMismatch.objects.get().theirs == "failed"


# --- the domain's hooks ---------------------------------------------------------------------------
def test_load_demo_is_idempotent_and_follows_the_sandbox_address(merchant, settings):
    config = apps.get_app_config("payments")
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:8000/sandbox"
    config.load_demo(merchant)
    config.load_demo(merchant)
    row = ExternalIntegration.objects.get(code="moamalat", owner__isnull=True)
    assert row.base_url == "http://127.0.0.1:8000/sandbox/moamalat/cube/paylink.svc/api/"
    assert row.status == "active" and row.credentials["merchant_id"] == "10081014649"
    assert row.adapter.lightbox_url.startswith("http://127.0.0.1:8000/sandbox/moamalat/")
    wallets = ExternalIntegration.objects.exclude(code="moamalat")
    assert wallets.exists() and set(wallets.values_list("status", flat=True)) == {"inactive"}
    assert ExternalIntegration.objects.filter(code="moamalat").count() == 1
    settings.SANDBOX_BASE_URL = "http://127.0.0.1:8123/sandbox"
    config.load_demo(merchant)
    row.refresh_from_db()
    assert row.base_url.startswith("http://127.0.0.1:8123/") and "8123" in row.configuration["lightbox_url"]


def test_affected_owners_and_dashboard(merchant, other_merchant, fake_gateway):
    config = apps.get_app_config("payments")
    paid = pay(merchant)
    services.apply_status(paid, paid_status(paid))
    assert list(config.affected_owners(fake_gateway)) == []
    pay(other_merchant, "7")
    pay(merchant, method=Method.COD)
    assert list(config.affected_owners(fake_gateway)) == [other_merchant]
    with translation.override("en"):
        blocks = config.dashboard_figures(timezone.now() - timedelta(days=1))
        summary = {str(f.label): f.value for f in blocks[0].figures}
        by_status = {str(f.label): f.value for f in blocks[1].figures}
    assert summary["Payments"] == 3 and summary["Paid (LYD)"] == Decimal("100.000")
    assert by_status == {"Pending": 2, "Paid": 1}
    by_method = {str(f.label): f.value for f in blocks[2].figures}
    assert by_method == {"Credit card": 2, "Cash on delivery": 1}
    assert config.get_dashboard_permission() == "payments.view_payment"
    assert "Payment reconciliation of pending and unknown payments" in config.schedule
