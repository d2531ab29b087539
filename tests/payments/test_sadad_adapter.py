"""The Sadad adapter alone, its SOAP envelopes answered by a mocked service (`responses`): the
shipped WSDL's operations and fields, faults mapped, lost answers, refunds, secrets out of the log."""

import re
from decimal import Decimal

import pytest
import requests
import responses
from lxml import etree

from integrations.errors import (
    ProviderAuthError,
    ProviderProtocolError,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.models import IntegrationLog
from payments.interface import Method, NextStep, State
from payments.providers.sadad import WSDL, Sadad

from .wallet_support import MERCHANT_ID, PASSWORD, PHONE, USERNAME, logged, payment, refund, wallet_row

URL = "https://sadad.example.test/MerchantService.svc"
NS = "urn:sadad:merchant:payments:1"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(body):
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body>{body}</s:Body>'
            "</s:Envelope>")


def answer(operation, **fields):
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return envelope(f'<{operation}Response xmlns="{NS}">{inner}</{operation}Response>')


def fault(message, code="INVALID_OTP"):
    return envelope(f"<s:Fault><faultcode>s:Client</faultcode><faultstring>{message}</faultstring><detail>"
                    f'<SadadFault xmlns="{NS}"><Code>{code}</Code><Message>{message}</Message></SadadFault>'
                    "</detail></s:Fault>")


def result(operation, status="paid", **extra):
    fields = {"MerchantReference": "ORDER-1", "Status": status, "SessionId": "SD100001", "TransactionId": "T77",
              "Amount": "12.500", "RefundedAmount": "0.000", "Currency": "LYD", "Message": status, **extra}
    return answer(operation, **{k: v for k, v in fields.items() if v is not None})


def xml(status=200, body=""):
    return {"status": status, "body": body, "content_type": "text/xml; charset=utf-8"}


def sent(call):
    """The operation and fields of the envelope that went out."""
    root = etree.fromstring(call.request.body)
    operation = root.find(f"{{{SOAP}}}Body")[0]
    return etree.QName(operation).localname, {etree.QName(c).localname: c.text for c in operation}


@pytest.fixture
def row(db):
    return wallet_row("sadad", URL)


@pytest.fixture
def adapter(row):
    return row.adapter


def with_birth_year(**kwargs):
    return payment(provider_data={"birth_year": "1990"}, **kwargs)


@responses.activate
def test_begin_calls_initiate_payment_with_the_wsdls_fields(adapter):
    responses.post(URL, **xml(body=answer("InitiatePayment", SessionId="SD100001", Status="otp_sent",
                                          ExpiresInSeconds="300", Message="OTP sent")))
    checkout = adapter.begin(with_birth_year(phone="0912345678", amount="12.5"))
    assert (checkout.next_step, checkout.provider_reference) == (NextStep.OTP, "SD100001")
    operation, fields = sent(responses.calls[0])
    assert operation == "InitiatePayment"
    assert fields == {"MerchantId": MERCHANT_ID, "Username": USERNAME, "Password": PASSWORD,
                      "MerchantReference": "ORDER-1", "MobileNumber": PHONE, "BirthYear": "1990",
                      "Amount": "12.500", "Currency": "LYD"}
    assert responses.calls[0].request.headers["SOAPAction"] == f'"{NS}/InitiatePayment"'


@pytest.mark.parametrize("data", [{}, {"birth_year": "90"}, {"birth_year": "1850"}, {"birth_year": "year"}])
def test_sadad_needs_the_payers_birth_year_and_nothing_is_sent_without_it(adapter, data):
    with responses.RequestsMock(), pytest.raises(ProviderValidationError, match="year of birth") as exc:
        adapter.begin(payment(provider_data=data))
    assert exc.value.sent is False


def test_a_planned_wallet_is_off_until_its_row_says_enabled(db):
    off = wallet_row("sadad", URL, enabled=False)
    with responses.RequestsMock(), pytest.raises(ProviderValidationError, match="enabled"):
        off.adapter.begin(with_birth_year())
    assert Sadad.planned is True and Sadad.methods == (Method.SADAD,)


@responses.activate
def test_confirm_sends_the_session_and_code_and_reads_the_payment(adapter):
    responses.post(URL, **xml(body=result("ConfirmPayment")))
    status = adapter.confirm(payment(provider_reference="SD100001"), "123456")
    assert (status.state, status.amount, status.provider_reference) == (State.PAID, Decimal("12.500"), "T77")
    operation, fields = sent(responses.calls[0])
    assert operation == "ConfirmPayment" and fields["SessionId"] == "SD100001" and fields["OTP"] == "123456"
    assert fields["MerchantReference"] == "ORDER-1"


@responses.activate
def test_a_refused_payment_is_failed_with_sadads_words(adapter):
    responses.post(URL, **xml(body=result("ConfirmPayment", "failed", TransactionId=None,
                                          Message="Insufficient balance")))
    status = adapter.confirm(payment(provider_reference="SD100001"), "123456")
    assert status.state == State.FAILED and status.message == "Insufficient balance"


@responses.activate
def test_a_wrong_code_is_a_soap_fault_read_as_a_validation_error_with_sadads_words(adapter):
    responses.post(URL, **xml(500, fault("Wrong one-time code, 2 tries left")))
    with pytest.raises(ProviderValidationError, match="2 tries left") as exc:
        adapter.confirm(payment(provider_reference="SD100001"), "000000")
    assert exc.value.sent is True


@responses.activate
def test_an_authentication_fault_is_an_auth_error(adapter):
    responses.post(URL, **xml(500, fault("Authentication failed: invalid merchant, username or password",
                                         "AUTHENTICATION_FAILED")))
    with pytest.raises(ProviderAuthError):
        adapter.status(payment())


@pytest.mark.parametrize("kwargs", [
    {"body": requests.exceptions.ReadTimeout("read timed out")},
    {"status": 502, "body": "<html>Bad gateway</html>", "content_type": "text/html"},
    {"status": 500, "body": "<html>Internal Server Error</html>", "content_type": "text/html"},
    xml(body=envelope("<Oops")),
    xml(body=result("ConfirmPayment", "paid", TransactionId=None)),
    xml(body=result("ConfirmPayment", "otp_sent")),
    xml(body=result("ConfirmPayment", "paid", MerchantReference="ORDER-2")),
], ids=["timeout", "502", "500-html", "truncated", "paid-no-transaction", "still-pending", "another-payment"])
@responses.activate
def test_a_confirm_whose_answer_is_lost_or_unreadable_is_sent_once_and_unknown(db, kwargs):
    retrying = wallet_row("sadad", URL, name="retrying", retries=3).adapter
    responses.post(URL, **kwargs)
    with pytest.raises(UnknownOutcome) as exc:
        retrying.confirm(payment(provider_reference="SD100001"), "123456")
    assert exc.value.sent is True and len(responses.calls) == 1


@pytest.mark.parametrize(("status", "ours"), [("otp_sent", State.PENDING), ("paid", State.PAID),
                                              ("expired", State.EXPIRED), ("refunded", State.REFUNDED)])
@responses.activate
def test_status_asks_get_payment_status_by_our_reference(adapter, status, ours):
    responses.post(URL, **xml(body=result("GetPaymentStatus", status)))
    assert adapter.status(payment()).state == ours
    assert sent(responses.calls[0]) == ("GetPaymentStatus", {"MerchantId": MERCHANT_ID, "Username": USERNAME,
                                                             "Password": PASSWORD, "MerchantReference": "ORDER-1"})


@responses.activate
def test_a_reference_sadad_never_saw_is_a_failed_payment_and_the_health_check_passes(adapter):
    responses.post(URL, **xml(body=answer("GetPaymentStatus", MerchantReference="ORDER-1", Status="NOT_FOUND")))
    status = adapter.status(payment())
    assert status.state == State.FAILED and status.details == {"not_found": True}
    adapter.check_health()


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"status": 503, "body": "busy", "content_type": "text/plain"}, ProviderUnavailable),
    ({"status": 200, "body": "<html>login</html>", "content_type": "text/html"}, ProviderProtocolError),
    (xml(body=result("GetPaymentStatus", "vanished")), ProviderProtocolError),
])
@responses.activate
def test_a_status_read_is_retried_once_down_and_garbage_is_an_error(db, kwargs, error):
    retrying = wallet_row("sadad", URL, name="retrying", retries=1, backoff=0).adapter
    responses.post(URL, **kwargs)
    responses.post(URL, **kwargs)
    with pytest.raises(error):
        retrying.status(payment())


@responses.activate
def test_a_refund_is_sent_once_by_our_references_in_dinars(adapter):
    responses.post(URL, **xml(body=answer("RefundPayment", RefundId="R5", Status="refunded", Amount="5.000")))
    result_ = adapter.refund(payment(), refund(amount="5"))
    assert (result_.state, result_.provider_reference) == ("refunded", "R5")
    operation, fields = sent(responses.calls[0])
    assert operation == "RefundPayment" and fields["MerchantReference"] == "ORDER-1"
    assert fields["RefundReference"] == "REFUND-1" and fields["Amount"] == "5.000"


@responses.activate
def test_a_refund_beyond_what_is_left_is_refused_and_a_lost_one_is_unknown(adapter):
    responses.post(URL, **xml(500, fault("Refund amount exceeds the remaining 2.000 LYD", "REFUND_EXCEEDS")))
    with pytest.raises(ProviderValidationError, match="exceeds"):
        adapter.refund(payment(), refund())
    responses.replace(responses.POST, URL, body=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(UnknownOutcome):
        adapter.refund(payment(), refund())


@responses.activate
def test_the_password_and_the_code_never_reach_the_log_even_when_echoed(adapter, row):
    responses.post(URL, **xml(500, fault(f"Wrong code 313131 in request {PASSWORD}")))
    with pytest.raises(ProviderValidationError) as exc:
        adapter.confirm(payment(provider_reference="SD100001"), "313131")
    assert PASSWORD not in logged(row) and PASSWORD not in str(exc.value)
    (call,) = IntegrationLog.objects.filter(integration=row)
    assert call.transport == "soap" and call.operation == "ConfirmPayment"
    assert re.search(r"<(\w+:)?OTP>\[REDACTED\]</", call.request_body), call.request_body


def test_the_wsdl_is_shipped_and_declares_the_four_operations():
    text = WSDL.read_text()
    for operation in ("InitiatePayment", "ConfirmPayment", "GetPaymentStatus", "RefundPayment"):
        assert f'<operation name="{operation}">' in text
    assert Sadad.meta.secret_fields == ("password",)
