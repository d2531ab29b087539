"""A card payment end to end over real HTTP with a real Celery worker: our checkout page (live_server)
-> the simulated Lightbox approves -> the simulator POSTs the signed notification to our webhook -> the
worker applies it -> paid, with its history; then a partial refund through the simulator; and a
declined card -> failed. Nothing here is mocked: our database, broker and cache, the gateway simulator."""

import json
import re
from decimal import Decimal

import pytest
import requests

from integrations.models import StateTransition, WebhookEvent
from payments import services
from payments.interface import Method
from payments.models import Payment, ReconciliationMismatch
from tests.conftest import wait_for

from .moamalat_support import moamalat_row

pytestmark = pytest.mark.worker


@pytest.fixture
def gateway(live_server, reference_data):
    sandbox = f"{live_server.url}/sandbox/moamalat"
    return moamalat_row(base_url=f"{sandbox}/cube/paylink.svc/api/", lightbox_url=f"{sandbox}/js/lightbox.js")


def open_checkout(live_server, payment):
    """What the buyer's browser does: the page, then the scripts it names, then the Lightbox window
    with the configuration our script hands it. Returns (session, configuration, csrf token)."""
    session = requests.Session()
    page = session.get(f"{live_server.url}/pay/{payment.public_id}/", timeout=10)
    assert page.status_code == 200, page.text
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert scripts == [f"{live_server.url}/sandbox/moamalat/js/lightbox.js", "/pay/assets/checkout.js"]
    for src in scripts:
        assert session.get(src if src.startswith("http") else live_server.url + src, timeout=10).status_code == 200
    configuration = json.loads(re.search(r'id="lightbox-configuration" type="application/json">(.*?)</script>',
                                         page.text).group(1))
    window = session.get(f"{live_server.url}/sandbox/moamalat/lightbox/", params=configuration, timeout=10)
    assert window.status_code == 200 and 'id="approve"' in window.text, window.text
    return session, configuration, re.search(r'data-csrf="([^"]+)"', page.text).group(1)


def pay(live_server, configuration, outcome):
    """The Lightbox window's button: what the simulator's page POSTs."""
    return requests.post(f"{live_server.url}/sandbox/moamalat/lightbox/pay/",
                         json={**configuration, "outcome": outcome, "CardNo": "4111 1111 1111 1111"}, timeout=10)


def history(payment):
    return [(m.from_state, m.to_state) for m in StateTransition.objects.of(payment).order_by("created_at", "pk")]


def test_a_card_paid_in_the_lightbox_is_settled_by_the_notification_then_refunded_in_part(
        live_server, celery_worker_process, merchant, gateway):
    payment, _ = services.create_payment(merchant, order_reference="E2E-1", amount="75.250", currency="LYD",
                                         method=Method.CARD_CREDIT, idempotency_key="e2e-card")
    session, configuration, token = open_checkout(live_server, payment)
    assert configuration["AmountTrxn"] == 75250

    answer = pay(live_server, configuration, "approve")
    assert answer.status_code == 200 and answer.json()["ActionCode"] == "00"
    paid = wait_for(lambda: Payment.objects.filter(pk=payment.pk, status="paid").first(), timeout=60)
    assert history(paid) == [("initiated", "pending"), ("pending", "paid")]
    event = WebhookEvent.objects.get(integration=gateway, state="processed")
    assert event.event_id.startswith(f"moamalat:1:{paid.provider_reference}:")
    assert paid.network_reference and paid.provider_data["card"] == "411111XXXXXX1111"

    # The page's completeCallback asks us to refresh; the page then shows it paid.
    state = session.post(f"{live_server.url}/pay/{payment.public_id}/refresh/", headers={"X-CSRFToken": token},
                         timeout=10).json()
    assert state["status"] == "paid" and not state["open"]
    assert "lightbox.js" not in session.get(f"{live_server.url}/pay/{payment.public_id}/", timeout=10).text
    # The Lightbox cannot take the same reference twice.
    assert pay(live_server, configuration, "approve").status_code == 409

    refund = services.refund(paid, "25.000", idempotency_key="e2e-refund")
    assert refund.status == "refunded" and refund.provider_reference
    # The gateway's refund notification (TxnType 2) reaches the worker too and changes nothing more.
    wait_for(lambda: WebhookEvent.objects.filter(integration=gateway, state="processed").count() == 2, timeout=60)
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("partially_refunded", Decimal("25.000"))
    assert history(paid)[-1] == ("paid", "partially_refunded")
    assert not ReconciliationMismatch.objects.exists()


def test_a_declined_card_fails_the_payment(live_server, celery_worker_process, merchant, gateway):
    payment, _ = services.create_payment(merchant, amount="12", currency="LYD", method=Method.CARD_DEBIT)
    _session, configuration, _token = open_checkout(live_server, payment)
    answer = pay(live_server, configuration, "decline")
    assert answer.status_code == 402 and answer.json()["ActionCode"] == "51"
    failed = wait_for(lambda: Payment.objects.filter(pk=payment.pk, status="failed").first(), timeout=60)
    assert history(failed)[-1] == ("pending", "failed") and failed.error.startswith("51")


def test_a_tampered_configuration_is_refused_by_the_lightbox(live_server, merchant, gateway):
    payment, _ = services.create_payment(merchant, amount="12", currency="LYD", method=Method.CARD_DEBIT)
    _session, configuration, _token = open_checkout(live_server, payment)
    answer = pay(live_server, {**configuration, "AmountTrxn": 1}, "approve")
    assert answer.status_code == 400 and answer.json() == {"error": "Invalid Secure Hash"}
    payment.refresh_from_db()
    assert payment.status == "pending"
