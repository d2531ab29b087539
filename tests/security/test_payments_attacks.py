"""The payments app probed as an attacker and as a careless merchant would (issue 13): money in odd
shapes, one merchant reaching another's payments, the buyer's checkout page, forged and edited
notifications, secrets in answers, idempotency keys, and hostile provider answers. Every probe is a
real request through the test client (our database and cache are real; outside providers are mocked
with `responses`)."""

import json
import threading
import uuid
from decimal import Decimal

import pytest
import responses
from django.db import connection
from django.test import Client

from integrations.models import ExternalIntegration, IntegrationLog, Kind, WebhookEvent
from payments import services
from payments.interface import Checkout, Method, NextStep, ProviderStatus, State
from payments.models import Payment, PaymentStatus, ReconciliationMismatch, Refund
from tests.payments import conftest as payments_fixtures
from tests.payments.conftest import FakeGateway, paid_status
from tests.payments.moamalat_support import API, NOTIFICATION_KEY, SECURE_KEY, moamalat_row, notification
from tests.staff import admin_client_for, api_client_for, staff_with

# The payments suite's fixtures (merchants, the fake gateway, payments), used here as they are there.
merchant, other_merchant, reference_data = (payments_fixtures.merchant, payments_fixtures.other_merchant,
                                            payments_fixtures.reference_data)
fake_gateway, card_payment, paid_payment = (payments_fixtures.fake_gateway, payments_fixtures.card_payment,
                                            payments_fixtures.paid_payment)

PAYMENTS = "/api/payments/payments/"
WEBHOOK = "/webhooks/payment/moamalat/"
SUCCESS = {"Message": "Success", "Success": True}
# A real Redis client against a port where nothing listens: the cache is down, not mocked.
CACHE_DOWN = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": "redis://127.0.0.1:1/0"}}


@pytest.fixture
def api(merchant):
    return api_client_for(merchant)


@pytest.fixture
def thief(other_merchant):
    return api_client_for(other_merchant)


def create(api, key=None, **body):
    data = {"orderReference": "ORD-1", "amount": "150.000", "currency": "LYD", "method": "cod", **body}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(PAYMENTS, data, format="json", **headers)


# --- money ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("amount", [
    12.5, "1e3", "1E3", "-5", "-0.001", "0", "0.000", 0, "NaN", "nan", "Infinity", "-Infinity", "inf",
    "1.0001", "1" * 16, 10**15, -1, "١٢٣", "12 .5", "12,500", "0x10", "+5", "5.", ".5", "", " ", True, None,
    [], {}, "12.500\u200b", "12.5\x00",
])
def test_an_amount_in_any_odd_shape_is_a_400_on_amount_and_creates_nothing(api, reference_data, amount):
    answer = create(api, amount=amount)
    assert answer.status_code == 400, answer.content
    assert "amount" in answer.json()
    assert not Payment.objects.exists()


@pytest.mark.parametrize("body, field", [
    ({"method": "card_credit", "currency": "USD", "amount": "10.005"}, "amount"),  # USD has cents only
    ({"method": "card_debit", "currency": "USD", "amount": "10"}, "currency"),  # mada is LYD only
    ({"method": "cod", "currency": "USD", "amount": "10"}, "currency"),
    ({"method": "bank_transfer", "bankCode": "BCD"}, "bankCode"),  # not a transfer bank
    ({"method": "bank_transfer", "bankCode": "XXX"}, "bankCode"),
    ({"method": "card_credit", "amount": "50000.001"}, "amount"),
    ({"method": "card_credit", "amount": "0.999"}, "amount"),
    ({"method": "mobicash", "payerPhone": "+218912345678"}, "method"),  # planned, disabled
    ({"method": "cod", "payerPhone": "+2189123456789"}, "payerPhone"),
    ({"method": "cod", "payerPhone": "+21891234567\n"}, "payerPhone"),
    ({"method": "cod", "currency": "lyd"}, "currency"),
    ({"method": "cod", "currency": "EUR"}, "currency"),
    ({"method": "cod", "orderReference": "x" * 101}, "orderReference"),
])
def test_currency_method_and_bank_mismatches_are_a_400_naming_the_field(api, fake_gateway, body, field):
    answer = create(api, **body)
    assert answer.status_code == 400 and field in answer.json(), answer.content
    assert not Payment.objects.exists()


def test_a_huge_integer_amount_is_refused_not_overflowed(api, reference_data):
    for amount in (10**30, "9" * 40, "99999999999999999999.999"):
        assert create(api, amount=amount).status_code == 400
    assert not Payment.objects.exists()


@pytest.mark.parametrize("amount", ["-1", "0", "0.0000", "NaN", 1.5, "1e1", "100.001", "1.0001", "١"])
def test_a_refund_of_an_odd_amount_or_beyond_the_payment_is_a_400(api, paid_payment, amount):
    answer = api.post(f"{PAYMENTS}{paid_payment.pk}/refund/", {"amount": amount}, format="json")
    assert answer.status_code == 400 and "amount" in answer.json(), answer.content
    assert not Refund.objects.exists()


def test_a_usd_refund_with_more_decimals_than_cents_is_refused_before_the_provider(api, fake_gateway, merchant):
    # Finding: a USD refund of 1.005 was accepted and handed to the gateway, which carries cents only.
    payment, _ = services.create_payment(merchant, amount="10.00", currency="USD", method=Method.CARD_CREDIT)
    services.apply_status(payment, paid_status(payment))
    answer = api.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": "1.005"}, format="json")
    assert answer.status_code == 400 and "amount" in answer.json(), answer.content
    assert not Refund.objects.exists() and not [c for c in FakeGateway.calls if c[0] == "refund"]
    assert api.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": "1.01"}, format="json").status_code == 201


def test_refunds_past_the_remaining_amount_and_of_unpaid_or_failed_payments_are_refused(api, fake_gateway,
                                                                                         merchant):
    pending, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    assert api.post(f"{PAYMENTS}{pending.pk}/refund/", {"amount": "1"}, format="json").status_code == 400
    failed, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT,
                                        order_reference="O-2")
    services.apply_status(failed, ProviderStatus(state=State.FAILED, message="51"))
    refused = api.post(f"{PAYMENTS}{failed.pk}/refund/", {"amount": "1"}, format="json")
    assert refused.status_code == 400 and "nonFieldErrors" in refused.json()
    paid, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT,
                                      order_reference="O-3")
    services.apply_status(paid, paid_status(paid))
    assert api.post(f"{PAYMENTS}{paid.pk}/refund/", {"amount": "6"}, format="json").status_code == 201
    over = api.post(f"{PAYMENTS}{paid.pk}/refund/", {"amount": "4.001"}, format="json")
    assert over.status_code == 400 and "4.000" in json.dumps(over.json())
    assert api.post(f"{PAYMENTS}{paid.pk}/refund/", {"amount": "4"}, format="json").status_code == 201
    assert api.post(f"{PAYMENTS}{paid.pk}/refund/", {"amount": "0.001"}, format="json").status_code == 400
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("refunded", Decimal("10.000"))
    assert Refund.objects.filter(payment__in=[pending, failed]).count() == 0


@pytest.mark.skipif(connection.vendor == "sqlite", reason="threads need PostgreSQL's own connections")
@pytest.mark.django_db(transaction=True)
def test_many_concurrent_partial_refunds_never_exceed_the_amount(reference_data, merchant, fake_gateway):
    payment, _ = services.create_payment(merchant, amount="100", currency="LYD", method=Method.CARD_CREDIT)
    services.apply_status(payment, paid_status(payment))
    barrier, answers = threading.Barrier(8), []

    def attempt(n):
        from django.db import connection as conn

        try:
            client = api_client_for(merchant)
            barrier.wait()
            answers.append(client.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": "30"}, format="json",
                                       HTTP_IDEMPOTENCY_KEY=f"race-{n}").status_code)
        finally:
            conn.close()

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert sorted(answers) == [201] * 3 + [400] * 5
    payment.refresh_from_db()
    assert payment.refunded_amount == Decimal("90.000") and payment.status == "partially_refunded"
    assert len([c for c in FakeGateway.calls if c[0] == "refund"]) == 3


# --- isolation --------------------------------------------------------------------------------------
def test_another_merchant_cannot_read_refund_confirm_or_refresh_a_payment_by_any_name(api, thief, paid_payment):
    p = paid_payment
    for path in (f"{PAYMENTS}{p.pk}/", f"{PAYMENTS}{p.public_id}/", f"{PAYMENTS}{p.reference}/"):
        assert thief.get(path).status_code in (400, 404)
    for action, body in (("refund", {"amount": "1"}), ("confirm", {"code": "123456"}), ("refresh", {})):
        assert thief.post(f"{PAYMENTS}{p.pk}/{action}/", body, format="json").status_code == 404
    for query in (f"reference={p.reference}", f"orderReference={p.order_reference}", "status=paid"):
        listed = thief.get(f"{PAYMENTS}?{query}").json()
        assert listed["count"] == 0 and p.reference not in json.dumps(listed)
    assert thief.get(f"/api/payments/refunds/?payment={p.pk}").json()["count"] == 0
    assert not Refund.objects.exists() and ("status", p.reference) not in FakeGateway.calls


def test_staff_without_permissions_see_nothing_in_the_api_or_the_admin(paid_payment):
    bare = staff_with("bare-staff")
    api = api_client_for(bare)
    assert api.get(f"{PAYMENTS}{paid_payment.pk}/").status_code == 404
    assert api.get(PAYMENTS).json()["count"] == 0
    assert api.post(f"{PAYMENTS}{paid_payment.pk}/refund/", {"amount": "1"}, format="json").status_code == 404
    admin = admin_client_for(bare)
    assert admin.get("/admin/payments/payment/").status_code == 403
    assert admin.get(f"/admin/payments/payment/{paid_payment.pk}/change/").status_code == 403
    viewer = admin_client_for(staff_with("viewer", "payments.view_payment"))
    page = viewer.get(f"/admin/payments/payment/{paid_payment.pk}/change/")
    assert page.status_code == 200
    assert viewer.post("/admin/payments/payment/", {"action": "refund_payments", "_selected_action": [
        paid_payment.pk], "amount": "1"}).status_code in (200, 302, 403)
    assert not Refund.objects.exists()


def test_anonymous_callers_get_nothing(paid_payment):
    anonymous = Client()
    for path in (PAYMENTS, f"{PAYMENTS}{paid_payment.pk}/", "/api/payments/refunds/", "/api/payments/methods/"):
        assert anonymous.get(path).status_code in (401, 403)
    answer = anonymous.post(f"{PAYMENTS}{paid_payment.pk}/refund/", {"amount": "1"},
                            content_type="application/json")
    assert answer.status_code in (401, 403) and not Refund.objects.exists()


# --- the checkout page ------------------------------------------------------------------------------
XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_guessed_public_ids_and_other_names_find_no_page(card):
    client = Client()
    assert client.get(f"/pay/{uuid.uuid4()}/").status_code == 404
    for name in (card.pk, card.reference, str(card.public_id).replace("-", "")[:-1], str(card.public_id).upper()):
        assert client.get(f"/pay/{name}/").status_code == 404
    assert client.post(f"/pay/{uuid.uuid4()}/refresh/").status_code in (403, 404)
    assert client.get(f"/pay/{card.public_id}/").status_code == 200


def test_the_page_of_a_paid_or_expired_payment_offers_no_way_to_pay(reference_data, merchant):
    row = moamalat_row()
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    assert payment.integration_id == row.pk
    open_page = Client().get(f"/pay/{payment.public_id}/").content.decode()
    assert "lightbox-configuration" in open_page
    Payment.objects.filter(pk=payment.pk).update(expires_at="2000-01-01T00:00:00Z")
    expired = Client().get(f"/pay/{payment.public_id}/").content.decode()
    assert "lightbox-configuration" not in expired and "SecureHash" not in expired
    Payment.objects.filter(pk=payment.pk).update(status="paid", expires_at=None)
    paid = Client().get(f"/pay/{payment.public_id}/").content.decode()
    assert "lightbox-configuration" not in paid and "SecureHash" not in paid


def test_merchant_and_provider_text_is_escaped_in_the_page_and_the_admin(api, reference_data, merchant, settings):
    answer = create(api, orderReference=XSS, method="bank_transfer", bankCode="NBC")
    assert answer.status_code == 201, answer.content
    payment = Payment.objects.get()
    Payment.objects.filter(pk=payment.pk).update(
        instructions=XSS, error=XSS, provider_data={**payment.provider_data, "processing_time": XSS,
                                                    "bank_name": XSS, "bank_name_en": XSS})
    page = Client().get(f"/pay/{payment.public_id}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;script&gt;" in page
    admin = admin_client_for(staff_with("viewer", "payments.view_payment"))
    for path in ("/admin/payments/payment/", f"/admin/payments/payment/{payment.pk}/change/"):
        html = admin.get(path).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html


def test_the_page_sends_csp_and_anti_framing_headers_and_no_key(reference_data, merchant):
    moamalat_row()
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    response = Client().get(f"/pay/{payment.public_id}/")
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert response["X-Frame-Options"] == "DENY"
    html = response.content.decode()
    for secret in (SECURE_KEY, NOTIFICATION_KEY, bytes.fromhex(SECURE_KEY).decode(errors="ignore")):
        assert secret.lower() not in html.lower()


@pytest.fixture
def wallet(merchant, fake_gateway):
    FakeGateway.script["begin"] = Checkout(next_step=NextStep.OTP, provider_reference="W-1")
    FakeGateway.script["confirm"] = lambda payment: ProviderStatus(state=State.PENDING, message="Wrong code")
    payment, _ = services.create_payment(merchant, amount="30", currency="LYD", method=Method.CARD_CREDIT)
    return payment


def confirms():
    return len([c for c in FakeGateway.calls if c[0] == "confirm"])


def test_the_api_cannot_be_used_to_guess_a_wallet_code_past_the_pages_limit(api, wallet):
    # Finding: the API's confirm had no per-payment limit, only the per-user write rate (120 a
    # minute): a merchant could try codes on a payer's wallet far past the five the page allows.
    url = f"{PAYMENTS}{wallet.pk}/confirm/"
    for n in range(5):
        assert api.post(url, {"code": f"00000{n}"}, format="json").status_code == 200
    refused = api.post(url, {"code": "123456"}, format="json")
    assert refused.status_code == 429 and refused["Retry-After"]
    assert confirms() == 5
    # The page and the API count together: the buyer's page is refused as well.
    page = Client().post(f"/pay/{wallet.public_id}/confirm/", {"code": "123456"})
    assert page.status_code == 429 and confirms() == 5


def test_with_the_cache_down_codes_are_refused_not_unlimited(api, wallet, settings):
    settings.CACHES = CACHE_DOWN
    assert Client().post(f"/pay/{wallet.public_id}/confirm/", {"code": "123456"}).status_code == 429
    assert api.post(f"{PAYMENTS}{wallet.pk}/confirm/", {"code": "123456"}, format="json").status_code == 429
    assert confirms() == 0


def test_the_pages_posts_need_the_csrf_token(card_payment, wallet):
    client = Client(enforce_csrf_checks=True)
    assert client.post(f"/pay/{card_payment.public_id}/refresh/").status_code == 403
    assert client.post(f"/pay/{wallet.public_id}/confirm/", {"code": "123456"}).status_code == 403
    assert confirms() == 0


# --- notifications ----------------------------------------------------------------------------------
@pytest.fixture
def card(merchant, reference_data):
    moamalat_row()
    payment, _ = services.create_payment(merchant, amount="10.000", currency="LYD", method=Method.CARD_CREDIT)
    return payment


@pytest.fixture
def send(django_capture_on_commit_callbacks):
    def sender(body, url=WEBHOOK, form=False):
        with django_capture_on_commit_callbacks(execute=True):
            if form:
                return Client().post(url, data=body, content_type="application/x-www-form-urlencoded")
            return Client().post(url, data=json.dumps(body), content_type="application/json")

    return sender


def gateway_says(ledger):
    """FilterTransactions answering from `ledger` ({reference: (status, dirhams)}): no row, no sale."""
    def answer(request):
        reference = json.loads(request.body)["MerchantReference"]
        if reference not in ledger:
            return 200, {}, json.dumps({"Success": True, "TotalCountAllTransaction": 0, "Transactions": []})
        status, amount = ledger[reference]
        row = {"Status": status, "TransType": "Sale", "AmountTrxn": amount, "Currency": "LYD",
               "MerchantReference": reference, "TransactionId": "7001", "RRN": "224600007001"}
        return 200, {}, json.dumps({"Success": True, "TotalCountAllTransaction": 1,
                                    "Transactions": [{"DateTransactions": [row]}]})

    responses.add_callback(responses.POST, API + "FilterTransactions", callback=answer)


@responses.activate
def test_a_buyers_declined_callback_edited_into_an_approval_does_not_pay(card, send):
    # Finding (critical): the notification's hash covers neither ActionCode nor MerchantReference,
    # and the Lightbox hands the buyer the signed body of their declined try (the callback's data).
    gateway_says({card.reference: ("Declined", "10000")})
    body = notification(card.reference, action="51")
    body.update(ActionCode="00", Message="Approved", SystemReference="9999999")
    assert send(body).json() == SUCCESS
    card.refresh_from_db()
    assert card.status == "failed" and not card.paid_at


@responses.activate
def test_one_payments_signed_approval_renamed_to_another_payment_does_not_pay_it(card, merchant, send):
    second, _ = services.create_payment(merchant, amount="10.000", currency="LYD", method=Method.CARD_CREDIT,
                                        order_reference="O-2")
    gateway_says({card.reference: ("Approved", "10000")})
    genuine = notification(card.reference)
    assert send(genuine).json() == SUCCESS
    card.refresh_from_db()
    assert card.status == "paid"
    renamed = {**genuine, "MerchantReference": second.reference, "SystemReference": "1233318"}
    assert send(renamed).json() == SUCCESS
    second.refresh_from_db()
    assert second.status == "pending" and not second.paid_at


@responses.activate
def test_duplicate_fields_in_a_form_notification_cannot_smuggle_a_reference(card, merchant, send):
    second, _ = services.create_payment(merchant, amount="10.000", currency="LYD", method=Method.CARD_CREDIT,
                                        order_reference="O-2")
    gateway_says({card.reference: ("Approved", "10000")})
    body = notification(card.reference)
    pairs = [(k, str(v)) for k, v in body.items()] + [("MerchantReference", second.reference),
                                                      ("ActionCode", "00")]
    from urllib.parse import urlencode

    assert send(urlencode(pairs), form=True).status_code == 200
    second.refresh_from_db()
    assert second.status == "pending"


@responses.activate
def test_when_the_gateway_cannot_be_asked_a_notification_pays_nothing_and_is_kept(card, send):
    responses.post(API + "FilterTransactions", status=503, body="down")
    assert send(notification(card.reference)).json() == SUCCESS
    card.refresh_from_db()
    assert card.status == "pending"
    event = WebhookEvent.objects.get()
    assert event.state == "failed" and event.error


@pytest.mark.parametrize("tamper", [
    lambda b: b.update(SecureHash=b["SecureHash"].lower()),  # either case: accepted (documented)
])
@responses.activate
def test_a_lower_case_hash_is_accepted_as_the_gateway_does(card, send, tamper):
    gateway_says({card.reference: ("Approved", "10000")})
    body = notification(card.reference)
    tamper(body)
    assert send(body).json() == SUCCESS
    card.refresh_from_db()
    assert card.status == "paid"


@pytest.mark.parametrize("tamper", [
    lambda b: b.update(SecureHash=" " + b["SecureHash"][:-1] + "\u0660"),
    lambda b: b.update(SecureHash=b["SecureHash"] + "00"),
    lambda b: b.update(SecureHash=["x"]),
    lambda b: b.update(SecureHash=None),
    lambda b: b.update(Amount=int(b["Amount"]) + 1),
    lambda b: b.update(Amount="10000.0"),
    lambda b: b.update(DateTimeLocalTrxn="2099" + b["DateTimeLocalTrxn"][4:]),
    lambda b: b.update(MerchantId=b["MerchantId"] + "0"),
])
def test_tampered_hashes_and_signed_fields_are_refused_without_a_500(card, send, tamper):
    body = notification(card.reference)
    tamper(body)
    assert send(body).status_code == 401
    card.refresh_from_db()
    assert card.status == "pending"


def test_odd_bodies_and_content_types_are_refused_without_a_500(card, settings, django_capture_on_commit_callbacks):
    client = Client()
    body = json.dumps(notification(card.reference))
    settings.WEBHOOK_MAX_BODY_BYTES = 64 * 1024
    assert client.post(WEBHOOK, data="x" * (65 * 1024), content_type="application/json").status_code == 413
    for data, content_type in (("<xml/>", "application/xml"), (body[:-1], "application/json"),
                               (b"\xff\xfe", "application/json"), ("[]", "application/json"),
                               ("a=%ZZ&&", "application/x-www-form-urlencoded"), ("{" * 5000, "application/json")):
        answer = client.post(WEBHOOK, data=data, content_type=content_type)
        assert answer.status_code in (400, 401), (content_type, answer.status_code)
    card.refresh_from_db()
    assert card.status == "pending"


def test_a_notification_for_an_unknown_reference_moves_nothing_and_calls_nobody(card, send, connections):
    assert send(notification("EP000000-NOSUCHREF")).json() == SUCCESS
    assert not ReconciliationMismatch.objects.exists()
    assert not [c for c in connections if c[1] in (80, 443)]


def test_a_webhook_to_a_row_of_another_kind_or_code_is_refused(card, send, merchant):
    other = ExternalIntegration.objects.create(kind=Kind.SMM, code="jap", name="smm", display_name="S",
                                               base_url="https://panel.example/api/v2")
    assert send(notification(card.reference), f"{WEBHOOK}{other.pk}/").status_code == 404
    assert send(notification(card.reference), "/webhooks/payment/cod/").status_code == 404
    assert send(notification(card.reference), "/webhooks/smm/moamalat/").status_code == 404
    card.refresh_from_db()
    assert card.status == "pending"


# --- secrets ----------------------------------------------------------------------------------------
@responses.activate
def test_a_provider_answer_echoing_the_key_never_reaches_the_api_or_the_log(api, merchant, reference_data):
    row = moamalat_row(owner=merchant, name="own")
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    assert payment.integration_id == row.pk
    responses.post(API + "FilterTransactions", status=400,
                   json={"Success": False, "Message": f"bad key {SECURE_KEY} / {NOTIFICATION_KEY}"})
    answer = api.post(f"{PAYMENTS}{payment.pk}/refresh/", format="json")
    assert answer.status_code in (400, 502, 503)
    for text in (answer.content.decode(), json.dumps(list(IntegrationLog.objects.values()), default=str),
                 json.dumps(api.get(f"{PAYMENTS}{payment.pk}/").json())):
        assert SECURE_KEY not in text and NOTIFICATION_KEY not in text


def test_a_notification_quoting_the_key_is_stored_redacted(card, send):
    body = notification(card.reference, PayerName=NOTIFICATION_KEY, Message=SECURE_KEY)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        mocked.post(API + "FilterTransactions", json={"Success": True, "TotalCountAllTransaction": 0})
        send(body)
    event = WebhookEvent.objects.get()
    assert NOTIFICATION_KEY not in json.dumps(event.body) and SECURE_KEY not in json.dumps(event.body)
    assert NOTIFICATION_KEY not in json.dumps(event.headers)


# --- idempotency ------------------------------------------------------------------------------------
def test_idempotency_keys_are_per_merchant_and_per_operation(api, thief, reference_data):
    assert create(api, key="k-1").status_code == 201
    assert create(api, key="k-1", amount="151").status_code == 409
    assert create(thief, key="k-1").status_code == 201  # another merchant's key space
    assert Payment.objects.count() == 2
    payment = Payment.objects.filter(owner__username="merchant-a").get()
    services.record_cash_collected(payment.reference, payment.amount)
    reused = api.post(f"{PAYMENTS}{payment.pk}/refund/", {"amount": "1"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert reused.status_code == 409 and not Refund.objects.exists()


# --- hostile provider answers -----------------------------------------------------------------------
@responses.activate
@pytest.mark.parametrize("answer", [
    {"status": 200, "body": "<html><body>Login</body></html>", "content_type": "text/html"},
    {"status": 302, "headers": {"Location": "http://169.254.169.254/latest/meta-data/"}},
    {"status": 301, "headers": {"Location": "http://127.0.0.1:6379/"}},
    {"status": 200, "body": "[" * 100000, "content_type": "application/json"},
    {"status": 500, "body": "[" * 100000, "content_type": "application/json"},
    {"status": 400, "body": "{\"Message\":" * 50000, "content_type": "application/json"},
])
def test_a_hostile_gateway_answer_moves_nothing_and_follows_no_redirect(api, merchant, reference_data, answer):
    moamalat_row(owner=merchant, name="own")
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.CARD_CREDIT)
    responses.post(API + "FilterTransactions", **answer)
    reply = api.post(f"{PAYMENTS}{payment.pk}/refresh/", format="json")
    assert reply.status_code in (502, 503), reply.content
    assert [c.request.url for c in responses.calls] == [API + "FilterTransactions"]
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.PENDING
