"""The payments domain's known gaps, closed: the API's Idempotency-Key answers pruned after their
retention, the expiry settings declared, and payments left `initiated` by a crash picked up again
(begun when certainly never sent, `unknown` otherwise). Sadad's birth year: test_gaps_sadad.py."""

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


# --- 4. payments a crash left `initiated` ---------------------------------------------------------
LATER = timedelta(minutes=11)  # past the grace a create and its begin have (STALE_INITIATED, 10 min)


class Killed(BaseException):
    """The worker or request dying: nothing of ours catches it."""


def stuck(owner, method="card_credit", integration=None, begun=False, **fields):
    return Payment.objects.create(owner=owner, amount=fields.pop("amount", 100), method=method,
                                  integration=integration, begun_at=timezone.now() if begun else None, **fields)


def history(payment):
    return [(h.from_state, h.to_state) for h in Payment.machine.history_of(payment).order_by("pk")]


def test_a_crash_between_the_row_and_the_begin_leaves_a_payment_never_sent(merchant, fake_gateway, monkeypatch):
    from payments import services
    from payments.services import checkout

    from .conftest import FakeGateway

    with monkeypatch.context() as patch, pytest.raises(Killed):
        patch.setattr(checkout, "begin", lambda payment: (_ for _ in ()).throw(Killed()))
        services.create_payment(merchant, amount="100", currency="LYD", method="card_credit", idempotency_key="k")
    payment = Payment.objects.get()
    assert (payment.status, payment.begun_at, FakeGateway.calls) == ("initiated", None, [])
    # The caller's retry with its key finishes the job: begun once, now.
    again, created = services.create_payment(merchant, amount="100", currency="LYD", method="card_credit",
                                             idempotency_key="k")
    assert (again.pk, created, again.status, again.next_step) == (payment.pk, False, "pending", "lightbox")
    assert FakeGateway.calls == [("begin", payment.reference)]
    services.create_payment(merchant, amount="100", currency="LYD", method="card_credit", idempotency_key="k")
    assert FakeGateway.calls == [("begin", payment.reference)]


def test_a_never_sent_provider_payment_is_begun_by_reconciliation_once(merchant, fake_gateway):
    from payments import services

    from .conftest import FakeGateway

    payment = stuck(merchant, integration=fake_gateway)
    assert services.reconcile() == {} and FakeGateway.calls == []  # too young: its request may still be running
    later = timezone.now() + LATER
    assert services.reconcile(now=later)["begun"] == 1
    payment.refresh_from_db()
    assert (payment.status, payment.next_step) == ("pending", "lightbox") and payment.begun_at is not None
    assert payment.expires_at > later  # its checkout time counts from the begin
    assert services.reconcile(now=later)
    assert [op for op, _ref in FakeGateway.calls].count("begin") == 1


def test_a_begin_that_may_have_been_sent_is_unknown_then_asked_never_sent_again(merchant, fake_gateway):
    from payments import services

    from .conftest import FakeGateway, paid_status

    def killed(payment):
        raise Killed()

    FakeGateway.script["begin"] = killed
    with pytest.raises(Killed):
        services.create_payment(merchant, amount="100", currency="LYD", method="card_credit")
    payment = Payment.objects.get()
    assert payment.status == "initiated" and payment.begun_at is not None  # the claim was committed first
    FakeGateway.script["status"] = paid_status
    counts = services.reconcile(now=timezone.now() + LATER)
    assert (counts["unknown"], counts["moved"]) == (1, 1)
    payment.refresh_from_db()
    assert payment.status == "paid" and history(payment) == [("initiated", "unknown"), ("unknown", "paid")]
    assert [op for op, _ref in FakeGateway.calls] == ["begin", "status"]


def test_a_claimed_begin_is_never_run_twice(merchant, fake_gateway):
    from payments.services.checkout import begin

    from .conftest import FakeGateway

    payment = stuck(merchant, integration=fake_gateway)
    Payment.objects.filter(pk=payment.pk).update(begun_at=timezone.now())  # another process claimed it
    assert begin(payment).status == "initiated" and FakeGateway.calls == []


def test_our_own_ways_to_pay_are_begun_again_even_after_a_begin_started(merchant, reference_data):
    from payments import services

    cod = stuck(merchant, method="cod", begun=True)
    transfer = stuck(merchant, method="bank_transfer", bank_id="NBC")
    assert services.reconcile(now=timezone.now() + LATER) == {"begun": 2}
    cod.refresh_from_db()
    transfer.refresh_from_db()
    assert (cod.status, cod.next_step, cod.expires_at) == ("pending", "on_delivery", None)
    assert (transfer.status, transfer.next_step) == ("pending", "transfer")
    assert transfer.provider_data["transfer_reference"] == transfer.reference


def test_a_never_begun_payment_whose_time_has_passed_expires_without_a_call(merchant, fake_gateway):
    from payments import services

    from .conftest import FakeGateway

    card = stuck(merchant, integration=fake_gateway)
    transfer = stuck(merchant, method="bank_transfer", bank_id="NBC")
    cod = stuck(merchant, method="cod")
    counts = services.reconcile(now=timezone.now() + timedelta(days=7))
    assert (counts["expired"], counts["begun"]) == (2, 1)
    states = dict(Payment.objects.values_list("pk", "status"))
    assert (states[card.pk], states[transfer.pk], states[cod.pk]) == ("expired", "expired", "pending")
    assert FakeGateway.calls == []


def test_a_card_never_begun_within_its_checkout_time_is_begun(merchant, fake_gateway, settings):
    from payments import services

    card = stuck(merchant, integration=fake_gateway)
    settings.PAYMENT_CHECKOUT_EXPIRY_MINUTES = 10
    assert services.reconcile(now=timezone.now() + LATER)["expired"] == 1
    card2 = stuck(merchant, integration=fake_gateway)
    settings.PAYMENT_CHECKOUT_EXPIRY_MINUTES = 30
    services.reconcile(now=timezone.now() + LATER)
    assert Payment.objects.get(pk=card2.pk).status == "pending" and Payment.objects.get(pk=card.pk).status == "expired"


def test_one_payment_that_cannot_be_resumed_does_not_stop_the_others(merchant, fake_gateway):
    from payments import services

    bad = stuck(merchant, method="no-such-method")
    good = stuck(merchant, method="cod")
    counts = services.reconcile(now=timezone.now() + LATER)
    assert (counts["errors"], counts["begun"]) == (1, 1)
    assert Payment.objects.get(pk=bad.pk).status == "initiated" and Payment.objects.get(pk=good.pk).status == "pending"


def test_an_api_claim_abandoned_by_a_dead_request_is_taken_over(api, reference_data):
    first = create(api, key="dead")
    payment = Payment.objects.get()
    Payment.objects.filter(pk=payment.pk).update(status="initiated", begun_at=None)  # died before its begin
    ApiIdempotencyKey.objects.update(status_code=None, body=None)  # and before its answer was kept
    assert create(api, key="dead").status_code == 409  # may still be running
    age(ApiIdempotencyKey.objects.all(), minutes=6)
    retry = create(api, key="dead")
    assert retry.status_code == 201 and retry.json()["id"] == first.json()["id"]
    assert retry.json()["status"] == "pending" and Payment.objects.count() == 1
    replay = create(api, key="dead")
    assert replay["Idempotent-Replayed"] == "true" and replay.json() == retry.json()
