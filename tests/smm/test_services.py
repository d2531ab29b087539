"""Services against the simulator over real HTTP (live_server): sync, orders, idempotency, polling,
refill, cancel, balance, cleanup."""

import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from integrations.errors import ProviderAuthError
from integrations.models import IntegrationLog
from integrations.sandbox import clear_fault, set_fault
from smm.catalogue import sync_services
from smm.models import SandboxPanel, SandboxPanelOrder, SMMOrder, SMMRefill, SMMService
from smm.orders import (
    IdempotencyConflict,
    cancel_order,
    cleanup_orders,
    place_order,
    poll_refills,
    refill_order,
    resolve_unknown,
    submit_order,
)
from smm.polling import poll_orders
from smm.providers import refresh_balance
from smm.sandbox import catalogue

from .conftest import first_service


def sync_queries(provider):
    with CaptureQueriesContext(connection) as ctx:
        sync_services(provider)
    return len(ctx.captured_queries)


def test_sync_upserts_in_constant_queries_and_retires_vanished_services(sandbox_provider):
    provider = sandbox_provider("smmkings", catalogue_size=40)
    sync_services(provider)  # a first sync loads an empty catalogue its own way (test_catalogue_bulk)
    small = sync_queries(provider)
    assert SMMService.objects.filter(provider=provider, is_active=True).count() == 40
    SandboxPanel.objects.filter(code="smmkings").update(catalogue_size=400)
    big = sync_queries(provider)
    assert small == big  # constant in the catalogue size
    assert SMMService.objects.filter(provider=provider).count() == 400
    provider.refresh_from_db()
    assert provider.services_count == 400 and provider.last_sync_at is not None
    # The panel drops services: kept (orders may reference them) but switched off.
    SandboxPanel.objects.filter(code="smmkings").update(catalogue_size=30)
    result = sync_services(provider)
    assert result["deactivated"] == 370 and result["created"] == 0
    assert SMMService.objects.filter(provider=provider, is_active=True).count() == 30
    s = catalogue("smmkings", 30)["2001"]
    stored = SMMService.objects.get(provider=provider, service_id="2001")
    assert stored.rate == s["rate"] and stored.name == s["name"] and stored.min_quantity == s["min"]


def test_sync_reads_each_panels_quirks(sandbox_provider):
    for code in ("jap", "secsers"):
        provider = sandbox_provider(code, catalogue_size=25)
        assert sync_services(provider)["active"] == 25
    secsers = SMMService.objects.filter(provider__integration__code="secsers")
    assert all(s.description for s in secsers)  # secsers sends `desc`


def _order(provider, user, data=None, key="", stype="Default", code="jap", size=60):
    sync_services(provider)
    spec = first_service(code, size, stype)
    service = SMMService.objects.get(provider=provider, service_id=str(spec["service"]))
    data = data or {"link": "https://instagram.com/p/abc", "quantity": spec["min"]}
    return place_order(user, provider=provider, service=service, data=data, idempotency_key=key)


def test_order_is_placed_and_polled_to_completion(sandbox_provider, merchant):
    provider = sandbox_provider("jap", step_seconds=0.3)
    order, created = _order(provider, merchant)
    assert created and order.status == "created" and order.charge is not None
    submit_order(order)
    order.refresh_from_db()
    assert order.status == "pending" and order.external_order_id
    panel_order = SandboxPanelOrder.objects.get(pk=int(order.external_order_id))
    assert panel_order.quantity == order.quantity
    deadline = time.time() + 10
    while order.status not in ("completed", "partial") and time.time() < deadline:
        time.sleep(0.3)
        poll_orders(provider)
        order.refresh_from_db()
    assert order.status in ("completed", "partial")
    assert order.completed_at and order.currency == "USD" and order.start_count == panel_order.start_count
    provider.refresh_from_db()
    assert provider.total_orders == 1 and provider.total_spent == order.charge


def test_panel_rejection_fails_the_order_with_the_panels_text(sandbox_provider, merchant):
    provider = sandbox_provider("jap", balance="0.00001")
    order, _ = _order(provider, merchant)
    submit_order(order)
    order.refresh_from_db()
    assert order.status == "failed" and order.error == "Not enough funds on balance"
    assert SandboxPanelOrder.objects.count() == 0


def test_retried_create_with_the_same_key_makes_one_panel_order(sandbox_provider, merchant):
    provider = sandbox_provider("jap")
    first, _ = _order(provider, merchant, key="retry-1")
    submit_order(first)
    again, created_again = _order(provider, merchant, key="retry-1")
    submit_order(again)  # a duplicate submit is a no-op: the row is no longer `created`
    assert not created_again and again.pk == first.pk
    assert SandboxPanelOrder.objects.count() == 1 and SMMOrder.objects.count() == 1


def test_same_key_for_a_different_order_is_a_conflict(sandbox_provider, merchant):
    provider = sandbox_provider("jap")
    _order(provider, merchant, key="k1")
    spec = first_service("jap", 60, "Default")
    service = SMMService.objects.get(provider=provider, service_id=str(spec["service"]))
    with pytest.raises(IdempotencyConflict):
        place_order(merchant, provider=provider, service=service,
                    data={"link": "https://instagram.com/p/OTHER", "quantity": spec["min"]},
                    idempotency_key="k1")


def test_timeout_after_acceptance_leaves_unknown_never_a_second_add(sandbox_provider, merchant):
    provider = sandbox_provider("jap")
    provider.integration.configuration = {"timeout": 0.5}
    provider.integration.save()
    order, _ = _order(provider, merchant, key="slow-1")
    set_fault("smm", "jap", hang_s=1.5, times=1)  # the panel takes the order, but answers too late
    try:
        submit_order(order)
    finally:
        clear_fault("smm", "jap")
    order.refresh_from_db()
    assert order.status == "unknown"
    deadline = time.time() + 5
    while not SandboxPanelOrder.objects.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert SandboxPanelOrder.objects.count() == 1
    # The client retries: same order back, nothing re-sent.
    again, created = _order(provider, merchant, key="slow-1")
    submit_order(again)
    time.sleep(0.3)
    assert not created and again.pk == order.pk and SandboxPanelOrder.objects.count() == 1
    # Polling does not touch it; an operator resolves it with the id from the panel's history.
    poll_orders(provider)
    order.refresh_from_db()
    assert order.status == "unknown"
    panel_id = SandboxPanelOrder.objects.get().pk
    assert resolve_unknown(order, external_order_id=str(panel_id))
    order.refresh_from_db()
    assert order.status == "pending" and order.external_order_id == str(panel_id)
    with pytest.raises(ValidationError):
        resolve_unknown(order, mark_failed=True)  # no longer under review


def test_unknown_order_can_be_marked_failed(sandbox_provider, merchant):
    provider = sandbox_provider("jap")
    order, _ = _order(provider, merchant)
    SMMOrder.objects.filter(pk=order.pk).update(status="unknown")
    with translation.override("en"):
        assert resolve_unknown(order, mark_failed=True)
    order.refresh_from_db()
    assert order.status == "failed" and "operator" in order.error


def test_polling_uses_one_call_per_100_open_orders(sandbox_provider, merchant):
    provider = sandbox_provider("secsers", step_seconds=60)
    sync_services(provider)
    spec = first_service("secsers", 60, "Default")
    service = SMMService.objects.get(provider=provider, service_id=str(spec["service"]))
    panel = SandboxPanel.objects.get(code="secsers")
    panel_orders = SandboxPanelOrder.objects.bulk_create(
        [SandboxPanelOrder(panel=panel, service=str(spec["service"]), link="https://x.ly", quantity=100,
                           charge=Decimal("0.1")) for _ in range(230)]
    )
    SMMOrder.objects.bulk_create(
        [SMMOrder(owner=merchant, provider=provider, service=service, link="https://x.ly", quantity=100,
                  status="pending", external_order_id=str(p.pk)) for p in panel_orders]
        + [SMMOrder(owner=merchant, provider=provider, service=service, link="https://x.ly", quantity=100,
                    status="pending", external_order_id="999999")]
    )
    IntegrationLog.objects.all().delete()
    result = poll_orders(provider)
    assert result["calls"] == 3 == IntegrationLog.objects.count()  # ceil(231 / 100)
    assert result["errors"] == 1
    assert SMMOrder.objects.get(external_order_id="999999").error == "Incorrect order ID"
    assert SMMOrder.objects.filter(status="pending", last_checked_at__isnull=False).count() == 231


def test_refill_and_refill_status(sandbox_provider, merchant):
    provider = sandbox_provider("jap", step_seconds=0.05)
    sync_services(provider)
    spec = first_service("jap", 60, "Default", refill=True)
    service = SMMService.objects.get(provider=provider, service_id=str(spec["service"]))
    order, _ = place_order(merchant, provider=provider, service=service,
                           data={"link": "https://instagram.com/p/r", "quantity": spec["min"]})
    with pytest.raises(ValidationError):
        refill_order(order)  # not finished yet
    submit_order(order)
    time.sleep(0.3)
    poll_orders(provider)
    order.refresh_from_db()
    assert order.status in ("completed", "partial")
    refill = refill_order(order)
    assert refill.status == "pending" and refill.external_refill_id
    time.sleep(0.2)
    assert poll_refills(provider) == 1
    refill.refresh_from_db()
    assert refill.status in ("completed", "rejected", "in_progress")


def test_cancel_follows_the_services_rule(sandbox_provider, merchant):
    provider = sandbox_provider("jap", step_seconds=30)
    sync_services(provider)
    cancellable = first_service("jap", 60, "Default", cancel=True)
    fixed = first_service("jap", 60, "Default", cancel=False)
    orders = []
    for spec in (cancellable, fixed):
        service = SMMService.objects.get(provider=provider, service_id=str(spec["service"]))
        order, _ = place_order(merchant, provider=provider, service=service,
                               data={"link": "https://t.me/x", "quantity": spec["min"]})
        orders.append(submit_order(order))
    cancel_order(orders[0])
    poll_orders(provider)
    orders[0].refresh_from_db()
    assert orders[0].status == "canceled" and orders[0].cancel_requested_at
    with pytest.raises(ValidationError):
        cancel_order(orders[1])


def test_balance_falls_with_orders_and_low_balance_is_flagged(sandbox_provider, merchant, caplog):
    spec = first_service("smmkings", 60, "Default")
    charge = (spec["rate"] * spec["min"] / 1000).quantize(Decimal("0.00001"))
    start = Decimal("10") + charge / 2  # above the threshold now, below it after one order
    provider = sandbox_provider("smmkings", balance=str(start), low_balance_threshold=Decimal("10"))
    amount, currency = refresh_balance(provider)
    assert amount == start.quantize(Decimal("0.00001")) and currency == "USD" and not provider.low_balance
    order, _ = _order(provider, merchant, code="smmkings")
    submit_order(order)
    order.refresh_from_db()
    assert order.status == "pending"
    with caplog.at_level("WARNING", logger="smm"):
        amount, _ = refresh_balance(provider)
    provider.refresh_from_db()
    assert amount == (start - charge).quantize(Decimal("0.00001")) < Decimal("10")
    assert provider.low_balance and provider.balance == amount
    assert "balance is low" in caplog.text


def test_bad_key_on_the_html_panel_is_an_auth_error(sandbox_provider):
    provider = sandbox_provider("smmkings")
    provider.integration.credentials = {"api_key": "wrong"}
    provider.integration.save()
    with pytest.raises(ProviderAuthError, match="HTML page"):
        refresh_balance(provider)


def test_cleanup_deletes_only_old_finished_orders(sandbox_provider, merchant):
    provider = sandbox_provider("jap")
    order, _ = _order(provider, merchant)
    old_open, _ = _order(provider, merchant, key="other")
    SMMOrder.objects.filter(pk=order.pk).update(status="completed", updated_at=timezone.now() - timedelta(days=400))
    SMMOrder.objects.filter(pk=old_open.pk).update(status="pending", updated_at=timezone.now() - timedelta(days=400))
    SMMRefill.objects.create(order=order)
    assert cleanup_orders(days=180) >= 1
    assert list(SMMOrder.objects.values_list("pk", flat=True)) == [old_open.pk]
