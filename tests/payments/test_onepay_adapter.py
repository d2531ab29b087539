"""The 1Pay adapter alone, against a mocked wallet (`responses`): dirhams and Idempotency-Keys on the
wire, the planned switch, error mapping, lost answers, refunds, and the key kept out of the log."""

import json
from decimal import Decimal

import pytest
import requests
import responses

from integrations.errors import (
    ProviderAuthError,
    ProviderProtocolError,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.models import IntegrationLog
from payments.interface import Method, NextStep, State
from payments.providers.onepay import OnePay

from .wallet_support import API_KEY, MERCHANT_ID, PHONE, logged, payment, refund, wallet_row

BASE = "https://api.onepay.example.test/v1/"
CREATE, FIND = BASE + "payments", BASE + "payments"
GET, CONFIRM, REFUNDS = BASE + "payments/op_7", BASE + "payments/op_7/confirm", BASE + "payments/op_7/refunds"


def one(status="otp_sent", **extra):
    return {"id": "op_7", "orderId": "ORDER-1", "status": status, "amount": 12500, "currency": "LYD",
            "transactionId": "T9" if status == "paid" else "", "refundedAmount": 0, "message": status, **extra}


def refused(code, message):
    return {"error": {"code": code, "message": message}}


@pytest.fixture
def row(db):
    return wallet_row("onepay", BASE)


@pytest.fixture
def adapter(row):
    return row.adapter


def sent(call):
    return json.loads(call.request.body)


@responses.activate
def test_begin_sends_dirhams_the_msisdn_and_our_reference_as_idempotency_key(adapter):
    responses.post(CREATE, status=201, json=one(expiresAt=1796606616))
    checkout = adapter.begin(payment(amount="12.5", phone="0912345678"))
    assert (checkout.next_step, checkout.provider_reference) == (NextStep.OTP, "op_7")
    assert sent(responses.calls[0]) == {"orderId": "ORDER-1", "amount": 12500, "currency": "LYD", "msisdn": PHONE,
                                        "method": "wallet_otp"}
    headers = responses.calls[0].request.headers
    assert headers["Authorization"] == f"Bearer {API_KEY}" and headers["X-Merchant-Id"] == MERCHANT_ID
    assert headers["Idempotency-Key"] == "ORDER-1"


def test_a_planned_wallet_is_off_until_its_row_says_enabled(db):
    off = wallet_row("onepay", BASE, enabled=None)
    with responses.RequestsMock(), pytest.raises(ProviderValidationError, match="enabled") as exc:
        off.adapter.begin(payment())
    assert exc.value.sent is False
    assert OnePay.planned is True and OnePay.methods == (Method.ONEPAY,)


@responses.activate
def test_an_answer_about_another_order_is_not_taken_for_ours(adapter):
    responses.post(CREATE, status=201, json=one(orderId="ORDER-2"))
    with pytest.raises(ProviderProtocolError):
        adapter.begin(payment())


@responses.activate
def test_confirm_sends_the_code_and_reads_a_payment_in_dirhams(adapter):
    responses.post(CONFIRM, json=one("paid"))
    status = adapter.confirm(payment(provider_reference="op_7"), "123456")
    assert (status.state, status.amount, status.provider_reference) == (State.PAID, Decimal("12.500"), "T9")
    assert sent(responses.calls[0]) == {"orderId": "ORDER-1", "otp": "123456"}


@responses.activate
def test_a_wrong_code_is_a_validation_error_with_the_wallets_words(adapter):
    responses.post(CONFIRM, status=422, json=refused("invalid_otp", "Wrong one-time code, 1 tries left"))
    with pytest.raises(ProviderValidationError, match="1 tries left"):
        adapter.confirm(payment(provider_reference="op_7"), "000000")


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"body": requests.exceptions.ReadTimeout("read timed out")}, UnknownOutcome),
    ({"status": 504, "body": "<html>Gateway timeout</html>"}, UnknownOutcome),
    ({"body": "not json", "content_type": "text/plain"}, UnknownOutcome),
    ({"json": one("paid", transactionId="")}, UnknownOutcome),
    ({"status": 401, "json": refused("unauthorized", "Invalid API key")}, ProviderAuthError),
])
@responses.activate
def test_a_confirm_is_sent_once_and_a_lost_answer_is_unknown(db, kwargs, error):
    retrying = wallet_row("onepay", BASE, name="retrying", retries=3).adapter
    responses.post(CONFIRM, **kwargs)
    with pytest.raises(error):
        retrying.confirm(payment(provider_reference="op_7"), "123456")
    assert len(responses.calls) == 1


@responses.activate
def test_status_reads_the_payment_by_its_id_else_finds_it_by_our_order_id(adapter):
    responses.get(GET, json=one("partially_refunded", refundedAmount=2500, transactionId="T9"))
    status = adapter.status(payment(provider_reference="op_7"))
    assert status.state == State.PARTIALLY_REFUNDED and status.details == {"refunded_amount": "2.500"}
    responses.get(FIND, json={"data": [one("paid")]})
    assert adapter.status(payment()).state == State.PAID
    assert responses.calls[1].request.params == {"orderId": "ORDER-1"}
    responses.replace(responses.GET, FIND, json={"data": []})
    assert adapter.status(payment()).details == {"not_found": True}


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"body": "<html>Maintenance</html>", "content_type": "text/html"}, ProviderProtocolError),
    ({"json": one("levitating")}, ProviderProtocolError),
    ({"status": 503, "body": "busy"}, ProviderUnavailable),
])
@responses.activate
def test_html_garbage_and_outages_are_errors_never_a_status(adapter, kwargs, error):
    responses.get(GET, **kwargs)
    with pytest.raises(error):
        adapter.status(payment(provider_reference="op_7"))


@responses.activate
def test_a_refund_sends_dirhams_once_keyed_by_our_refund_reference(adapter):
    responses.post(REFUNDS, status=201, json={"id": "R1", "status": "succeeded", "amount": 5000})
    result = adapter.refund(payment(provider_reference="op_7"), refund(amount="5"))
    assert (result.state, result.provider_reference) == ("refunded", "R1")
    assert sent(responses.calls[0]) == {"amount": 5000, "reference": "REFUND-1"}
    assert responses.calls[0].request.headers["Idempotency-Key"] == "REFUND-1"


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"status": 422, "json": refused("refund_exceeds", "Refund amount exceeds the remaining 2.000 LYD")},
     ProviderValidationError),
    ({"status": 502, "body": "bad gateway"}, UnknownOutcome),
    ({"json": {"status": "succeeded"}}, UnknownOutcome),
])
@responses.activate
def test_a_refused_or_lost_refund_is_reported_so_and_never_sent_twice(db, kwargs, error):
    retrying = wallet_row("onepay", BASE, name="retrying", retries=3).adapter
    responses.post(REFUNDS, **kwargs)
    with pytest.raises(error):
        retrying.refund(payment(provider_reference="op_7"), refund())
    assert len(responses.calls) == 1


def test_a_refund_of_what_cannot_be_refunded_sends_nothing(adapter):
    with responses.RequestsMock():
        with pytest.raises(ProviderValidationError):
            adapter.refund(payment(), refund())  # 1Pay never named the payment
        with pytest.raises(ProviderValidationError):
            adapter.refund(payment(provider_reference="op_7"), refund(amount="0.0001"))


@responses.activate
def test_the_bearer_key_and_the_code_never_reach_the_log(adapter, row):
    responses.post(CONFIRM, status=422, json=refused("invalid_otp", f"bad code 424242 for {API_KEY}"))
    with pytest.raises(ProviderValidationError) as exc:
        adapter.confirm(payment(provider_reference="op_7"), "424242")
    assert API_KEY not in logged(row) and API_KEY not in str(exc.value.provider_message)
    (call,) = IntegrationLog.objects.filter(integration=row)
    assert "424242" not in call.request_body


def test_the_adapter_declares_its_secret_credentials():
    assert OnePay.meta.secret_fields == ("api_key",)
