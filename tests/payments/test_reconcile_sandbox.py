"""Reconciliation and refunds over real HTTP against the Moamalat simulator (live_server): a card paid
in the simulated Lightbox whose notification never arrives is found by reconciliation, then refunded
once."""

from decimal import Decimal

import pytest
import requests

from payments import services
from payments.models import Payment
from payments.sandbox.moamalat import set_notification_fault

from .moamalat_support import moamalat_row


@pytest.fixture
def simulated_moamalat(live_server, reference_data):
    set_notification_fault(drop=True)  # the notification is lost: only reconciliation can tell
    return moamalat_row(base_url=f"{live_server.url}/sandbox/moamalat/cube/paylink.svc/api/")


def pay_in_lightbox(live_server, row, payment, outcome="approve"):
    fields = row.adapter.lightbox_configuration(payment)
    answer = requests.post(f"{live_server.url}/sandbox/moamalat/lightbox/pay/",
                           json={**fields, "outcome": outcome}, timeout=10)
    assert answer.status_code == (200 if outcome == "approve" else 402), answer.text


@pytest.mark.django_db(transaction=True)
def test_a_lost_notification_is_found_by_reconciliation_and_refunded_once(live_server, merchant,
                                                                          simulated_moamalat):
    paid, declined, untouched = (services.create_payment(merchant, amount=amount, currency="LYD",
                                                         method="card_debit")[0]
                                 for amount in ("25.500", "3.000", "9.000"))
    pay_in_lightbox(live_server, simulated_moamalat, paid)
    pay_in_lightbox(live_server, simulated_moamalat, declined, outcome="decline")
    counts = services.reconcile()
    assert counts == {"moved": 2, "unchanged": 1}
    states = dict(Payment.objects.values_list("pk", "status"))
    assert (states[paid.pk], states[declined.pk], states[untouched.pk]) == ("paid", "failed", "pending")
    paid.refresh_from_db()
    assert paid.provider_reference and paid.network_reference
    refund = services.refund(paid, "10.500", idempotency_key="r1")
    assert refund.status == "refunded" and refund.provider_reference
    assert services.refund(paid, "10.500", idempotency_key="r1").pk == refund.pk
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("partially_refunded", Decimal("10.500"))
    services.refund(paid, "15")
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("refunded", Decimal("25.500"))
