"""The figures the smm app declares for the operators' dashboard (its `dashboard_figures`)."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.test import Client
from django.utils import timezone, translation

from smm.models import SMMOrder, SMMService


@pytest.fixture
def orders(make_provider, merchant):
    provider = make_provider()
    service = SMMService.objects.create(provider=provider, service_id="1", name="IG", type="Default", rate="1",
                                        min_quantity=10, max_quantity=1000)

    def place(status, days_ago=0):
        order = SMMOrder.objects.create(owner=merchant, provider=provider, service=service, link="https://x.ly",
                                        quantity=100, status=status)
        if days_ago:
            SMMOrder.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
        return order

    for status in ["completed", "completed", "failed", "pending", "unknown"]:
        place(status)
    place("failed", days_ago=2)  # before the period: not counted
    place("canceled", days_ago=3)


def figures(block):
    return [(str(f.label), f.value, f.tone) for f in block.figures]


@pytest.mark.django_db
def test_the_smm_figures_count_the_periods_orders(orders):
    with translation.override("en"):
        totals, by_status = apps.get_app_config("smm").dashboard_figures(timezone.now() - timedelta(days=1))
        assert str(totals.title) == "SMM orders"
        assert figures(totals) == [("Orders", 5, ""), ("Failed", 1, "bad")]
        assert str(by_status.title) == "SMM orders by status"
        assert figures(by_status) == [
            ("Pending", 1, ""), ("Completed", 2, "good"), ("Failed", 1, "bad"), ("Under review", 1, "warn"),
        ]


@pytest.mark.django_db
def test_the_dashboard_shows_the_smm_figures(orders, staff):
    client = Client()
    client.force_login(staff)
    html = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h3>SMM orders</h3>" in html and "<h3>SMM orders by status</h3>" in html
    assert '<div class="mon-figure"><dt>Orders</dt><dd>5</dd></div>' in html
    assert '<div class="mon-figure tone-good"><dt>Completed</dt><dd>2</dd></div>' in html


@pytest.mark.django_db
def test_with_no_orders_the_figures_are_zero_and_no_status_is_listed():
    totals, by_status = apps.get_app_config("smm").dashboard_figures(timezone.now() - timedelta(days=1))
    assert [f.value for f in totals.figures] == [0, 0] and by_status.figures == ()
