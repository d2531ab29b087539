"""MobiCash over real HTTP against its simulator (live_server): the whole flow with the code read
from the simulator's SMS inbox, idempotency of a repeated verify and confirm, and injected faults."""

import pytest

from integrations.errors import (
    ProviderAuthError,
    ProviderProtocolError,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.sandbox import set_fault
from payments.interface import Method, NextStep, State

from .wallet_support import PHONE, begin_and_keep, model_payment, payment, sandbox_row, sms_codes, wrong

CODE = "mobicash"


@pytest.fixture
def row(db, live_server):
    return sandbox_row(live_server, CODE)


@pytest.fixture
def adapter(row):
    return row.adapter


def begun(adapter, **kwargs):
    checkout = adapter.begin(payment(**kwargs))
    assert checkout.next_step == NextStep.OTP and checkout.provider_reference.startswith("MC")
    return payment(provider_reference=checkout.provider_reference, **kwargs)


def test_a_payment_is_begun_confirmed_with_the_texted_code_and_paid_once(adapter, live_server):
    ours = begun(adapter)
    (code,) = sms_codes(live_server, CODE)
    with pytest.raises(ProviderValidationError, match="2 tries left"):
        adapter.confirm(ours, wrong(code))
    status = adapter.confirm(ours, code)
    assert status.state == State.PAID and str(status.amount) == "12.500" and status.provider_reference
    assert adapter.status(ours).state == State.PAID
    # A confirm sent again is the same payment, and the reference cannot be charged again.
    assert adapter.confirm(ours, code).provider_reference == status.provider_reference
    with pytest.raises(ProviderValidationError, match="already paid"):
        adapter.begin(payment())


def test_a_verify_sent_again_is_the_same_session_and_the_same_code(adapter, live_server):
    first, second = adapter.begin(payment()), adapter.begin(payment(phone="0912345678"))
    assert first.provider_reference == second.provider_reference
    codes = sms_codes(live_server, CODE)
    assert len(codes) == 2 and codes[0] == codes[1]
    with pytest.raises(ProviderValidationError, match="another number or amount"):
        adapter.begin(payment(amount="13.000"))


def test_an_empty_wallet_and_three_wrong_codes_fail_the_payment_with_the_wallets_words(adapter, live_server):
    empty = begun(adapter, reference="ORDER-EMPTY", phone="+218910000000")
    (code,) = sms_codes(live_server, CODE, "+218910000000")
    status = adapter.confirm(empty, code)
    assert status.state == State.FAILED and status.message == "Insufficient balance"
    guessed = begun(adapter, reference="ORDER-GUESS")
    (code,) = sms_codes(live_server, CODE)
    for _ in range(2):
        with pytest.raises(ProviderValidationError):
            adapter.confirm(guessed, wrong(code))
    assert adapter.confirm(guessed, wrong(code)).state == State.FAILED
    assert adapter.confirm(guessed, code).state == State.FAILED  # too late: the session is over


@pytest.mark.parametrize("fault", [{"status": 502}, {"hang_s": 1.5}], ids=["proxy-502", "timeout"])
def test_a_confirm_whose_answer_is_lost_after_the_wallet_charged_is_unknown_then_status_says_paid(
        db, live_server, fault):
    adapter = sandbox_row(live_server, CODE, timeout=0.5).adapter
    ours = begun(adapter)
    (code,) = sms_codes(live_server, CODE)
    set_fault("payment", CODE, after=True, times=1, **fault)
    with pytest.raises(UnknownOutcome):
        adapter.confirm(ours, code)
    assert adapter.status(ours).state == State.PAID


@pytest.mark.parametrize(("fault", "error"), [
    ({"html": True}, ProviderProtocolError), ({"malformed": True}, ProviderProtocolError),
    ({"status": 503}, ProviderUnavailable), ({"status": 500}, ProviderUnavailable),
])
def test_a_misbehaving_wallet_is_an_error_never_a_status(adapter, fault, error):
    set_fault("payment", CODE, **fault)
    with pytest.raises(error):
        adapter.status(payment())


def test_latency_within_the_timeout_is_only_slow(adapter):
    set_fault("payment", CODE, latency_ms=200)
    status = adapter.status(payment())
    assert status.state == State.FAILED and status.details == {"not_found": True}


def test_a_wrong_key_is_refused_as_credentials(row, live_server):
    # The wallet knows the merchant by its first row (`row`); another with the same id and a wrong key:
    stranger = sandbox_row(live_server, CODE, creds={"merchant_id": "EISHRO-0042", "api_key": "wk_wrong"},
                           name="stranger")
    with pytest.raises(ProviderAuthError):
        stranger.adapter.begin(payment())


def test_a_switched_off_row_texts_nobody_and_the_health_check_passes(db, live_server):
    off = sandbox_row(live_server, CODE, enabled=None)
    with pytest.raises(ProviderValidationError, match="enabled"):
        off.adapter.begin(payment())
    assert sms_codes(live_server, CODE, PHONE) == []
    off.adapter.check_health()


def test_the_adapter_reads_a_real_payment_row(adapter, live_server, merchant, row):
    ours = model_payment(merchant, row, Method.MOBICASH)
    begin_and_keep(adapter, ours)
    assert adapter.confirm(ours, sms_codes(live_server, CODE)[0]).state == State.PAID
    assert adapter.status(ours).amount == ours.amount
