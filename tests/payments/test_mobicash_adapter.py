"""The MobiCash adapter alone, against a mocked wallet (`responses`): the wire format, the planned
switch, error mapping, a lost confirm, and the key kept out of the log."""

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
from payments.interface import Method, NextStep, NotSupported, State
from payments.providers.mobicash import MobiCash
from payments.providers.wallet import e164

from .wallet_support import API_KEY, MERCHANT_ID, PHONE, logged, payment, refund, wallet_row

BASE = "https://mobicash.example.test/merchant/v1/"
VERIFY, CONFIRM, STATUS = BASE + "transaction/verify", BASE + "transaction/confirm", BASE + "transaction/status"


def ok(**result):
    return {"status": "success", "result": result}


def refused(code, message):
    return {"status": "error", "error": {"code": code, "message": message}}


def paid(**extra):
    return ok(process_id="MC100001", transaction_id="T555", state="paid", amount="12.500", currency="LYD",
              message="Paid", **extra)


@pytest.fixture
def row(db):
    return wallet_row("mobicash", BASE)


@pytest.fixture
def adapter(row):
    return row.adapter


def sent(call):
    return json.loads(call.request.body)


@responses.activate
def test_begin_sends_verify_with_e164_phone_amount_as_text_and_our_reference(adapter):
    responses.post(VERIFY, json=ok(process_id="MC100001", state="otp_sent", expires_in=300))
    checkout = adapter.begin(payment(phone="091 234 5678", amount="12.5"))
    assert checkout.next_step == NextStep.OTP and checkout.state == State.PENDING
    assert checkout.provider_reference == "MC100001" and PHONE in checkout.instructions
    assert sent(responses.calls[0]) == {"merchant_id": MERCHANT_ID, "mobile_number": PHONE, "amount": "12.500",
                                        "currency": "LYD", "invoice_no": "ORDER-1"}
    assert responses.calls[0].request.headers["X-API-KEY"] == API_KEY


def test_a_planned_wallet_is_off_until_its_row_says_enabled(db):
    for configuration in ({"enabled": None}, {"enabled": False}, {"enabled": "true"}):
        off = wallet_row("mobicash", BASE, name=f"off-{configuration['enabled']}", enabled=configuration["enabled"])
        with responses.RequestsMock(), pytest.raises(ProviderValidationError, match="enabled") as exc:
            off.adapter.begin(payment())
        assert exc.value.sent is False
    assert MobiCash.planned is True and MobiCash.methods == (Method.MOBICASH,)


@pytest.mark.parametrize(("change", "words"), [
    ({"phone": "+21891234567"}, "mobile"), ({"phone": "+201001234567"}, "mobile"), ({"phone": ""}, "mobile"),
    ({"currency": "USD"}, "LYD"), ({"amount": "0"}, "cannot"), ({"amount": "1.0005"}, "cannot"),
])
def test_what_mobicash_cannot_take_is_refused_before_any_call(adapter, change, words):
    with responses.RequestsMock(), pytest.raises(ProviderValidationError, match=words) as exc:
        adapter.begin(payment(**change))
    assert exc.value.sent is False


@pytest.mark.parametrize(("typed", "e164_form"), [
    ("0912345678", "+218912345678"), ("218 92-123-4567", "+218921234567"), ("00218941234567", "+218941234567"),
    ("+218 95 123 4567", "+218951234567"), ("0812345678", None), ("+2189123456789", None), ("abc", None),
])
def test_libyan_mobile_numbers_are_read_in_the_forms_buyers_type(typed, e164_form):
    assert e164(typed) == e164_form


@responses.activate
def test_a_verify_is_retried_when_the_wallet_is_briefly_down_since_the_reference_makes_it_one_session(db):
    retrying = wallet_row("mobicash", BASE, name="retrying", retries=2).adapter
    responses.post(VERIFY, status=503, body="busy")
    responses.post(VERIFY, json=ok(process_id="MC100001", state="otp_sent"))
    assert retrying.begin(payment()).provider_reference == "MC100001"
    assert [sent(c)["invoice_no"] for c in responses.calls] == ["ORDER-1", "ORDER-1"]


@responses.activate
def test_confirm_sends_the_code_once_and_reads_a_payment(adapter):
    responses.post(CONFIRM, json=paid())
    status = adapter.confirm(payment(provider_reference="MC100001"), " 123456 ")
    assert (status.state, status.amount, status.provider_reference) == (State.PAID, Decimal("12.500"), "T555")
    assert sent(responses.calls[0]) == {"merchant_id": MERCHANT_ID, "process_id": "MC100001", "invoice_no": "ORDER-1",
                                        "otp": "123456"}


@responses.activate
def test_a_refused_payment_is_failed_with_the_wallets_words(adapter):
    responses.post(CONFIRM, json=ok(process_id="MC100001", state="failed", amount="12.500", transaction_id="",
                                    message="Insufficient balance"))
    status = adapter.confirm(payment(provider_reference="MC100001"), "123456")
    assert status.state == State.FAILED and status.message == "Insufficient balance"


@responses.activate
def test_a_wrong_code_is_a_validation_error_with_the_wallets_words(adapter):
    responses.post(CONFIRM, status=400, json=refused("INVALID_OTP", "Wrong one-time code, 2 tries left"))
    with pytest.raises(ProviderValidationError, match="2 tries left") as exc:
        adapter.confirm(payment(provider_reference="MC100001"), "000000")
    assert exc.value.sent is True and exc.value.payload["code"] == "INVALID_OTP"


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"body": requests.exceptions.ReadTimeout("read timed out")}, UnknownOutcome),
    ({"body": requests.exceptions.ConnectionError("reset by peer")}, UnknownOutcome),
    ({"status": 502, "body": "<html>Bad gateway</html>"}, UnknownOutcome),
    ({"status": 503, "body": "busy"}, UnknownOutcome),
    ({"body": "<html>oops</html>", "content_type": "text/html"}, UnknownOutcome),
    ({"json": ok(state="paid", amount="12.500")}, UnknownOutcome),  # paid, but no transaction
    ({"json": ok(state="otp_sent")}, UnknownOutcome),
    ({"json": {"status": "success"}}, UnknownOutcome),
    ({"status": 401, "json": refused("INVALID_API_KEY", "Invalid merchant or API key")}, ProviderAuthError),
])
@responses.activate
def test_a_confirm_whose_answer_is_lost_is_sent_once_and_its_outcome_unknown(db, kwargs, error):
    retrying = wallet_row("mobicash", BASE, name="retrying", retries=3).adapter  # reads retried, never this
    responses.post(CONFIRM, **kwargs)
    with pytest.raises(error) as exc:
        retrying.confirm(payment(provider_reference="MC100001"), "123456")
    assert exc.value.sent is not False and len(responses.calls) == 1


def test_a_payment_never_begun_cannot_be_confirmed_and_nothing_is_sent(adapter):
    with responses.RequestsMock(), pytest.raises(ProviderValidationError) as exc:
        adapter.confirm(payment(), "123456")
    assert exc.value.sent is False


@pytest.mark.parametrize(("state", "ours"), [("otp_sent", State.PENDING), ("paid", State.PAID),
                                             ("failed", State.FAILED), ("expired", State.EXPIRED)])
@responses.activate
def test_status_asks_by_our_reference_and_maps_the_wallets_states(adapter, state, ours):
    responses.get(STATUS, json=ok(process_id="MC100001", state=state, amount="12.500", transaction_id="T1"))
    assert adapter.status(payment()).state == ours
    assert responses.calls[0].request.params == {"merchant_id": MERCHANT_ID, "invoice_no": "ORDER-1"}


@responses.activate
def test_a_reference_the_wallet_never_saw_is_a_failed_payment(adapter):
    responses.get(STATUS, status=404, json=refused("NOT_FOUND", "No payment for this invoice_no"))
    status = adapter.status(payment())
    assert status.state == State.FAILED and status.details == {"not_found": True}


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"body": "<html><body>Maintenance</body></html>", "content_type": "text/html"}, ProviderProtocolError),
    ({"body": '{"status": "success", "result": {', "content_type": "application/json"}, ProviderProtocolError),
    ({"json": ok(state="teleported")}, ProviderProtocolError),
    ({"json": [1, 2]}, ProviderProtocolError),
    ({"status": 503, "body": "busy"}, ProviderUnavailable),
    ({"status": 403, "body": "<html>denied</html>"}, ProviderAuthError),
])
@responses.activate
def test_html_garbage_and_outages_are_errors_never_a_status(adapter, kwargs, error):
    responses.get(STATUS, **kwargs)
    with pytest.raises(error):
        adapter.status(payment())


@responses.activate
def test_the_api_key_and_the_code_never_reach_the_log_even_when_echoed(adapter, row):
    responses.post(CONFIRM, status=400, json=refused("INVALID_OTP", f"code 654321 wrong for key {API_KEY}"))
    with pytest.raises(ProviderValidationError) as exc:
        adapter.confirm(payment(provider_reference="MC100001"), "654321")
    stored = logged(row)
    assert "MC100001" in stored and API_KEY not in stored
    (call,) = IntegrationLog.objects.filter(integration=row)
    assert "654321" not in call.request_body and "[REDACTED]" in call.request_body  # the code, by its name
    assert API_KEY not in str(exc.value) and API_KEY not in (exc.value.provider_message or "")


def test_mobicash_takes_no_refund_through_its_api(adapter):
    with responses.RequestsMock(), pytest.raises(NotSupported):
        adapter.refund(payment(provider_reference="MC100001"), refund())


def test_the_adapter_declares_its_secret_credentials():
    assert MobiCash.meta.secret_fields == ("api_key",)
    assert MobiCash.meta.kind == "payment"


def test_a_wallet_payment_expires_in_minutes_as_its_row_says(adapter, db):
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert adapter.expiry(now) == now + timedelta(seconds=600)
    quick = wallet_row("mobicash", BASE, name="quick", expiry_s=120).adapter
    assert quick.expiry(now) == now + timedelta(seconds=120)
