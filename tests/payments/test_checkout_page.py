"""The buyer's checkout page (/pay/<public id>/): the Lightbox for a card payment, signed by the server
and carrying no secret, under a strict CSP; the state of a settled payment; the transfer, delivery and
wallet steps, the wallet's code form CSRF-protected and throttled per payment."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.test import Client
from django.utils import timezone

from payments import services
from payments.interface import Checkout, Method, NextStep, ProviderStatus, State
from payments.models import Payment

from .conftest import FakeGateway, paid_status
from .moamalat_support import API, MID, NOTIFICATION_KEY, SECURE_KEY, TID, independent_hash, moamalat_row

pytestmark = pytest.mark.django_db
LIGHTBOX_JS = "https://tnpg.moamalat.net:6006/js/lightbox.js"


@pytest.fixture
def moamalat(reference_data):
    return moamalat_row()


@pytest.fixture
def card(merchant, moamalat):
    payment, _created = services.create_payment(merchant, order_reference="O-77", amount="123.450", currency="LYD",
                                                method=Method.CARD_DEBIT)
    payment.refresh_from_db()
    assert (payment.status, payment.next_step) == ("pending", NextStep.LIGHTBOX)
    return payment


def page(payment, client=None, **headers):
    return (client or Client()).get(f"/pay/{payment.public_id}/", **headers)


def configuration(response):
    import json

    match = re.search(r'<script id="lightbox-configuration" type="application/json">(.*?)</script>',
                      response.content.decode())
    return json.loads(match.group(1))


def test_the_checkout_url_is_the_one_the_adapter_hands_out(card):
    assert card.provider_data["checkout_url"] == f"/pay/{card.public_id}/"


def test_a_card_payment_loads_the_environments_lightbox_with_the_server_signed_configuration(card):
    response = page(card)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'<script src="{LIGHTBOX_JS}" defer></script>' in html
    config = configuration(response)
    assert {k: config[k] for k in ("MID", "TID", "AmountTrxn", "MerchantReference")} == {
        "MID": MID, "TID": TID, "AmountTrxn": 123450, "MerchantReference": card.reference}
    assert re.fullmatch(r"[0-9]{12}", config["TrxDateTime"])
    text = (f"Amount=123450&DateTimeLocalTrxn={config['TrxDateTime']}&MerchantId={MID}"
            f"&MerchantReference={card.reference}&TerminalId={TID}")
    assert config["SecureHash"] == independent_hash(SECURE_KEY, text)


def test_the_page_carries_no_secret_and_no_inline_script(card):
    html = page(card).content.decode()
    for key in (SECURE_KEY, NOTIFICATION_KEY):
        assert key not in html and key.lower() not in html
        assert bytes.fromhex(key).decode() not in html
    for tag in re.findall(r"<script[^>]*>", html):
        # Every script is either a file (ours or the gateway's) or inert JSON data.
        assert 'src="' in tag or 'type="application/json"' in tag, tag
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), "an inline event handler"


def test_the_csp_allows_scripts_and_frames_from_our_origin_and_the_gateways_script_host_only(card):
    policy = page(card)["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self' https://tnpg.moamalat.net:6006"
    assert directives["frame-src"] == "https://tnpg.moamalat.net:6006"
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


def test_the_production_row_loads_the_production_script(merchant, reference_data):
    moamalat_row(base_url="https://npg.moamalat.net/cube/paylink.svc/api/", environment="production")
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    response = page(payment)
    assert '<script src="https://npg.moamalat.net:6006/js/lightbox.js"' in response.content.decode()
    assert "script-src 'self' https://npg.moamalat.net:6006;" in response["Content-Security-Policy"]


def test_the_page_is_arabic_right_to_left_by_default_and_english_on_request(card):
    assert '<html lang="ar" dir="rtl">' in page(card).content.decode()
    assert '<html lang="en" dir="ltr">' in page(card, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_our_script_and_style_are_served_from_our_origin(card, client):
    script = client.get("/pay/assets/checkout.js")
    assert script.status_code == 200 and script["Content-Type"].startswith("text/javascript")
    assert b"Lightbox.Checkout.configure" in script.content and b"completeCallback" in script.content
    assert client.get("/pay/assets/checkout.css").status_code == 200
    assert client.get("/pay/assets/settings.py").status_code == 404


def test_an_unknown_id_is_a_404_and_the_sequential_id_is_no_address(card, client):
    assert client.get(f"/pay/{uuid.uuid4()}/").status_code == 404
    assert client.get(f"/pay/{card.pk}/").status_code == 404
    assert client.get(f"/pay/{card.reference}/").status_code == 404


@pytest.mark.parametrize("state, words", [
    ("paid", "This payment is paid"), ("failed", "This payment failed"), ("expired", "has expired"),
    ("unknown", "Do not pay again"),
])
def test_a_payment_no_longer_open_shows_its_state_instead_of_the_lightbox(card, state, words):
    card.transition(state)
    html = page(card, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert words in html
    assert "lightbox.js" not in html and "SecureHash" not in html


def test_a_checkout_whose_time_ran_out_shows_expired_even_before_the_expiry_job(card):
    Payment.objects.filter(pk=card.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    html = page(card, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "has expired" in html and "lightbox.js" not in html


def test_a_row_that_cannot_sign_says_card_payment_is_unavailable(card, moamalat):
    moamalat.credentials = {**moamalat.credentials, "secure_key": "not-hex"}
    moamalat.save()
    html = page(card, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Card payment is unavailable" in html and "SecureHash" not in html and "not-hex" not in html


def test_a_bank_transfer_shows_the_reference_and_the_bank(merchant, reference_data):
    payment, _ = services.create_payment(merchant, amount="250", currency="LYD", method=Method.BANK_TRANSFER,
                                         bank_code="JUM")
    response = page(payment, HTTP_ACCEPT_LANGUAGE="en")
    html = response.content.decode()
    assert f'<bdi id="transfer-reference">{payment.reference}</bdi>' in html
    assert "(<bdi>JUM</bdi>)" in html and "Transfer 250.000 LYD" in html
    assert "frame-src 'none'" in response["Content-Security-Policy"]


def test_cash_on_delivery_shows_the_delivery_note(merchant, reference_data):
    payment, _ = services.create_payment(merchant, amount="45.250", currency="LYD", method=Method.COD)
    html = page(payment, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="on-delivery"' in html and "45.250 LYD in cash" in html


# --- the wallet's code ------------------------------------------------------------------------------
@pytest.fixture
def wallet(merchant, fake_gateway):
    FakeGateway.script["begin"] = Checkout(next_step=NextStep.OTP, provider_reference="W-1")
    FakeGateway.script["confirm"] = lambda payment: (
        paid_status(payment) if FakeGateway.code == "123456" else ProviderStatus(state=State.PENDING,
                                                                                 message="Wrong code"))
    original = FakeGateway.confirm

    def confirm(self, payment, code):
        FakeGateway.code = code
        return original(self, payment, code)

    FakeGateway.confirm = confirm
    payment, _ = services.create_payment(merchant, amount="30", currency="LYD", method=Method.CARD_CREDIT)
    yield payment
    FakeGateway.confirm = original


def confirm(client, payment, code):
    html = client.get(f"/pay/{payment.public_id}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    return client.post(f"/pay/{payment.public_id}/confirm/", {"code": code, "csrfmiddlewaretoken": token},
                       HTTP_ACCEPT_LANGUAGE="en")


def test_the_wallet_form_confirms_the_code_and_then_shows_paid(wallet):
    client = Client(enforce_csrf_checks=True)
    response = confirm(client, wallet, "123456")
    assert response.status_code == 302 and response["Location"] == f"/pay/{wallet.public_id}/"
    wallet.refresh_from_db()
    assert wallet.status == "paid"
    assert "This payment is paid" in page(wallet, client, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_the_wallet_form_refuses_a_post_without_the_csrf_token(wallet):
    client = Client(enforce_csrf_checks=True)
    response = client.post(f"/pay/{wallet.public_id}/confirm/", {"code": "123456"})
    assert response.status_code == 403
    assert ("confirm", wallet.reference) not in FakeGateway.calls


def test_codes_are_throttled_per_payment_whoever_sends_them(wallet):
    for attempt in range(5):
        response = confirm(Client(enforce_csrf_checks=True), wallet, f"00000{attempt}")
        assert response.status_code == 302  # refused by the wallet: still pending, the form again
    calls = len([c for c in FakeGateway.calls if c[0] == "confirm"])
    # A sixth try, from a fresh client, with the right code: refused before the wallet is asked.
    response = confirm(Client(enforce_csrf_checks=True), wallet, "123456")
    assert response.status_code == 429 and "Too many codes" in response.content.decode()
    assert len([c for c in FakeGateway.calls if c[0] == "confirm"]) == calls == 5
    wallet.refresh_from_db()
    assert wallet.status == "pending"


def test_a_malformed_code_is_a_400_with_the_message(wallet):
    response = confirm(Client(enforce_csrf_checks=True), wallet, "12 34<")
    assert response.status_code == 400 and 'id="form-error"' in response.content.decode()


def test_the_code_form_does_not_exist_for_a_card_payment(card, client):
    assert client.post(f"/pay/{card.public_id}/confirm/", {"code": "1"}).status_code == 404


# --- refresh ----------------------------------------------------------------------------------------
def approved(reference, amount="123450"):
    return {"Success": True, "TotalCountAllTransaction": 1, "Transactions": [{"DateTransactions": [
        {"Status": "Approved", "TransType": "Sale", "AmountTrxn": amount, "Currency": "LYD",
         "MerchantReference": reference, "TransactionId": "9001", "RRN": "224600009001"}]}]}


@responses.activate
def test_refresh_asks_the_gateway_at_most_once_in_five_seconds_per_payment(card):
    responses.post(API + "FilterTransactions", json={"Success": True, "TotalCountAllTransaction": 0})
    client = Client(enforce_csrf_checks=True)
    token = re.search(r'data-csrf="([^"]+)"', page(card, client).content.decode()).group(1)
    url = f"/pay/{card.public_id}/refresh/"
    assert Client(enforce_csrf_checks=True).post(url).status_code == 403
    for _i in range(3):
        answer = client.post(url, HTTP_X_CSRFTOKEN=token, HTTP_ACCEPT_LANGUAGE="en")
        assert answer.json() == {"status": "pending", "label": "Pending", "open": True}
    assert len(responses.calls) == 1
    responses.replace(responses.POST, API + "FilterTransactions", json=approved(card.reference))
    from django.core.cache import cache

    cache.delete(f"payments:checkout-refresh:{card.pk}")
    assert client.post(url, HTTP_X_CSRFTOKEN=token).json()["status"] == "paid"
    card.refresh_from_db()
    assert card.status == "paid" and card.amount == Decimal("123.450")
