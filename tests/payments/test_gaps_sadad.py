"""Sadad's payer birth year through the payments API, over real SOAP against the Sadad simulator
(live_server, so transactional: ordered after the tests that read the migration's reference data)."""

import pytest
from django.utils import timezone

from payments.models import Payment
from tests.staff import api_client_for

from .test_gaps import create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api(merchant):
    return api_client_for(merchant)


# --- 2. Sadad's payer birth year through the API --------------------------------------------------
@pytest.fixture
def sadad(reference_data, live_server):
    from payments.models import PaymentMethod

    from .wallet_support import sandbox_row

    PaymentMethod.objects.filter(code="sadad").update(enabled=True)
    return sandbox_row(live_server, "sadad", timeout=5)


def sadad_body(**extra):
    return {"method": "sadad", "amount": "12.500", "payerPhone": "+218912345678", **extra}


def test_a_sadad_payment_carries_the_birth_year_to_sadad_and_is_paid(api, sadad, live_server):
    from integrations.models import IntegrationLog

    from .wallet_support import sms_codes

    answer = create(api, **sadad_body(payerBirthYear=1979))
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert (body["status"], body["nextStep"], body["wallet"]["action"]) == ("pending", "otp", "confirm")
    sent = IntegrationLog.objects.get(integration=sadad, operation="InitiatePayment").request_body
    assert "BirthYear>1979<" in sent
    # Kept only until the begin: the payment holds the provider's data, not the payer's birth year.
    assert "birth_year" not in Payment.objects.get(pk=body["id"]).provider_data
    confirmed = api.post(body["wallet"]["confirmUrl"], {"code": sms_codes(live_server, "sadad")[0]}, format="json")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "paid"


def test_a_string_birth_year_is_accepted(api, sadad):
    answer = create(api, **sadad_body(payerBirthYear=" 1985 "))
    assert answer.status_code == 201, answer.content


@pytest.mark.parametrize("year", [None, "", "85", "019", 1899, "19a5", 1985.0, True, "١٩٨٥", "next"])
def test_sadad_without_a_plausible_birth_year_is_a_400_naming_the_field(api, sadad, year):
    from integrations.models import IntegrationLog

    body = sadad_body() if year is None else sadad_body(payerBirthYear=year)
    if year == "next":
        body["payerBirthYear"] = timezone.localdate().year + 1
    answer = create(api, **body)
    assert answer.status_code == 400, answer.content
    assert list(answer.json()) == ["payerBirthYear"] and answer.json()["payerBirthYear"][0]
    assert not Payment.objects.exists() and not IntegrationLog.objects.filter(integration=sadad).exists()


def test_another_birth_year_under_the_same_key_is_a_conflict(api, sadad):
    assert create(api, key="s-1", **sadad_body(payerBirthYear=1979)).status_code == 201
    assert create(api, key="s-1", **sadad_body(payerBirthYear=1979)).status_code == 201
    assert create(api, key="s-1", **sadad_body(payerBirthYear=1980)).status_code == 409
    assert Payment.objects.count() == 1


def test_other_methods_check_but_never_keep_a_birth_year(api, reference_data):
    answer = create(api, payerBirthYear=1979)
    assert answer.status_code == 201
    assert "birth_year" not in Payment.objects.get(pk=answer.json()["id"]).provider_data
    assert create(api, payerBirthYear=1850).json()["payerBirthYear"]
