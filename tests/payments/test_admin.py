"""The payments admin: actions with their intermediate forms, with and without permissions; totals;
the history inline; limits validated on the methods; the mismatches resolved; Arabic and RTL."""

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import ERROR, get_messages
from django.test import Client
from django.urls import reverse

from payments import services
from payments.models import Payment, PaymentMethod, ReconciliationMismatch, Refund
from tests.staff import admin_client_for, staff_with

from .conftest import FakeGateway, paid_status

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/payments/payment/"


def pay(owner, **fields):
    values = {"amount": "100.000", "currency": "LYD", "method": "cod", **fields}
    return services.create_payment(owner, **values)[0]


@pytest.fixture
def operator(db):
    return admin_client_for(staff_with("operator", "payments.view_payment", "payments.change_payment",
                                       "payments.view_refund"))


@pytest.fixture
def viewer(db):
    return admin_client_for(staff_with("viewer", "payments.view_payment"))


def run(client, action, payments, **data):
    return client.post(CHANGELIST, {"action": action, ACTION_CHECKBOX_NAME: [p.pk for p in payments], **data},
                       follow=True)


def texts(response, level=None):
    return [str(m) for m in get_messages(response.wsgi_request) if level is None or m.level == level]


def test_confirm_transfer_asks_for_the_bank_reference_then_confirms(operator, merchant, reference_data):
    transfer = pay(merchant, method="bank_transfer", bank_code="NBC")
    form = run(operator, "confirm_transfer", [transfer])
    assert form.status_code == 200 and f"bank_reference_{transfer.pk}" in form.content.decode()
    assert Payment.objects.get(pk=transfer.pk).status == "pending"  # nothing done before the form is sent
    wrong = run(operator, "confirm_transfer", [transfer], apply="1", **{f"bank_reference_{transfer.pk}": "NBC-77",
                                                                       f"amount_{transfer.pk}": "90"})
    assert any("100.000" in t for t in texts(wrong, ERROR))
    assert ReconciliationMismatch.objects.filter(payment=transfer, kind="amount").exists()
    done = run(operator, "confirm_transfer", [transfer], apply="1", **{f"bank_reference_{transfer.pk}": "NBC-77"})
    transfer.refresh_from_db()
    assert transfer.status == "paid" and transfer.network_reference == "NBC-77"
    assert "1 transfer confirmed." in texts(done)


def test_confirm_transfer_skips_what_is_not_a_waiting_transfer(operator, merchant, reference_data):
    answer = run(operator, "confirm_transfer", [pay(merchant)])
    assert any("None of the selected" in t for t in texts(answer))


def test_refund_action_validates_the_amount_and_refunds(operator, merchant, reference_data):
    payment = pay(merchant)
    services.record_cash_collected(payment.reference, payment.amount)
    form = run(operator, "refund", [payment])
    assert f"amount_{payment.pk}" in form.content.decode() and "At most 100.000 LYD" in form.content.decode()
    bad = run(operator, "refund", [payment], apply="1", **{f"amount_{payment.pk}": "1.0005"})
    assert bad.status_code == 200 and "errorlist" in bad.content.decode() and not Refund.objects.exists()
    too_much = run(operator, "refund", [payment], apply="1", **{f"amount_{payment.pk}": "100.001"})
    assert any("At most 100.000" in t for t in texts(too_much, ERROR)) and not Refund.objects.exists()
    done = run(operator, "refund", [payment], apply="1", **{f"amount_{payment.pk}": "40", f"reason_{payment.pk}": "x"})
    refund = Refund.objects.get()
    assert (refund.amount, refund.reason, refund.actor.username) == (Decimal("40.000"), "x", "operator")
    assert any(refund.reference in t for t in texts(done))


def test_refresh_action_asks_the_provider(operator, merchant, fake_gateway):
    payment = pay(merchant, method="card_credit")
    FakeGateway.script["status"] = paid_status
    answer = run(operator, "refresh_status", [payment])
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    assert "1 payment(s) asked, 1 changed status." in texts(answer)


@pytest.mark.parametrize("action,extra", [("refund", {}), ("confirm_transfer", {}), ("refresh_status", {})])
def test_a_viewer_cannot_run_the_actions(viewer, merchant, reference_data, action, extra):
    payment = pay(merchant, method="bank_transfer", bank_code="NBC")
    answer = run(viewer, action, [payment], apply="1", **{f"bank_reference_{payment.pk}": "X", f"amount_{payment.pk}":
                                                          "1"})
    assert any("permission" in t for t in texts(answer, ERROR))
    assert Payment.objects.get(pk=payment.pk).status == "pending" and not Refund.objects.exists()


def test_totals_per_day_method_and_bank(operator, merchant, reference_data):
    cash = pay(merchant, amount="100.000")
    services.record_cash_collected(cash.reference, cash.amount)
    services.refund(cash, "30")  # pending: nothing is refunded until an operator confirms it
    pay(merchant, method="bank_transfer", bank_code="JUM", amount="50.250")
    pay(merchant, method="bank_transfer", bank_code="JUM", amount="49.750")
    response = operator.get(CHANGELIST)
    assert response.status_code == 200
    totals = response.context["payment_totals"]
    by_method = {row["label"]: (row["count"], row["amount"], row["paid"]) for row in totals["by_method"]}
    assert by_method == {"Cash on delivery": (1, "100.000", "100.000"), "Bank transfer": (2, "100.000", "0.000")}
    assert {row["label"]: row["count"] for row in totals["by_bank"]} == {"JUM": 2, "no bank": 1}
    assert [(row["count"], row["amount"]) for row in totals["by_day"]] == [(3, "200.000")]
    assert 'id="payment-totals"' in response.content.decode()
    filtered = operator.get(f"{CHANGELIST}?method__exact=bank_transfer").context["payment_totals"]
    assert [row["count"] for row in filtered["by_method"]] == [2]


def test_the_payment_page_shows_its_history_and_refunds(operator, merchant, reference_data):
    payment = pay(merchant)
    services.record_cash_collected(payment.reference, payment.amount)
    services.refund(payment, "5")
    page = operator.get(reverse("admin:payments_payment_change", args=[payment.pk])).content.decode()
    assert "Cash collected by" in page and "Begun at the provider." in page
    assert Refund.objects.get().reference in page


def test_method_limits_are_validated(db, reference_data):
    client = admin_client_for(staff_with("editor", "payments.view_paymentmethod", "payments.change_paymentmethod"))
    method = PaymentMethod.objects.get(code="card_debit")
    url = reverse("admin:payments_paymentmethod_change", args=[method.pk])
    data = {"code": "card_debit", "name_ar": method.name_ar, "name_en": "Debit", "adapter": "moamalat",
            "networks": '["mada"]', "currencies": '["LYD"]', "min_amount": "0.500", "max_amount": "25000.000",
            "processing_time": "", "enabled": "on", "position": "2"}
    above = client.post(url, {**data, "min_amount": "30000.000"})
    assert above.status_code == 200 and "below the minimum" in above.content.decode()
    digits = client.post(url, {**data, "max_amount": "1.0005"})
    assert digits.status_code == 200 and "errorlist" in digits.content.decode()
    currency = client.post(url, {**data, "currencies": '["EUR"]'})
    assert currency.status_code == 200 and "currency codes" in currency.content.decode()
    assert client.post(url, {**data, "max_amount": "20000.000"}).status_code == 302
    method.refresh_from_db()
    assert method.max_amount == Decimal("20000.000")


def test_mismatches_are_resolved_by_an_operator(merchant, reference_data):
    payment = pay(merchant)
    mismatch = ReconciliationMismatch.objects.create(payment=payment, kind="amount", source="reconciliation",
                                                     ours="100.000", theirs="90.000")
    url = "/admin/payments/reconciliationmismatch/"
    viewer = admin_client_for(staff_with("mviewer", "payments.view_reconciliationmismatch"))
    viewer.post(url, {"action": "resolve", ACTION_CHECKBOX_NAME: [mismatch.pk]})
    assert ReconciliationMismatch.objects.get().resolved_at is None
    resolver = staff_with("resolver", "payments.view_reconciliationmismatch", "payments.change_reconciliationmismatch")
    admin_client_for(resolver).post(url, {"action": "resolve", ACTION_CHECKBOX_NAME: [mismatch.pk]})
    mismatch.refresh_from_db()
    assert mismatch.resolved_at is not None and mismatch.resolved_by == resolver


def test_cash_refunds_are_confirmed_as_handed_back(operator, merchant, reference_data):
    payment = pay(merchant)
    services.record_cash_collected(payment.reference, payment.amount)
    refund = services.refund(payment, "100")
    client = admin_client_for(staff_with("refunds", "payments.view_refund", "payments.change_refund"))
    client.post("/admin/payments/refund/", {"action": "confirm_paid_back", ACTION_CHECKBOX_NAME: [refund.pk]})
    payment.refresh_from_db()
    assert Refund.objects.get().status == "refunded" and payment.status == "refunded"


def test_the_admin_in_arabic_is_right_to_left(merchant, reference_data, django_user_model):
    pay(merchant, method="bank_transfer", bank_code="NBC")
    root = django_user_model.objects.create_superuser("root", "root@example.ly", "pw")
    client = Client(HTTP_ACCEPT_LANGUAGE="ar")
    client.force_login(root)
    for url in [CHANGELIST, reverse("admin:payments_payment_change", args=[Payment.objects.get().pk]),
                "/admin/payments/paymentmethod/", "/admin/payments/bank/"]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert 'dir="rtl"' in response.content.decode(), url
