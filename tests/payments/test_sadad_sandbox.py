"""Sadad over real SOAP against its simulator (live_server): zeep's envelopes parsed by the simulator,
its answers and SOAP Faults read back by zeep, the WSDL it serves, refunds, lost answers and faults."""

import time

import pytest
import requests
from lxml import etree

from integrations.errors import (
    ProviderAuthError,
    ProviderProtocolError,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.sandbox import set_fault
from payments.interface import Method, NextStep, State

from .wallet_support import (
    PASSWORD,
    begin_and_keep,
    logged,
    model_payment,
    payment,
    refund,
    sandbox_row,
    sms_codes,
    wrong,
)

CODE = "sadad"
SERVICE = "/sandbox/payment/sadad/MerchantService.svc"


@pytest.fixture
def row(db, live_server):
    return sandbox_row(live_server, CODE, timeout=2)


@pytest.fixture
def adapter(row):
    return row.adapter


def ours(**kwargs):
    return payment(provider_data={"birth_year": "1988"}, **kwargs)


def begun(adapter, **kwargs):
    checkout = adapter.begin(ours(**kwargs))
    assert checkout.next_step == NextStep.OTP and checkout.provider_reference.startswith("SD")
    return ours(provider_reference=checkout.provider_reference, **kwargs)


def test_a_payment_is_paid_over_soap_with_the_texted_code_then_refunded(adapter, live_server, row):
    started = begun(adapter)
    (code,) = sms_codes(live_server, CODE)
    with pytest.raises(ProviderValidationError, match="2 tries left"):
        adapter.confirm(started, wrong(code))
    status = adapter.confirm(started, code)
    assert status.state == State.PAID and str(status.amount) == "12.500" and status.provider_reference
    assert adapter.status(started).state == State.PAID
    assert adapter.confirm(started, code).provider_reference == status.provider_reference  # the same payment
    assert adapter.refund(started, refund("REFUND-1", "2.500")).state == "refunded"
    assert adapter.refund(started, refund("REFUND-1", "2.500")).state == "refunded"  # once, by its reference
    with pytest.raises(ProviderValidationError, match="exceeds the remaining"):
        adapter.refund(started, refund("REFUND-2", "10.001"))
    assert adapter.status(started).details == {"refunded_amount": "2.500"}
    assert PASSWORD not in logged(row) and f">{code}<" not in logged(row)


def test_initiate_sent_again_is_the_same_session_and_a_paid_reference_is_refused(adapter, live_server):
    first = begun(adapter)
    assert begun(adapter).provider_reference == first.provider_reference
    codes = sms_codes(live_server, CODE)
    assert len(codes) == 2 and codes[0] == codes[1]
    adapter.confirm(first, codes[0])
    with pytest.raises(ProviderValidationError, match="already paid"):
        adapter.begin(ours())


def test_an_empty_wallet_fails_the_payment_and_an_unknown_reference_is_not_found(adapter, live_server):
    empty = begun(adapter, phone="+218920000000")
    status = adapter.confirm(empty, sms_codes(live_server, CODE, "+218920000000")[0])
    assert status.state == State.FAILED and status.message == "Insufficient balance"
    assert adapter.status(ours(reference="NEVER-SENT")).details == {"not_found": True}


def test_wrong_credentials_are_an_authentication_fault(row, live_server):
    stranger = sandbox_row(live_server, CODE, name="stranger",
                           creds={"merchant_id": "EISHRO-0042", "username": "eishro-api", "password": "pw-wrong"})
    with pytest.raises(ProviderAuthError, match="Authentication failed"):
        stranger.adapter.begin(ours())


@pytest.mark.parametrize("fault", [{"status": 502}, {"hang_s": 3}], ids=["proxy-502", "timeout"])
def test_a_confirm_lost_after_sadad_charged_is_unknown_and_status_says_paid(adapter, live_server, fault):
    started = begun(adapter)
    (code,) = sms_codes(live_server, CODE)
    set_fault("payment", CODE, after=True, times=1, **fault)
    with pytest.raises(UnknownOutcome):
        adapter.confirm(started, code)
    assert adapter.status(started).state == State.PAID


@pytest.mark.parametrize(("fault", "error"), [
    ({"malformed": True}, ProviderProtocolError), ({"html": True}, ProviderProtocolError),
    ({"status": 503}, ProviderUnavailable), ({"status": 500}, ProviderUnavailable),
])
def test_a_misbehaving_service_is_an_error_never_a_status(adapter, fault, error):
    set_fault("payment", CODE, **fault)
    with pytest.raises(error):
        adapter.status(ours())


def test_the_simulator_serves_the_wsdl_at_its_own_address_and_refuses_what_is_not_soap(live_server):
    wsdl = requests.get(f"{live_server.url}{SERVICE}?wsdl", timeout=5)
    assert wsdl.status_code == 200 and f'location="{live_server.url}{SERVICE}"' in wsdl.text
    for body in (b"not xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY e 'boom'>]><x>&e;</x>",
                 b"<Envelope><Body/></Envelope>"):
        answer = requests.post(f"{live_server.url}{SERVICE}", data=body, timeout=5,
                               headers={"Content-Type": "text/xml; charset=utf-8"})
        assert answer.status_code == 500 and b"boom" not in answer.content
        root = etree.fromstring(answer.content)
        assert root.find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault") is not None


def test_the_health_probe_is_a_status_read_bounded_by_the_rounds_time(adapter):
    adapter.probe_health(1.0)
    set_fault("payment", CODE, hang_s=3)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        adapter.probe_health(1.0)
    assert time.monotonic() - started < 1.9  # the round's 1 s, not the row's 2 s, and no retry


def test_the_adapter_reads_a_real_payment_row_with_the_birth_year_in_its_provider_data(
        adapter, live_server, merchant, row):
    ours = model_payment(merchant, row, Method.SADAD, provider_data={"birth_year": 1979})
    begin_and_keep(adapter, ours)
    assert adapter.confirm(ours, sms_codes(live_server, CODE)[0]).state == State.PAID
