"""Bank transfer: instructions with our reference, confirmed by an operator, expired after working days."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from payments import services
from payments.interface import Method
from payments.models import ReconciliationMismatch
from payments.providers.transfer import add_working_days

pytestmark = pytest.mark.django_db


@pytest.fixture
def transfer(merchant, reference_data):
    payment, _ = services.create_payment(merchant, amount="250", currency="LYD", method=Method.BANK_TRANSFER,
                                         bank_code="JUM")
    payment.refresh_from_db()
    return payment


def test_begin_gives_instructions_with_our_reference(transfer):
    assert (transfer.status, transfer.next_step, transfer.integration_id) == ("pending", "transfer", None)
    assert transfer.provider_reference == transfer.reference
    assert transfer.provider_data["bank_code"] == "JUM" and transfer.provider_data["processing_time"]
    assert transfer.reference in transfer.instructions


def test_working_days_skip_friday_and_saturday():
    thursday = datetime(2026, 12, 3, 10, tzinfo=UTC)
    assert add_working_days(thursday, 1) == datetime(2026, 12, 6, 10, tzinfo=UTC)  # Sunday
    assert add_working_days(thursday, 3).weekday() == 1  # Tuesday
    sunday = datetime(2026, 12, 6, 10, tzinfo=UTC)
    assert add_working_days(sunday, 3).weekday() == 2  # Wednesday


def test_expiry_follows_the_setting(merchant, reference_data, settings):
    settings.PAYMENT_TRANSFER_EXPIRY_WORKING_DAYS = 5
    payment, _ = services.create_payment(merchant, amount="10", currency="LYD", method=Method.BANK_TRANSFER,
                                         bank_code="NBC")
    assert payment.expires_at - payment.created_at >= timedelta(days=5)


def test_operator_confirms_the_transfer(transfer):
    with pytest.raises(ValidationError):
        services.confirm_transfer(transfer, "")
    with pytest.raises(ValidationError) as err:
        services.confirm_transfer(transfer, "JUM-555", amount="200")
    assert "amount" in err.value.message_dict
    assert ReconciliationMismatch.objects.count() == 1
    services.confirm_transfer(transfer, "JUM-555", amount=Decimal("250.000"))
    transfer.refresh_from_db()
    assert (transfer.status, transfer.network_reference) == ("paid", "JUM-555")
    with pytest.raises(ValidationError):
        services.confirm_transfer(transfer, "JUM-556")


def test_unconfirmed_transfer_expires_and_stays_expired(transfer):
    assert services.expire_payments(now=transfer.expires_at - timedelta(minutes=1)) == []
    assert services.expire_payments(now=transfer.expires_at + timedelta(minutes=1)) == [transfer.pk]
    transfer.refresh_from_db()
    assert transfer.status == "expired"
    with pytest.raises(ValidationError):
        services.confirm_transfer(transfer, "JUM-late")
