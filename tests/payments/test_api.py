"""/api/payments/: methods, payments (create, read, list, refund, confirm, refresh), refunds, the
Idempotency-Key contract, and the limits, errors and scoping merchants see."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from integrations.errors import ProviderUnavailable
from integrations.models import Health
from payments import services
from payments.interface import Checkout
from payments.models import ApiIdempotencyKey, Payment, PaymentMethod, Refund
from tests.staff import api_client_for, staff_with

from .conftest import FakeGateway, paid_status

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/payments/payments/"


@pytest.fixture
def api(merchant):
    return api_client_for(merchant)


def create(api, key=None, **body):
    data = {"orderReference": "ORD-1", "amount": "150.000", "currency": "LYD", "method": "cod", **body}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(PAYMENTS, data, format="json", **headers)


def collected(payment_id):
    payment = Payment.objects.get(pk=payment_id)
    services.record_cash_collected(payment.reference, payment.amount)
    return payment


# --- methods --------------------------------------------------------------------------------------
def test_methods_list_limits_and_banks(api, fake_gateway):
    answer = api.get("/api/payments/methods/")
    assert answer.status_code == 200
    methods = {m["code"]: m for m in answer.json()}
    assert {"card_credit", "card_debit", "bank_transfer", "cod"} <= set(methods)
    assert (methods["card_credit"]["minAmount"], methods["card_credit"]["maxAmount"]) == ("1.000", "50000.000")
    assert (methods["card_debit"]["minAmount"], methods["card_debit"]["maxAmount"]) == ("0.500", "25000.000")
    assert [b["code"] for b in methods["bank_transfer"]["banks"]] == ["NBC", "JUM", "SAH", "WAH"]
    usd = {m["code"]: m for m in api.get("/api/payments/methods/?currency=USD").json()}
    assert "card_debit" not in usd and usd["card_credit"]["maxAmount"] == "50000.00"
    assert api.get("/api/payments/methods/?currency=EUR").status_code == 400


def test_while_the_card_provider_is_unhealthy_only_cash_and_transfer_are_offered(api, fake_gateway):
    fake_gateway.health_status = Health.UNHEALTHY
    fake_gateway.save(update_fields=["health_status"])
    codes = [m["code"] for m in api.get("/api/payments/methods/").json()]
    assert "card_credit" not in codes and "card_debit" not in codes
    assert {"cod", "bank_transfer"} <= set(codes)
    answer = create(api, method="card_credit", amount="10.000")
    assert answer.status_code == 400 and "unavailable" in answer.json()["method"][0]


def test_the_seed_fallback_names_moamalat_when_no_card_row_is_usable(api, reference_data):
    methods = {m["code"]: m for m in api.get("/api/payments/methods/").json()}
    assert set(methods) == {"bank_transfer", "cod"}  # cards need Moamalat; the wallets are planned, off
    assert {m["fallbackFor"] for m in methods.values()} == {"moamalat"}


# --- create -------------------------------------------------------------------------------------
def test_cash_on_delivery_answers_what_the_buyer_needs(api, reference_data):
    answer = create(api)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["amount"], body["currency"], body["method"], body["status"]) == ("150.000", "LYD", "cod", "pending")
    assert body["nextStep"] == "on_delivery" and "150.000 LYD" in body["instructions"]
    assert body["checkoutUrl"].endswith(f"/{body['publicId']}/") and body["transfer"] is None
    assert body["wallet"] is None and body["orderReference"] == "ORD-1"
    assert Payment.objects.get(pk=body["id"]).owner.username == "merchant-a"


def test_bank_transfer_answers_the_reference_to_quote(api, reference_data):
    body = create(api, method="bank_transfer", bankCode="nbc", amount="75.5").json()
    assert body["nextStep"] == "transfer" and body["amount"] == "75.500" and body["bankCode"] == "NBC"
    assert body["transfer"]["reference"] == body["reference"] and body["transfer"]["bankCode"] == "NBC"
    assert body["reference"] in body["instructions"]


def test_a_card_payment_answers_its_checkout_page_and_no_provider_data(api, fake_gateway):
    FakeGateway.script["begin"] = Checkout(next_step="lightbox", data={"secure_hash": "S3CR3T-HASH"})
    answer = create(api, method="card_credit", currency="USD", amount="12.5")
    body = answer.json()
    assert answer.status_code == 201 and body["amount"] == "12.50" and body["currency"] == "USD"
    assert body["nextStep"] == "lightbox" and body["publicId"] in body["checkoutUrl"]
    assert "S3CR3T-HASH" not in answer.content.decode()


@pytest.mark.parametrize("method,currency,amount,limit", [
    ("card_credit", "LYD", "1.000", None), ("card_credit", "LYD", "0.999", "1.000"),
    ("card_credit", "LYD", "50000.000", None), ("card_credit", "LYD", "50000.001", "50000.000"),
    ("card_credit", "USD", "50000.00", None), ("card_credit", "USD", "50000.01", "50000.000"),
    ("card_debit", "LYD", "0.500", None), ("card_debit", "LYD", "0.499", "0.500"),
    ("card_debit", "LYD", "25000.000", None), ("card_debit", "LYD", "25000.001", "25000.000"),
])
def test_amounts_at_and_just_past_each_limit(api, fake_gateway, method, currency, amount, limit):
    answer = create(api, method=method, currency=currency, amount=amount)
    if limit is None:
        assert answer.status_code == 201, answer.content
        return
    assert answer.status_code == 400
    assert limit in answer.json()["amount"][0]


@pytest.mark.parametrize("body,field,words", [
    ({"method": "card_debit", "currency": "USD"}, "currency", "LYD only"),
    ({"method": "bank_transfer", "bankCode": "BCD"}, "bankCode", "NBC, JUM, SAH, WAH"),
    ({"method": "bank_transfer"}, "bankCode", "Choose the bank"),
    ({"payerPhone": "0912345678"}, "payerPhone", "+2189"),
    ({"currency": "USD", "method": "card_credit", "amount": "10.005"}, "amount", "2 decimal"),
    ({"amount": 150.5}, "amount", "string"),
    ({"amount": "1e3"}, "amount", "125.500"),
    ({"amount": "-1"}, "amount", "125.500"),
    ({"currency": "EUR"}, "currency", ""),
    ({"method": "bitcoin"}, "method", ""),
    ({"orderReference": "x" * 101}, "orderReference", "100"),
])
def test_bad_input_is_a_400_naming_the_field_in_camel_case(api, fake_gateway, body, field, words):
    answer = create(api, **body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json() and words in " ".join(answer.json()[field])
    assert not Payment.objects.exists()


def test_a_json_integer_amount_is_exact_and_accepted(api, reference_data):
    assert create(api, amount=150).json()["amount"] == "150.000"


# --- read, list, filters, scoping -----------------------------------------------------------------
def test_list_filters_and_scoping(api, reference_data, other_merchant):
    cod = create(api, orderReference="A-1").json()
    transfer = create(api, method="bank_transfer", bankCode="JUM", orderReference="A-2").json()
    other = create(api_client_for(other_merchant), orderReference="B-1").json()

    def ids(query=""):
        answer = api.get(f"{PAYMENTS}{query}")
        assert answer.status_code == 200, answer.content
        return {p["id"] for p in answer.json()["results"]}

    assert ids() == {cod["id"], transfer["id"]}
    assert ids("?method=bank_transfer") == ids("?bank=jum") == {transfer["id"]}
    assert ids("?orderReference=A-1") == ids("?order_reference=A-1") == {cod["id"]}
    assert ids("?status=pending&currency=LYD") == {cod["id"], transfer["id"]}
    assert ids("?status=paid") == set() and ids("?currency=USD") == set()
    assert ids("?createdAfter=2000-01-01T00:00:00Z") == {cod["id"], transfer["id"]}
    assert ids("?createdBefore=2000-01-01T00:00:00Z") == set()
    assert api.get(f"{PAYMENTS}?status=nope").json().keys() == {"status"}
    assert api.get(f"{PAYMENTS}?createdAfter=yesterday").json().keys() == {"createdAfter"}
    assert api.get(f"{PAYMENTS}{cod['id']}/").json()["reference"] == cod["reference"]
    for method, suffix in [("get", ""), ("post", "refund/"), ("post", "confirm/"), ("post", "refresh/")]:
        answer = getattr(api, method)(f"{PAYMENTS}{other['id']}/{suffix}", {"amount": "1", "code": "1"},
                                      format="json")
        assert answer.status_code == 404, (suffix, answer.status_code)


def test_staff_read_with_view_permission_and_refund_only_with_change(reference_data, merchant):
    api = api_client_for(merchant)
    payment = collected(create(api).json()["id"])
    viewer = api_client_for(staff_with("viewer", "payments.view_payment"))
    assert viewer.get(f"{PAYMENTS}{payment.pk}/").status_code == 200
    refused = viewer.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": "1.000"}, format="json")
    assert refused.status_code == 403 and "permission" in refused.json()["detail"]
    bare = api_client_for(staff_with("bare"))
    assert bare.get(f"{PAYMENTS}{payment.pk}/").status_code == 404
    changer = api_client_for(staff_with("changer", "payments.change_payment"))
    assert changer.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": "1.000"}, format="json").status_code == 201
    assert not Refund.objects.exclude(amount=Decimal("1.000")).exists()


# --- refunds --------------------------------------------------------------------------------------
def test_refund_within_what_was_paid_and_the_refund_list(api, reference_data):
    payment = collected(create(api).json()["id"])
    early = api.post(f"{PAYMENTS}{create(api).json()['id']}/refund/", {"amount": "1"}, format="json")
    assert early.status_code == 400 and "nonFieldErrors" in early.json()  # not paid yet
    answer = api.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": "100.5", "reason": "damaged"}, format="json")
    assert answer.status_code == 201, answer.content
    refund = answer.json()
    assert (refund["amount"], refund["currency"], refund["status"], refund["reason"]) == (
        "100.500", "LYD", "pending", "damaged")
    too_much = api.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": "49.501"}, format="json")
    assert too_much.status_code == 400 and "49.500" in too_much.json()["amount"][0]
    assert api.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": 1.5}, format="json").status_code == 400
    listed = api.get(f"/api/payments/refunds/?payment={payment.pk}").json()["results"]
    assert [r["reference"] for r in listed] == [refund["reference"]]
    assert api.get(f"/api/payments/refunds/{refund['id']}/").json()["paymentReference"] == payment.reference
    assert api.get("/api/payments/refunds/?status=refunded").json()["results"] == []


# --- confirm and refresh --------------------------------------------------------------------------
def test_confirm_a_code_and_refresh_at_the_provider(api, fake_gateway):
    payment = create(api, method="card_credit", amount="20.000").json()
    assert api.post(f"{PAYMENTS}{payment['id']}/confirm/", {}, format="json").json().keys() == {"code"}
    answer = api.post(f"{PAYMENTS}{payment['id']}/confirm/", {"code": "123456"}, format="json")
    assert answer.status_code == 200 and answer.json()["status"] == "paid"
    again = api.post(f"{PAYMENTS}{payment['id']}/confirm/", {"code": "123456"}, format="json")
    assert again.status_code == 400 and "not waiting" in again.json()["code"][0]

    second = create(api, method="card_credit", amount="30.000").json()
    FakeGateway.script["status"] = paid_status
    refreshed = api.post(f"{PAYMENTS}{second['id']}/refresh/")
    assert refreshed.status_code == 200 and refreshed.json()["status"] == "paid"
    third = create(api, method="card_credit", amount="40.000").json()
    FakeGateway.script["status"] = ProviderUnavailable("down, key fakepay-secret-value")
    down = api.post(f"{PAYMENTS}{third['id']}/refresh/")
    assert down.status_code == 503 and down.json()["providerError"] == "ProviderUnavailable"
    assert Payment.objects.get(pk=third["id"]).status == "pending"


# --- idempotency ----------------------------------------------------------------------------------
def test_the_same_key_and_body_answer_the_first_answer_again(api, reference_data):
    first = create(api, key="k-1")
    payment = Payment.objects.get()
    collected(payment.pk)  # the payment moved since: the replay still answers what the first answer said
    again = create(api, key="k-1")
    assert (again.status_code, again.json()) == (first.status_code, first.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true" and Payment.objects.count() == 1
    conflict = create(api, key="k-1", amount="151.000")
    assert conflict.status_code == 409 and "different request" in conflict.json()["detail"]
    assert Payment.objects.count() == 1


def test_a_refused_request_releases_its_key(api, reference_data):
    assert create(api, key="k-2", method="bank_transfer").status_code == 400
    assert not ApiIdempotencyKey.objects.exists()
    assert create(api, key="k-2", method="bank_transfer", bankCode="SAH").status_code == 201


def test_keys_on_refund_and_confirm(api, fake_gateway):
    payment = collected(create(api, key="pay").json()["id"])
    url = f"{PAYMENTS}{payment.pk}/refund/"
    first = api.post(url, {"amount": "10", "reason": "r"}, format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    again = api.post(url, {"amount": "10", "reason": "r"}, format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert Refund.objects.count() == 1
    other = api.post(url, {"amount": "10", "reason": "other"}, format="json", HTTP_IDEMPOTENCY_KEY="refund-1")
    assert other.status_code == 409
    # A key is the merchant's, across endpoints: used for a payment, it is not a refund's.
    assert api.post(url, {"amount": "10"}, format="json", HTTP_IDEMPOTENCY_KEY="pay").status_code == 409

    card = create(api, method="card_credit", amount="20.000").json()
    confirm = f"{PAYMENTS}{card['id']}/confirm/"
    done = api.post(confirm, {"code": "111"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    replay = api.post(confirm, {"code": "111"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1")
    assert (done.status_code, replay.status_code) == (200, 200) and done.json() == replay.json()
    assert [c for c in FakeGateway.calls if c[0] == "confirm"] == [("confirm", card["reference"])]
    assert api.post(confirm, {"code": "222"}, format="json", HTTP_IDEMPOTENCY_KEY="c-1").status_code == 409


def test_an_overlong_key_is_refused(api, reference_data):
    answer = create(api, key="k" * 256)
    assert answer.status_code == 400 and "255" in answer.json()["detail"] and not Payment.objects.exists()


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite's in-memory test database is one connection: "
                    "threads cannot race on it")
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_make_one_payment(merchant, reference_data):
    barrier = threading.Barrier(4)
    codes = []

    def post():
        from django.db import connection as conn

        try:
            client = api_client_for(merchant)
            barrier.wait()
            codes.append(create(client, key="race").status_code)
        finally:
            conn.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Payment.objects.count() == 1
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}, codes


# --- throttle -------------------------------------------------------------------------------------
def test_writes_are_throttled_and_reads_are_not(api, reference_data, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"writes": "2/min"}}
    assert [create(api).status_code for _ in range(3)] == [201, 201, 429]
    assert [api.get(PAYMENTS).status_code for _ in range(3)] == [200, 200, 200]
    assert PaymentMethod.objects.exists()
