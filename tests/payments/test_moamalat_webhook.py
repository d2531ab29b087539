"""Moamalat's notifications through our real webhook receiver (/webhooks/payment/moamalat/): verified
with the notification key, stored, de-duplicated, applied through apply_notification and answered as
Moamalat expects. Forged, replayed, stale, out-of-order, racing and mismatched notifications."""

import json
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.db import connection
from django.test import Client

from integrations.models import StateTransition, WebhookEvent
from payments import services
from payments.interface import Method
from payments.models import ReconciliationMismatch, Refund

from .moamalat_support import API, SECURE_KEY, local_now, moamalat_row, notification

URL = "/webhooks/payment/moamalat/"
SUCCESS = {"Message": "Success", "Success": True}


@pytest.fixture
def row(reference_data):
    return moamalat_row()


@pytest.fixture
def card(merchant, row):
    payment, _created = services.create_payment(merchant, amount="10.000", currency="LYD",
                                                method=Method.CARD_CREDIT)
    return payment


# The gateway's own record of sales, as FilterTransactions lists it: the worker asks it before a
# sale's outcome is believed (Moamalat.handle_webhook). Every sale notification a test posts is the
# gateway's, so it is written here first.
LEDGER = {}


@pytest.fixture(autouse=True)
def gateway():
    def filter_transactions(request):
        rows = list(LEDGER.get(json.loads(request.body)["MerchantReference"], {}).values())
        return 200, {}, json.dumps({"Success": True, "TotalCountAllTransaction": len(rows),
                                    "Transactions": [{"DateTransactions": rows}] if rows else []})

    LEDGER.clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.add_callback(responses.POST, API + "FilterTransactions", callback=filter_transactions)
        yield mocked
    LEDGER.clear()


def post(body, url=URL):
    """POST as the gateway does; the webhook task runs (eagerly) once the receiver commits."""
    if str(body.get("TxnType")) == "1":
        LEDGER.setdefault(body["MerchantReference"], {})[body["SystemReference"]] = {
            "Status": "Approved" if body["ActionCode"] == "00" else "Declined", "TransType": "Sale",
            "AmountTrxn": body["Amount"], "Currency": body["Currency"], "TransactionId": body["SystemReference"],
            "RRN": body["NetworkReference"], "CardNo": body["PayerAccount"],
            "MerchantReference": body["MerchantReference"]}
    return Client().post(url, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    def sender(body, url=URL):
        with django_capture_on_commit_callbacks(execute=True):
            return post(body, url)

    return sender


def moves(payment, to_state=None):
    history = StateTransition.objects.of(payment)
    return list(history.filter(to_state=to_state) if to_state else history)


def test_a_genuine_sale_notification_pays_the_payment_and_is_answered_as_moamalat_expects(card, send):
    answer = send(notification(card.reference, amount="10000"))
    assert answer.status_code == 200 and answer.json() == SUCCESS
    card.refresh_from_db()
    assert card.status == "paid" and card.provider_reference == "1233317"
    assert card.network_reference == "224601434990" and card.provider_data["card"] == "639499XXXXXX2740"
    assert len(moves(card, "paid")) == 1
    event = WebhookEvent.objects.get()
    assert event.state == "processed" and event.event_id.startswith("moamalat:1:1233317:")


def test_the_merchants_own_row_has_its_own_url_and_terminal(merchant, row, send):
    own = moamalat_row(owner=merchant, name="own", mid="20000000001", tid="88000001")
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    assert payment.integration_id == own.pk
    body = notification(payment.reference, mid="20000000001", tid="88000001")
    assert send(body).status_code == 401  # the platform's row: another terminal
    assert send(body, f"{URL}{own.pk}/").json() == SUCCESS
    payment.refresh_from_db()
    assert payment.status == "paid"


@pytest.mark.parametrize("forge", [
    lambda b: b.update(SecureHash="0" * 64),
    lambda b: b.update(Amount="1"),  # the hash covers the amount
    lambda b: b.update(Currency="840"),
    lambda b: b.update(TerminalId="99179396"),
    lambda b: b.pop("SecureHash"),
])
def test_a_forged_or_tampered_notification_is_refused_and_moves_nothing(card, send, forge):
    body = notification(card.reference)
    forge(body)
    answer = send(body)
    assert answer.status_code == 401 and answer.json()["code"] == "bad_signature"
    card.refresh_from_db()
    assert card.status == "pending"
    assert WebhookEvent.objects.get().state == "rejected"


def test_a_notification_signed_with_the_checkout_key_is_refused(card, send):
    assert send(notification(card.reference, key=SECURE_KEY)).status_code == 401
    card.refresh_from_db()
    assert card.status == "pending"


def test_a_replayed_notification_is_acknowledged_once_and_applied_once(card, send):
    body = notification(card.reference)
    assert send(body).json() == SUCCESS
    assert send(body).json() == SUCCESS  # Moamalat stops retrying; nothing is processed again
    assert WebhookEvent.objects.exclude(state="rejected").count() == 1
    card.refresh_from_db()
    assert card.status == "paid" and len(moves(card, "paid")) == 1


def test_the_same_sale_notified_again_later_moves_nothing(card, send):
    send(notification(card.reference, when=local_now(-60).strftime("%Y%m%d%H%M%S")))
    send(notification(card.reference))  # a retry re-signed at another time: a new event, same sale
    assert WebhookEvent.objects.filter(state="processed").count() == 2
    card.refresh_from_db()
    assert len(moves(card, "paid")) == 1 and not ReconciliationMismatch.objects.exists()


@pytest.mark.parametrize("age", [timedelta(days=2), -timedelta(hours=1)])
def test_a_stale_or_future_notification_is_refused(card, send, age):
    when = local_now(-age.total_seconds()).strftime("%Y%m%d%H%M%S")
    assert send(notification(card.reference, when=when)).status_code == 401
    card.refresh_from_db()
    assert card.status == "pending"


def test_a_refund_notification_before_the_sale_is_recorded_not_applied_then_the_sale_pays(card, send):
    assert send(notification(card.reference, txn_type=2, amount="4000", system_reference="R-77")).json() == SUCCESS
    card.refresh_from_db()
    assert (card.status, card.refunded_amount) == ("pending", 0)
    mismatch = ReconciliationMismatch.objects.get(payment=card)
    assert (mismatch.kind, mismatch.source, mismatch.theirs) == ("status", "notification", "refunded")
    send(notification(card.reference))
    card.refresh_from_db()
    assert (card.status, card.refunded_amount) == ("paid", 0)
    assert not Refund.objects.exists()


def test_a_late_decline_after_the_approval_is_recorded_and_the_payment_stays_paid(card, send):
    send(notification(card.reference, system_reference="1001"))
    send(notification(card.reference, action="51", system_reference="1002"))
    card.refresh_from_db()
    assert card.status == "paid" and card.provider_reference == "1001"
    mismatch = ReconciliationMismatch.objects.get(payment=card)
    assert (mismatch.kind, mismatch.ours, mismatch.theirs) == ("status", "paid", "failed")


def test_a_decline_fails_the_payment(card, send):
    send(notification(card.reference, action="51"))
    card.refresh_from_db()
    assert card.status == "failed" and card.error.startswith("51")


@pytest.mark.parametrize("change, kind, theirs", [
    ({"amount": "9999"}, "amount", "9.999"),
    ({"currency": "840", "amount": "1000"}, "currency", "USD"),
])
def test_an_amount_or_currency_other_than_ours_is_recorded_not_applied(card, send, change, kind, theirs):
    assert send(notification(card.reference, **change)).json() == SUCCESS
    card.refresh_from_db()
    assert card.status == "pending" and not card.paid_at
    mismatch = ReconciliationMismatch.objects.get(payment=card, kind=kind)
    assert (mismatch.source, mismatch.theirs) == ("notification", theirs)


def test_a_notification_for_another_rows_payment_moves_nothing(merchant, row, send, reference_data):
    own = moamalat_row(owner=merchant, name="own", mid="20000000001", tid="88000001")
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    assert payment.integration_id == own.pk
    assert send(notification(payment.reference)).json() == SUCCESS  # genuine for the platform's terminal
    payment.refresh_from_db()
    assert payment.status == "pending"


def test_a_refund_notification_settles_the_open_refund_of_that_amount(card, send):
    send(notification(card.reference))
    card.refresh_from_db()
    refund = Refund.objects.create(payment=card, amount=Decimal("4.000"), status="pending")
    send(notification(card.reference, txn_type=2, amount="4000", system_reference="R-9"))
    refund.refresh_from_db()
    card.refresh_from_db()
    assert refund.status == "refunded" and refund.provider_reference == "R-9"
    assert (card.status, card.refunded_amount) == ("partially_refunded", Decimal("4.000"))


@pytest.mark.parametrize("forged", [{"txn_type": 2, "action": "51"}, {"txn_type": 4}])
def test_a_notification_never_fails_a_refund_so_it_is_never_sent_again(card, send, forged):
    """TxnType and ActionCode are outside Moamalat's hash: the buyer's own signed sale notification,
    retyped as a declined refund (or a voided one), must not fail an open refund of that amount —
    a failed refund may be made again, and the buyer paid twice."""
    send(notification(card.reference))
    refund = Refund.objects.create(payment=card, amount=Decimal("10.000"), status="unknown")
    send(notification(card.reference, **forged))
    refund.refresh_from_db()
    assert refund.status == "unknown"
    mismatch = ReconciliationMismatch.objects.get(payment=card)
    assert (mismatch.kind, mismatch.source, mismatch.details["refund"]) == ("status", "notification", refund.reference)


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's in-memory test database is one connection: "
                    "threads cannot race on it")
@pytest.mark.django_db(transaction=True)
def test_two_racing_notifications_move_the_payment_once_with_one_history_row(merchant, reference_data):
    moamalat_row()
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    # Two genuine notifications of the same sale (the gateway's retry at another second), at once.
    bodies = [notification(payment.reference, when=local_now(-s).strftime("%Y%m%d%H%M%S")) for s in (0, 1)]
    barrier = threading.Barrier(len(bodies))
    answers = []

    def deliver(body):
        from django.db import connection as conn

        try:
            barrier.wait()
            answers.append(post(body).json())
        finally:
            conn.close()

    threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert answers == [SUCCESS, SUCCESS]
    assert WebhookEvent.objects.filter(state="processed").count() == 2
    payment.refresh_from_db()
    assert payment.status == "paid"
    assert [(m.from_state, m.to_state) for m in moves(payment) if m.to_state == "paid"] == [("pending", "paid")]
    assert not ReconciliationMismatch.objects.exists()
