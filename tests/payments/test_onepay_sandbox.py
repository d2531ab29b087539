"""1Pay over real HTTP against its simulator (live_server): the whole flow with the texted code,
refunds (partial, repeated, beyond what is left), lost answers and injected faults."""

from decimal import Decimal

import pytest

from integrations.errors import ProviderProtocolError, ProviderUnavailable, ProviderValidationError, UnknownOutcome
from integrations.sandbox import set_fault
from payments.interface import Method, NextStep, State

from .wallet_support import begin_and_keep, model_payment, payment, refund, sandbox_row, sms_codes, wrong

CODE = "onepay"


@pytest.fixture
def adapter(db, live_server):
    return sandbox_row(live_server, CODE, timeout=2).adapter


def paid(adapter, live_server, **kwargs):
    checkout = adapter.begin(payment(**kwargs))
    assert checkout.next_step == NextStep.OTP and checkout.provider_reference.startswith("op_")
    ours = payment(provider_reference=checkout.provider_reference, **kwargs)
    status = adapter.confirm(ours, sms_codes(live_server, CODE)[0])
    assert status.state == State.PAID and status.provider_reference
    return ours


def test_a_payment_is_paid_with_the_texted_code_and_refunded_in_parts_never_beyond(adapter, live_server):
    ours = adapter.begin(payment())
    ours = payment(provider_reference=ours.provider_reference)
    (code,) = sms_codes(live_server, CODE)
    with pytest.raises(ProviderValidationError, match="tries left"):
        adapter.confirm(ours, wrong(code))
    assert adapter.confirm(ours, code).amount == payment().amount
    first = adapter.refund(ours, refund("REFUND-1", "5.000"))
    assert first.state == "refunded"
    assert adapter.refund(ours, refund("REFUND-1", "5.000")).provider_reference == first.provider_reference
    status = adapter.status(ours)
    assert status.state == State.PARTIALLY_REFUNDED and status.details == {"refunded_amount": "5.000"}
    with pytest.raises(ProviderValidationError, match=r"exceeds the remaining 7\.500"):
        adapter.refund(ours, refund("REFUND-2", "7.501"))
    adapter.refund(ours, refund("REFUND-2", "7.500"))
    assert adapter.status(ours).state == State.REFUNDED


def test_a_create_sent_again_is_the_same_payment_and_a_paid_order_cannot_be_paid_again(adapter, live_server):
    first, second = adapter.begin(payment()), adapter.begin(payment())
    assert first.provider_reference == second.provider_reference
    assert len(set(sms_codes(live_server, CODE))) == 1
    ours = payment(provider_reference=first.provider_reference)
    transaction = adapter.confirm(ours, sms_codes(live_server, CODE)[0]).provider_reference
    assert adapter.confirm(ours, "000000").provider_reference == transaction  # answered again, not charged again
    with pytest.raises(ProviderValidationError, match="already paid"):
        adapter.begin(payment())


def test_a_create_whose_answer_was_lost_is_found_by_our_order_id(adapter):
    set_fault("payment", CODE, after=True, status=502, times=1)
    with pytest.raises(ProviderUnavailable):
        adapter.begin(payment())
    status = adapter.status(payment())  # no provider reference: found by orderId
    assert status.state == State.PENDING


def test_a_refund_whose_answer_is_lost_is_unknown_and_done_once(adapter, live_server):
    ours = paid(adapter, live_server)
    set_fault("payment", CODE, after=True, hang_s=3, times=1)
    with pytest.raises(UnknownOutcome):
        adapter.refund(ours, refund("REFUND-9", "12.500"))
    assert adapter.status(ours).state == State.REFUNDED
    # Sent again by an operator who checked: the same refund, not a second one.
    assert adapter.refund(ours, refund("REFUND-9", "12.500")).state == "refunded"


@pytest.mark.parametrize(("fault", "error"), [
    ({"html": True}, ProviderProtocolError), ({"malformed": True}, ProviderProtocolError),
    ({"status": 503}, ProviderUnavailable),
])
def test_a_misbehaving_wallet_is_an_error_never_a_status(adapter, fault, error):
    set_fault("payment", CODE, **fault)
    with pytest.raises(error):
        adapter.status(payment(provider_reference="op_1"))


def test_a_number_without_a_wallet_is_refused_with_the_wallets_words_and_health_passes(adapter):
    with pytest.raises(ProviderValidationError, match="has no 1Pay wallet"):
        adapter.begin(payment(phone="+218919999999"))
    adapter.check_health()


def test_the_adapter_reads_real_payment_and_refund_rows(adapter, live_server, merchant):
    from payments.models import Refund

    ours = model_payment(merchant, adapter.integration, Method.ONEPAY)
    begin_and_keep(adapter, ours)
    assert adapter.confirm(ours, sms_codes(live_server, CODE)[0]).state == State.PAID
    back = Refund.objects.create(payment=ours, amount=Decimal("2.000"))
    assert adapter.refund(ours, back).state == "refunded"
    assert adapter.status(ours).state == State.PARTIALLY_REFUNDED
