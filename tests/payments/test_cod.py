"""Cash on delivery: pending until the carrier reports the cash, paid only for the right amount."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from integrations.models import ExternalIntegration
from payments import services
from payments.interface import Method
from payments.models import Payment, ReconciliationMismatch

pytestmark = pytest.mark.django_db


@pytest.fixture
def cod(merchant, reference_data):
    payment, _ = services.create_payment(merchant, order_reference="O-7", amount="45.250", currency="LYD",
                                         method=Method.COD)
    return payment


def test_begin_waits_for_delivery_without_a_provider_row(cod):
    cod.refresh_from_db()
    assert (cod.status, cod.next_step, cod.integration_id, cod.expires_at) == ("pending", "on_delivery", None, None)
    assert "45.250" in cod.instructions
    assert not ExternalIntegration.objects.exists()


def test_cash_collected_by_shipment_reference_pays_it(cod, merchant):
    services.attach_shipment(cod, "AMY-123")
    services.record_cash_collected("AMY-123", "45.250", carrier="amyal")
    cod.refresh_from_db()
    assert cod.status == "paid" and cod.paid_at and cod.provider_data["carrier"] == "amyal"
    services.record_cash_collected(cod.reference, Decimal("45.25"))  # reported twice: nothing more
    assert [h.to_state for h in Payment.machine.history_of(cod).order_by("pk")] == ["pending", "paid"]


def test_wrong_amount_is_refused_and_recorded(cod):
    with pytest.raises(ValidationError) as err:
        services.record_cash_collected(cod.reference, "45.000", carrier="amyal")
    assert "45.250" in err.value.message_dict["amount"][0]
    cod.refresh_from_db()
    assert cod.status == "pending"
    assert ReconciliationMismatch.objects.get().source == "collection"


def test_unknown_reference_is_refused(cod):
    with pytest.raises(ValidationError):
        services.record_cash_collected("NOPE", "45.250")
    with pytest.raises(ValidationError):
        services.record_cash_collected("", "45.250")


def test_cod_refund_waits_for_an_operator(cod):
    services.record_cash_collected(cod.reference, "45.250")
    refund = services.refund(cod, "5")
    assert refund.status == "pending"
    cod.refresh_from_db()
    assert cod.refunded_amount == 0
    services.confirm_manual_refund(refund, reference="cash back")
    cod.refresh_from_db()
    assert (cod.status, cod.refunded_amount) == ("partially_refunded", Decimal("5.000"))
    with pytest.raises(ValidationError):
        services.confirm_manual_refund(refund)


def test_cod_never_expires(cod):
    assert services.expire_payments() == []
