"""Issue 12 (2): a provider's statistics are right after every final state of an order, whether or
not the panel has open orders to poll, and the weekly cleanup does not shrink them."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import responses
from django.db import connection
from django.utils import timezone

from smm import orders, providers, tasks
from smm.models import SMMOrder, SMMProvider, SMMService

from .conftest import PANEL_URL


@pytest.fixture
def provider(make_provider):
    provider = make_provider()
    provider.integration.configuration = {"retries": 0, "backoff": 0}
    provider.integration.save()
    return provider


def _service(provider):
    return SMMService.objects.get_or_create(
        provider=provider, service_id="1", defaults={"name": "IG", "type": "Default", "rate": "1",
                                                     "min_quantity": 10, "max_quantity": 1000},
    )[0]


def _order(provider, owner, status="created", charge=None, **fields):
    return SMMOrder.objects.create(owner=owner, provider=provider, service=_service(provider), link="https://x.ly",
                                   quantity=100, status=status, charge=charge, **fields)


def stats(provider):
    provider = SMMProvider.objects.get(pk=provider.pk)
    return provider.total_orders, provider.completed_orders, provider.failed_orders, provider.total_spent


@pytest.mark.django_db
@responses.activate
def test_an_order_failed_when_sent_is_counted_at_once(provider, merchant):
    responses.add(responses.POST, PANEL_URL, json={"error": "Incorrect service ID"})
    order = _order(provider, merchant, charge=Decimal("0.1"))
    assert tasks.submit_order.apply(args=[order.pk]).get() == "failed"
    # No open order on this panel: no poll would ever have counted it.
    assert stats(provider) == (1, 0, 1, Decimal("0"))


@pytest.mark.django_db
def test_an_operators_resolution_is_counted_at_once(provider, merchant):
    failed = _order(provider, merchant, status="unknown")
    sent = _order(provider, merchant, status="unknown", charge=Decimal("2.5"))
    orders.resolve_unknown(failed, mark_failed=True)
    assert stats(provider) == (2, 0, 1, Decimal("0"))
    orders.resolve_unknown(sent, external_order_id="991")
    assert stats(provider) == (2, 0, 1, Decimal("2.5"))


@pytest.mark.django_db
def test_the_weekly_cleanup_leaves_the_totals_unchanged(provider, merchant):
    long_ago = timezone.now() - timedelta(days=400)
    for status, charge in [("completed", "3"), ("completed", "4"), ("partial", "1.5"), ("failed", None),
                           ("canceled", "9")]:
        old = _order(provider, merchant, status=status, charge=charge and Decimal(charge))
        SMMOrder.objects.filter(pk=old.pk).update(updated_at=long_ago)
    _order(provider, merchant, status="completed", charge=Decimal("10"))  # recent: kept
    _order(provider, merchant, status="pending", charge=Decimal("2"))  # open: kept
    providers.refresh_stats(provider)
    before = stats(provider)
    assert before == (7, 3, 1, Decimal("20.5"))

    assert tasks.cleanup_old_orders.apply(kwargs={"days": 180}).get() == 5
    assert SMMOrder.objects.count() == 2
    assert stats(provider) == before
    providers.refresh_stats(provider)  # as the next poll does
    assert stats(provider) == before
    # Orders finishing after the cleanup add to what was kept.
    SMMOrder.objects.filter(provider=provider, status="pending").update(status="completed")
    providers.refresh_stats(provider)
    assert stats(provider) == (7, 4, 1, Decimal("20.5"))


@pytest.mark.django_db(transaction=True)
def test_concurrent_final_moves_lose_no_count(provider, merchant, monkeypatch):
    workers = 6
    unknown = [_order(provider, merchant, status="unknown") for _ in range(workers)]
    figures = providers._figures
    first = threading.Lock()

    def slow_figures(orders_qs):
        # The first refresh counts before the others' moves and writes after their refreshes: one
        # that wrote what it counted without holding the provider's row would write its older count
        # over the newer ones.
        result = figures(orders_qs)
        threading.Event().wait(0.6 if first.acquire(blocking=False) else 0.05)
        return result

    monkeypatch.setattr(providers, "_figures", slow_figures)
    start = threading.Barrier(workers)
    errors = []

    def resolve(n, order):
        try:
            start.wait()
            threading.Event().wait(0.05 * n)
            orders.resolve_unknown(SMMOrder.objects.get(pk=order.pk), mark_failed=True)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=resolve, args=(n, order)) for n, order in enumerate(unknown)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stats(provider) == (workers, 0, workers, Decimal("0"))
