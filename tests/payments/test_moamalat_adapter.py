"""The Moamalat adapter alone: hashes against the public test values, the Lightbox configuration,
notifications, FilterTransactions and RefundTransaction against a mocked gateway (`responses`)."""

from datetime import UTC, datetime
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
from payments import moamalat_hash
from payments.interface import NextStep, State
from payments.providers.moamalat import Moamalat

from .moamalat_support import (
    API,
    MID,
    NOTIFICATION_KEY,
    SECURE_KEY,
    TID,
    body_of,
    fake_payment,
    independent_hash,
    local_now,
    moamalat_row,
    notification,
)

FILTER = API + "FilterTransactions"
REFUND = API + "RefundTransaction"


@pytest.fixture
def adapter(db):
    return moamalat_row().adapter


# --- SecureHash -------------------------------------------------------------------------------------
def test_the_checkout_hash_of_the_public_test_terminal_is_a_pinned_known_vector():
    fields = {"MerchantReference": "ORDER-1", "TerminalId": TID, "Amount": 1000,
              "DateTimeLocalTrxn": "202611250830", "MerchantId": MID}
    # Derived once with `openssl dgst -sha256 -mac HMAC -macopt hexkey:<the public key>` over the
    # sorted text below, and pinned.
    expected = "49086A0140F27D98BD1291014B039DF88F2998C76A384407AC1A1B31538FC542"
    assert moamalat_hash.signed_text(fields) == (
        "Amount=1000&DateTimeLocalTrxn=202611250830&MerchantId=10081014649&MerchantReference=ORDER-1&TerminalId=99179395")
    assert moamalat_hash.secure_hash(SECURE_KEY, fields) == expected
    assert independent_hash(SECURE_KEY, moamalat_hash.signed_text(fields)) == expected


def test_the_notification_hash_covers_amount_currency_time_and_terminal_only():
    fields = {"Amount": "1000", "Currency": "434", "DateTimeLocalTrxn": "20220903014410", "MerchantId": MID,
              "TerminalId": TID}
    text = "Amount=1000&Currency=434&DateTimeLocalTrxn=20220903014410&MerchantId=10081014649&TerminalId=99179395"
    expected = independent_hash(NOTIFICATION_KEY, text)
    assert moamalat_hash.hash_matches(NOTIFICATION_KEY, fields, expected)
    assert moamalat_hash.hash_matches(NOTIFICATION_KEY, fields, expected.lower())
    assert not moamalat_hash.hash_matches(SECURE_KEY, fields, expected)
    assert not moamalat_hash.hash_matches(NOTIFICATION_KEY, {**fields, "Amount": "1001"}, expected)
    assert not moamalat_hash.hash_matches(NOTIFICATION_KEY, fields, "é" + expected[1:])


@pytest.mark.parametrize("key", ["", "zz", "ABC", "39 63"])
def test_a_key_that_is_not_hex_is_refused_as_such(key):
    with pytest.raises(moamalat_hash.BadKey):
        moamalat_hash.secure_hash(key, {"A": "1"})


# --- checkout ---------------------------------------------------------------------------------------
def test_begin_calls_nothing_and_sends_the_buyer_to_the_lightbox(adapter):
    with responses.RequestsMock():  # any call would fail the test
        checkout = adapter.begin(fake_payment())
    assert checkout.next_step == NextStep.LIGHTBOX and checkout.state == State.PENDING
    assert checkout.data == {"environment": "test"}


def test_the_lightbox_configuration_is_in_dirhams_and_signed_with_the_secure_key(adapter):
    when = datetime(2026, 11, 25, 6, 30, tzinfo=UTC)
    config = adapter.lightbox_configuration(fake_payment("ORDER-7", "12.345"), when=when)
    assert config["AmountTrxn"] == 12345 and config["TrxDateTime"] == "202611250830"  # Tripoli is UTC+2
    assert (config["MID"], config["TID"], config["MerchantReference"]) == (MID, TID, "ORDER-7")
    text = f"Amount=12345&DateTimeLocalTrxn=202611250830&MerchantId={MID}&MerchantReference=ORDER-7&TerminalId={TID}"
    assert config["SecureHash"] == independent_hash(SECURE_KEY, text)


@pytest.mark.parametrize(("amount", "dirhams"), [("0.500", 500), ("1.000", 1000), ("50000.000", 50000000),
                                                 ("0.001", 1)])
def test_amounts_become_whole_dirhams(adapter, amount, dirhams):
    assert adapter.lightbox_configuration(fake_payment(amount=amount))["AmountTrxn"] == dirhams


def test_a_payment_in_another_currency_than_the_terminals_is_refused_before_any_call(adapter, db):
    with pytest.raises(ProviderValidationError, match="LYD") as exc:
        adapter.begin(fake_payment(amount="10.00", currency="USD"))
    assert exc.value.sent is False
    usd = moamalat_row(name="usd", currency="USD").adapter
    assert usd.lightbox_configuration(fake_payment(amount="1.50", currency="USD"))["AmountTrxn"] == 150
    with pytest.raises(ProviderValidationError):
        usd.begin(fake_payment(amount="1.505", currency="USD"))


def test_the_environment_chooses_the_lightbox_script_and_refuses_a_mismatched_gateway(db):
    test_row = moamalat_row(name="t")
    assert test_row.adapter.lightbox_url == "https://tnpg.moamalat.net:6006/js/lightbox.js"
    prod = moamalat_row(name="p", base_url="https://npg.moamalat.net/cube/paylink.svc/api", environment="production")
    assert prod.adapter.lightbox_url == "https://npg.moamalat.net:6006/js/lightbox.js"
    assert prod.adapter.api_base == "https://npg.moamalat.net/cube/paylink.svc/api/"
    custom = moamalat_row(name="c", lightbox_url="https://cdn.example.test/lightbox.js")
    assert custom.adapter.lightbox_url == "https://cdn.example.test/lightbox.js"
    mixed = moamalat_row(name="m", environment="production")  # production, pointed at the test gateway
    with responses.RequestsMock(), pytest.raises(ProviderValidationError, match="test") as exc:
        mixed.adapter.status(fake_payment())
    assert exc.value.sent is False
    with pytest.raises(ProviderValidationError):
        moamalat_row(name="x", environment="staging").adapter.lightbox_url  # noqa: B018


# --- notifications ----------------------------------------------------------------------------------
def test_a_genuine_notification_is_accepted_whatever_the_case_of_its_hash(adapter):
    body = notification()
    assert adapter.notification_refusal(body) == ""
    assert adapter.notification_refusal({**body, "SecureHash": body["SecureHash"].lower()}) == ""


@pytest.mark.parametrize(("change", "reason"), [
    (lambda b: {**b, "SecureHash": "0" * 64}, "SecureHash mismatch"),
    (lambda b: {**b, "Amount": "99999"}, "SecureHash mismatch"),
    (lambda b: {**b, "Currency": "840"}, "SecureHash mismatch"),
    (lambda b: {k: v for k, v in b.items() if k != "SecureHash"}, "no SecureHash"),
    (lambda b: notification(key=SECURE_KEY), "SecureHash mismatch"),
    (lambda b: notification(tid="11111111"), "another terminal"),
    (lambda b: notification(when=local_now(-2 * 86400).strftime("%Y%m%d%H%M%S")), "stale"),
    (lambda b: notification(when=local_now(3600).strftime("%Y%m%d%H%M%S")), "from the future"),
    (lambda b: notification(when="2026-11-25"), "unreadable DateTimeLocalTrxn"),
], ids=["forged", "amount-changed", "currency-changed", "unsigned", "checkout-key", "other-terminal", "stale",
        "future", "bad-time"])
def test_forged_tampered_and_stale_notifications_are_refused(adapter, change, reason):
    assert adapter.notification_refusal(change(notification())) == reason


def test_a_notification_key_that_is_not_hex_refuses_everything_and_says_why(db, caplog):
    bad = moamalat_row(name="bad")
    bad.credentials = {**bad.credentials, "notification_key": "not-hex"}
    assert bad.adapter.notification_refusal(notification()) == "unusable notification key"
    assert "not hex" in caplog.text


@pytest.mark.parametrize(("txn_type", "action", "kind", "state"), [
    (1, "00", "sale", State.PAID), (1, "51", "sale", State.FAILED), (2, "00", "refund", State.REFUNDED),
    ("3", "00", "void_sale", State.CANCELLED), (4, "00", "void_refund", State.PAID), (2, "05", "refund", State.FAILED),
])
def test_txn_type_and_action_code_are_mapped(adapter, txn_type, action, kind, state):
    parsed = adapter.parse_notification(notification(txn_type=txn_type, action=action, amount="12345"))
    assert (parsed.kind, parsed.status.state) == (kind, state)
    assert parsed.status.amount == Decimal("12.345") and parsed.status.currency == "LYD"
    assert parsed.merchant_reference == "ORDER-1" and parsed.status.provider_reference == "1233317"
    assert parsed.status.network_reference == "224601434990" and parsed.occurred_at.tzinfo is not None


def test_a_card_number_sent_in_full_is_masked_before_it_is_kept(adapter):
    parsed = adapter.parse_notification(notification(PayerAccount="4111111111111111"))
    assert parsed.status.details["card"] == "411111XXXXXX1111"


@pytest.mark.parametrize("change", [{"TxnType": 9}, {"MerchantReference": ""}, {"Amount": "ten"},
                                    {"Currency": "999"}])
def test_what_is_not_a_notification_is_a_value_error(adapter, change):
    with pytest.raises(ValueError):
        adapter.parse_notification({**notification(), **change})


def test_the_event_id_is_stable_and_the_answer_is_what_moamalat_expects(adapter):
    body = notification()
    assert adapter.webhook_event_id(body) == adapter.webhook_event_id(dict(body))
    assert adapter.webhook_event_id(body) != adapter.webhook_event_id(notification(txn_type=2))
    assert adapter.webhook_ack(False) == adapter.webhook_ack(True) == {"Message": "Success", "Success": True}


# --- FilterTransactions -----------------------------------------------------------------------------
def filter_answer(*rows):
    return {"Message": None, "Success": True, "TotalCountAllTransaction": len(rows),
            "Transactions": [{"Date": "25/11/2026", "DateTransactions": list(rows)}] if rows else []}


def sale(status="Approved", amount="10000", ref="1233317"):
    return {"TransType": "Sale", "Status": status, "AmountTrxn": amount, "Currency": "LYD", "TransactionId": ref,
            "RRN": "224601434990", "CardNo": "639499XXXXXX2740", "MerchantReference": "ORDER-1"}


@responses.activate
def test_status_asks_filter_transactions_signed_with_the_secure_key(adapter):
    responses.post(FILTER, json=filter_answer(sale()))
    status = adapter.status(fake_payment())
    assert status.state == State.PAID and status.amount == Decimal("10.000")
    assert status.provider_reference == "1233317" and status.network_reference == "224601434990"
    sent = body_of(responses.calls[0])
    assert (sent["MerchantId"], sent["TerminalId"], sent["MerchantReference"]) == (MID, TID, "ORDER-1")
    text = f"DateTimeLocalTrxn={sent['DateTimeLocalTrxn']}&MerchantId={MID}&TerminalId={TID}"
    assert sent["SecureHash"] == independent_hash(SECURE_KEY, text)
    assert SECURE_KEY not in responses.calls[0].request.body.decode()


@pytest.mark.parametrize(("answer", "state"), [
    (filter_answer(), State.PENDING),
    (filter_answer(sale("Declined")), State.FAILED),
    (filter_answer(sale("Declined", ref="1"), sale("Approved", ref="2")), State.PAID),
    (filter_answer(sale(ref="1"), sale(ref="2")), State.UNKNOWN),
    ({**filter_answer(sale(amount="10.000")), "TotalCountAllTransaction": "1"}, State.PAID),
])
@responses.activate
def test_filter_answers_are_read_as_the_protocol_says(adapter, answer, state):
    responses.post(FILTER, json=answer)
    status = adapter.status(fake_payment())
    assert status.state == state
    if state == State.PAID:
        assert status.amount == Decimal("10.000")


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"body": "<html><body><h1>Service Unavailable</h1></body></html>", "content_type": "text/html"},
     ProviderProtocolError),
    ({"body": "\x00\x01garbage", "content_type": "application/octet-stream"}, ProviderProtocolError),
    ({"json": [1, 2, 3]}, ProviderProtocolError),
    ({"json": {"Success": True, "TotalCountAllTransaction": "many"}}, ProviderProtocolError),
    ({"json": {"Success": False, "Message": "Invalid Secure Hash"}}, ProviderValidationError),
    ({"status": 503, "body": "busy"}, ProviderUnavailable),
    ({"status": 401, "body": "<html>denied</html>"}, ProviderAuthError),
])
@responses.activate
def test_html_garbage_and_refusals_from_the_gateway_are_errors_never_a_status(adapter, kwargs, error):
    responses.post(FILTER, **kwargs)
    with pytest.raises(error):
        adapter.status(fake_payment())


@responses.activate
def test_a_gateway_echoing_the_secure_key_never_gets_it_stored_or_raised(adapter):
    responses.post(FILTER, status=400, content_type="text/html",
                   body=f"<html><body>Bad request: key {SECURE_KEY} / {NOTIFICATION_KEY}</body></html>")
    with pytest.raises(ProviderProtocolError) as exc:
        adapter.status(fake_payment())
    stored = "".join(IntegrationLog.objects.values_list("response_body", flat=True))
    assert stored and SECURE_KEY not in stored and NOTIFICATION_KEY not in stored
    assert SECURE_KEY not in str(exc.value)


# --- RefundTransaction ------------------------------------------------------------------------------
@responses.activate
def test_a_partial_refund_sends_the_system_reference_and_dirhams(adapter):
    responses.post(REFUND, json={"Message": "Approved", "Success": True, "RefNumber": "1233400"})
    payment = fake_payment(provider_reference="1233317")
    result = adapter.refund(payment, fake_payment(amount="2.500"))
    assert result.state == "refunded" and result.provider_reference == "1233400"
    sent = body_of(responses.calls[0])
    assert sent["SystemReference"] == "1233317" and sent["AmountTrxn"] == 2500 and "NetworkReference" not in sent
    text = f"DateTimeLocalTrxn={sent['DateTimeLocalTrxn']}&MerchantId={MID}&TerminalId={TID}"
    assert sent["SecureHash"] == independent_hash(SECURE_KEY, text)


@responses.activate
def test_a_refund_without_system_reference_uses_the_network_reference(adapter):
    responses.post(REFUND, json={"Success": True, "RefNumber": "9"})
    adapter.refund(fake_payment(provider_data={"network_reference": "224601434990"}), fake_payment(amount="1"))
    sent = body_of(responses.calls[0])
    assert sent["NetworkReference"] == "224601434990" and "SystemReference" not in sent


def test_a_payment_the_gateway_never_named_cannot_be_refunded_and_nothing_is_sent(adapter):
    with responses.RequestsMock(), pytest.raises(ProviderValidationError) as exc:
        adapter.refund(fake_payment(), fake_payment(amount="1"))
    assert exc.value.sent is False


@responses.activate
def test_a_refused_refund_is_a_failed_refund_with_the_gateways_words(adapter):
    responses.post(REFUND, json={"Message": "Amount exceeds the remaining amount", "Success": False})
    result = adapter.refund(fake_payment(provider_reference="1"), fake_payment(amount="1"))
    assert result.state == "failed" and "exceeds" in result.message


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"body": requests.exceptions.ReadTimeout("read timed out")}, UnknownOutcome),
    ({"status": 503, "body": "busy"}, ProviderUnavailable),
    ({"status": 502, "body": "<html>Bad gateway</html>"}, ProviderUnavailable),
    ({"body": "<html>oops</html>", "content_type": "text/html"}, ProviderProtocolError),
    ({"json": {"Success": True}}, UnknownOutcome),
    ({"json": {"Message": "?"}}, UnknownOutcome),
])
@responses.activate
def test_a_refund_whose_outcome_is_unclear_is_sent_once_and_reported_as_sent(db, kwargs, error):
    retrying = moamalat_row(name="retrying", retries=3).adapter  # retries allowed for reads, never here
    responses.post(REFUND, **kwargs)
    with pytest.raises(error) as exc:
        retrying.refund(fake_payment(provider_reference="1"), fake_payment(amount="1"))
    assert exc.value.sent is True
    assert len(responses.calls) == 1


@responses.activate
def test_a_read_is_retried_when_the_gateway_is_briefly_down(db):
    reader = moamalat_row(name="reader", retries=2).adapter
    responses.post(FILTER, status=503, body="busy")
    responses.post(FILTER, json=filter_answer(sale()))
    assert reader.status(fake_payment()).state == State.PAID
    assert len(responses.calls) == 2


def test_the_adapter_declares_its_secret_credentials():
    assert Moamalat.meta.secret_fields == ("secure_key", "notification_key")
    assert Moamalat.meta.kind == "payment"
