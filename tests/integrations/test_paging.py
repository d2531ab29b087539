"""The API's lists at any size (integrations.paging, integrations.api.pagination): a capped count,
page numbers to a depth, then cursors that keep their place while rows are added."""

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.api.pagination import PagePagination
from integrations.paging import CappedCountPaginator, Keyset, capped_count
from smm.models import SMMOrder, SMMService
from smm.providers import create_provider

URL = "/api/smm/orders"


@pytest.fixture
def orders(merchant):
    """45 orders of the merchant, newest first, two sharing each second (ties broken by id)."""
    provider = create_provider(owner=merchant, name="p", display_name="P", api_url="https://panel.example.test/api/v2",
                               api_key="k" * 32)
    service = SMMService.objects.create(provider=provider, service_id="1", name="Followers", rate="0.9",
                                        max_quantity=10**6)
    base = timezone.now().replace(microsecond=0) - timedelta(hours=1)

    def add(count, at):
        made = SMMOrder.objects.bulk_create([
            SMMOrder(owner=merchant, provider=provider, service=service, link=f"https://x.example/{i}", quantity=100,
                     status=SMMOrder.Status.COMPLETED if i % 3 else SMMOrder.Status.PENDING)
            for i in range(count)])
        for i, order in enumerate(made):
            SMMOrder.objects.filter(pk=order.pk).update(created_at=at - timedelta(seconds=i // 2))
        return made

    add(45, base)
    return add, base


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setattr(PagePagination, "count_cap", 20)
    monkeypatch.setattr(PagePagination, "max_depth", 20)


def ids(answer):
    return [row["id"] for row in answer["results"]]


def test_cursor_pages_continue_in_order_across_rows_added_meanwhile(api, orders):
    add, base = orders
    expected = list(SMMOrder.objects.order_by("-created_at", "-id").values_list("id", flat=True))
    first = api.get(URL, {"limit": 10}).json()
    assert ids(first) == expected[:10]
    add(5, base + timedelta(minutes=5))  # newer orders arrive: with page numbers page 2 would repeat rows
    seen, answer = ids(first), first
    while answer["nextCursor"]:
        answer = api.get(URL, {"limit": 10, "cursor": answer["nextCursor"]}).json()
        seen += ids(answer)
    assert seen == expected  # every row once, in order, none of the new ones, none repeated
    assert api.get(URL, {"limit": 10}).json()["count"] == 50


def test_a_tampered_or_foreign_cursor_is_a_400_on_cursor(api, orders):
    token = api.get(URL, {"limit": 10}).json()["nextCursor"]
    for bad in [token[:-3] + "xyz", "bm90IGpzb24", Keyset(SMMOrder.objects.all()).token(SMMOrder.objects.first())[:8],
                "WyJub3QgYSBkYXRlIiwxXQ", "W251bGwsMV0", "e30"]:
        response = api.get(URL, {"limit": 10, "cursor": bad})
        assert response.status_code == 400, bad
        assert "cursor" in response.json()
    both = api.get(URL, {"limit": 10, "cursor": token, "page": 2})
    assert both.status_code == 400 and "cursor" in both.json()


def test_count_is_capped_and_says_so(api, orders, small_limits):
    answer = api.get(URL, {"limit": 10}).json()
    assert (answer["count"], answer["countCapped"]) == (20, True)
    pending = api.get(URL, {"limit": 10, "status": "Pending"}).json()
    assert (pending["count"], pending["countCapped"]) == (15, False)
    assert capped_count(SMMOrder.objects.all(), 44) == (44, True)
    assert capped_count(SMMOrder.objects.all(), 45) == (45, False)


def test_pages_past_the_depth_are_a_400_and_next_turns_into_a_cursor(api, orders, small_limits):
    page2 = api.get(URL, {"limit": 10, "page": 2}).json()
    assert "cursor=" in page2["next"] and "page=" not in page2["next"]
    response = api.get(URL, {"limit": 10, "page": 3})
    assert response.status_code == 400 and "page" in response.json()
    following = api.get(page2["next"]).json()  # following next never meets the 400
    expected = list(SMMOrder.objects.order_by("-created_at", "-id").values_list("id", flat=True))
    assert ids(following) == expected[20:30]


def test_capped_paginator_counts_to_its_cap(orders):
    paginator = CappedCountPaginator(SMMOrder.objects.order_by("-created_at", "-id"), 10)
    paginator.cap = 30
    assert (paginator.count, paginator.capped, paginator.num_pages) == (30, True, 3)
    paginator = CappedCountPaginator(SMMOrder.objects.order_by("-created_at", "-id"), 10)
    assert (paginator.count, paginator.capped) == (45, False)
