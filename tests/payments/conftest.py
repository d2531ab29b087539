"""What the payments domain's tests share: merchants, a fake payment provider registered like any
adapter (an outside provider, so replaced; our database is real), and rows to pay through."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model

from integrations.errors import ProviderError
from integrations.models import ExternalIntegration, Kind
from payments.interface import Checkout, Method, NextStep, PaymentGateway, ProviderStatus, RefundResult, State
from payments.models import PaymentMethod


@pytest.fixture
def merchant(db):
    return get_user_model().objects.create_user("merchant-a", password="x")


@pytest.fixture
def other_merchant(db):
    return get_user_model().objects.create_user("merchant-b", password="x")


class FakeGateway(PaymentGateway):
    """A provider whose answers a test scripts on the class: `script` maps an operation (begin,
    status, statuses, refund, confirm) to a value, an exception to raise, or a callable; `calls` counts."""

    methods = (Method.CARD_CREDIT, Method.CARD_DEBIT)
    script = {}
    calls = []

    def _answer(self, operation, payment, default):
        type(self).calls.append((operation, getattr(payment, "reference", None)))
        answer = type(self).script.get(operation, default)
        if callable(answer) and not isinstance(answer, type):
            answer = answer(payment)
        if isinstance(answer, BaseException) or (isinstance(answer, type) and issubclass(answer, BaseException)):
            raise answer
        return answer

    def begin(self, payment):
        return self._answer("begin", payment, Checkout(next_step=NextStep.LIGHTBOX, data={"x": 1}))

    def status(self, payment):
        return self._answer("status", payment, ProviderStatus(state=State.PENDING))

    def refund(self, payment, refund):
        return self._answer("refund", payment, RefundResult(state="refunded", provider_reference=f"R-{refund.pk}"))

    def confirm(self, payment, code):
        return self._answer("confirm", payment, ProviderStatus(state=State.PAID, amount=payment.amount,
                                                               currency=payment.currency))


@pytest.fixture(autouse=True)
def _english_messages():
    """Messages read outside a request (services, adapters, commands) are asserted in English: the
    default language is Arabic, which the catalogue tests and the Arabic page tests check."""
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def reference_data(db):
    """The seed's banks and methods, and the fallback table the methods' fallback reads: migrations
    install them, but a transactional test's flush empties the tables, so tests that may run after
    one install them again (a no-op otherwise)."""
    from integrations.selection import install_seed_table
    from payments.models import Bank
    from payments.reference import install

    install(Bank, PaymentMethod)
    install_seed_table()


@pytest.fixture
def fake_gateway(reference_data, monkeypatch):
    """Cards go through "fakepay": the platform's active row, FakeGateway behind it."""
    monkeypatch.setitem(apps.get_app_config("payments").adapters, "fakepay", "tests.payments.conftest.FakeGateway")
    FakeGateway.script, FakeGateway.calls = {}, []
    PaymentMethod.objects.filter(code__in=[Method.CARD_CREDIT, Method.CARD_DEBIT]).update(adapter="fakepay")
    row = ExternalIntegration.objects.create(kind=Kind.PAYMENT, code="fakepay", name="fakepay",
                                             display_name="Fake pay", base_url="https://pay.example.test/")
    yield row
    FakeGateway.script, FakeGateway.calls = {}, []


def paid_status(payment, **extra):
    return ProviderStatus(state=State.PAID, amount=payment.amount, currency=payment.currency,
                          provider_reference=extra.pop("provider_reference", "SYS-1"), **extra)


@pytest.fixture
def card_payment(merchant, fake_gateway):
    from payments.services import create_payment

    payment, _created = create_payment(merchant, order_reference="O-1", amount=Decimal("100.000"), currency="LYD",
                                       method=Method.CARD_CREDIT)
    return payment


@pytest.fixture
def paid_payment(card_payment):
    from payments.services import apply_status

    assert apply_status(card_payment, paid_status(card_payment))
    return card_payment


__all__ = ["FakeGateway", "ProviderError", "paid_status"]
