"""The payments domain's known gaps, closed: the API's Idempotency-Key answers pruned after their
retention, Sadad's payer birth year through the API, the expiry settings declared, and payments left
`initiated` by a crash picked up again (begun when certainly never sent, `unknown` otherwise)."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.utils import timezone

from payments import idempotency, tasks
from payments.models import ApiIdempotencyKey, Payment
from tests.staff import api_client_for

pytestmark = pytest.mark.django_db

PAYMENTS = "/api/payments/payments/"


@pytest.fixture
def api(merchant):
    return api_client_for(merchant)


def create(api, key=None, **body):
    data = {"orderReference": "ORD-1", "amount": "150.000", "currency": "LYD", "method": "cod", **body}
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(PAYMENTS, data, format="json", **headers)


def age(queryset, **delta):
    queryset.update(created_at=timezone.now() - timedelta(**delta))


# --- 1. the API's idempotency keys pruned ---------------------------------------------------------
def test_keys_older_than_the_retention_are_pruned_and_newer_kept(api, reference_data, settings):
    assert create(api, key="old").status_code == 201
    assert create(api, key="new").status_code == 201
    age(ApiIdempotencyKey.objects.filter(key="old"), hours=24, minutes=1)
    age(ApiIdempotencyKey.objects.filter(key="new"), hours=23, minutes=59)
    assert idempotency.prune() == 1
    assert list(ApiIdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    settings.PAYMENT_IDEMPOTENCY_RETENTION_HOURS = 1
    assert idempotency.prune() == 1
    assert not ApiIdempotencyKey.objects.exists()


def test_a_claim_left_by_a_crashed_request_is_pruned_too(merchant, reference_data):
    ApiIdempotencyKey.objects.create(owner=merchant, key="k", operation="payments.create", fingerprint="x")
    age(ApiIdempotencyKey.objects.all(), hours=25)
    assert idempotency.prune() == 1


def test_prune_works_in_batches(merchant, reference_data, monkeypatch):
    monkeypatch.setattr(idempotency, "PRUNE_BATCH", 2)
    ApiIdempotencyKey.objects.bulk_create(ApiIdempotencyKey(owner=merchant, key=f"k{i}", operation="o",
                                                            fingerprint="x") for i in range(5))
    age(ApiIdempotencyKey.objects.all(), days=2)
    assert idempotency.prune() == 5


def test_a_key_reused_after_pruning_still_makes_no_second_payment(api, reference_data):
    first = create(api, key="again")
    age(ApiIdempotencyKey.objects.all(), days=2)
    tasks.prune_idempotency_keys.delay().get()
    second = create(api, key="again")
    assert second.status_code == 201 and "Idempotent-Replayed" not in second  # ran afresh at the API layer
    assert second.json()["id"] == first.json()["id"] and Payment.objects.count() == 1  # the service's key holds
    assert create(api, key="again", amount="1.000").status_code == 409


def test_the_pruning_is_scheduled_hourly():
    entry = apps.get_app_config("payments").schedule["Payment API idempotency keys retention"]
    assert entry[:2] == ("payments.tasks.prune_idempotency_keys", 3600)


# --- 3. the expiry settings declared --------------------------------------------------------------
def test_the_payment_settings_are_declared_with_their_defaults():
    assert django_settings.PAYMENT_CHECKOUT_EXPIRY_MINUTES == 30
    assert django_settings.PAYMENT_TRANSFER_EXPIRY_WORKING_DAYS == 3
    assert django_settings.PAYMENT_IDEMPOTENCY_RETENTION_HOURS == 24


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
