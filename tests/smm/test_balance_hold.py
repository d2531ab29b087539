"""Issue 12 (3): an order whose panel's last known balance is below its estimated charge is held in
the queue (not sent, not failed) with a clear message and a warning to the operator; once a balance
check shows enough, the retry job sends it, once."""

import logging
from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import responses
from django.utils import translation

from smm import orders, providers, tasks
from smm.models import SMMOrder, SMMProvider, SMMService

from .conftest import PANEL_URL

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(settings):
    """The messages below are read in English (the site's default language is Arabic)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def calls(action):
    return [c for c in responses.calls if parse_qs(c.request.body).get("action") == [action]]


@pytest.fixture
def provider(make_provider):
    provider = make_provider(low_balance_threshold=Decimal("1"))
    provider.integration.configuration = {"retries": 0, "backoff": 0}
    provider.integration.save()
    SMMService.objects.create(provider=provider, service_id="1", name="IG", type="Default", rate="10",
                              min_quantity=10, max_quantity=10000)
    return provider


def balance_is(amount):
    responses.replace(responses.POST, PANEL_URL, json={"balance": amount, "currency": "USD"})


@responses.activate
def test_an_order_above_the_known_balance_is_held_then_sent_once_after_a_balance_refresh(
    provider, api, django_capture_on_commit_callbacks, caplog
):
    responses.add(responses.POST, PANEL_URL, json={})
    balance_is("5.00")
    providers.refresh_balance(provider)
    responses.calls.reset()

    with caplog.at_level(logging.WARNING, logger="smm"), django_capture_on_commit_callbacks(execute=True):
        r = api.post("/api/smm/orders", {"providerId": provider.pk, "serviceId": "1", "link": "https://x.ly/a",
                                         "quantity": 1000}, format="json")
    assert r.status_code == 201, r.json()
    order = SMMOrder.objects.get()
    assert order.charge == Decimal("10") and order.status == "created"
    assert calls("add") == []  # not sent, and not failed at the panel

    detail = api.get(f"/api/smm/orders/{order.pk}").json()
    assert detail["status"] == "Queued" and detail["error"].startswith("Held: balance too low.")
    assert "5.00 USD" in detail["error"] and "10" in detail["error"]
    # The operator: a warning in the log, and the panel flagged low (admin list filter, API `lowBalance`).
    assert any(f"SMM order {order.pk} held" in r.getMessage() for r in caplog.records)
    assert SMMProvider.objects.get(pk=provider.pk).low_balance
    assert api.get(f"/api/smm/providers/{provider.pk}").json()["lowBalance"] is True

    # Neither the retry job nor a second delivery of the send task sends it meanwhile.
    assert tasks.retry_queued_orders.apply().get() == {}
    assert tasks.submit_order.apply(args=[order.pk]).get() == "created"
    providers.refresh_balance(provider)  # still 5: still held, still flagged
    assert tasks.retry_queued_orders.apply().get() == {}
    assert SMMProvider.objects.get(pk=provider.pk).low_balance
    assert calls("add") == []

    balance_is("50")
    responses.add(responses.POST, PANEL_URL, json={"order": 777})
    providers.refresh_balance(provider)
    assert not SMMProvider.objects.get(pk=provider.pk).low_balance
    assert tasks.retry_queued_orders.apply().get() == {"sent": 1}
    assert tasks.retry_queued_orders.apply().get() == {}
    assert tasks.submit_order.apply(args=[order.pk]).get() == "pending"
    assert len(calls("add")) == 1
    order.refresh_from_db()
    assert (order.status, order.external_order_id, order.error) == ("pending", "777", "")


@responses.activate
def test_an_unknown_balance_or_one_that_suffices_holds_nothing(provider, merchant):
    responses.add(responses.POST, PANEL_URL, json={"order": 1})
    service = SMMService.objects.get(provider=provider)
    order, _created = orders.place_order(merchant, provider=provider, service=service,
                                         data={"link": "https://x.ly/a", "quantity": 1000})
    assert orders.submit_order(order).status == "pending"  # never asked: nothing to compare

    SMMProvider.objects.filter(pk=provider.pk).update(balance=Decimal("10"))
    provider.refresh_from_db()
    order, _created = orders.place_order(merchant, provider=provider, service=service,
                                         data={"link": "https://x.ly/b", "quantity": 1000})
    assert orders.submit_order(order).status == "pending"  # exactly enough
    assert len(calls("add")) == 2
