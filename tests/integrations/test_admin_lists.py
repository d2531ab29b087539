"""The admin's order and log lists cost the same at any size (integrations.paging.FlatListAdminMixin):
no COUNT and no DISTINCT over the table, a date hierarchy answered by index probes that still
shows the right years, months and days, and filters that read only the newest rows."""

import re
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations.models import IntegrationLog
from integrations.paging import CappedCountPaginator
from smm.models import SMMOrder, SMMService
from smm.providers import create_provider

ORDERS = "/admin/smm/smmorder/"
LOGS = "/admin/integrations/integrationlog/"


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def provider(merchant):
    return create_provider(owner=merchant, name="p", display_name="P", api_url="https://panel.example.test/api/v2",
                           api_key="k" * 32)


def make_orders(provider, stamps):
    service = SMMService.objects.create(provider=provider, service_id="1", name="Followers", rate="0.9",
                                        type="Package", max_quantity=10**6)
    made = SMMOrder.objects.bulk_create([SMMOrder(owner=provider.owner, provider=provider, service=service,
                                                  quantity=10, status=SMMOrder.Status.COMPLETED) for _ in stamps])
    for order, stamp in zip(made, stamps, strict=True):
        SMMOrder.objects.filter(pk=order.pk).update(created_at=stamp)


def whole_table_reads(queries, table):
    """Statements that count or DISTINCT the rows of `table` without a LIMIT inside."""
    bad = []
    for query in queries:
        sql = query["sql"]
        if f'"{table}"' not in sql:
            continue
        if "DISTINCT" in sql.upper() or ("COUNT(" in sql.upper() and "LIMIT" not in sql.upper()):
            bad.append(sql)
    return bad


def aware(*args):
    return timezone.make_aware(datetime(*args))


@pytest.mark.django_db
def test_order_list_counts_to_the_cap_and_never_scans(admin_client, provider, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "cap", 30)
    make_orders(provider, [aware(2025, 3, 4, 10) - timedelta(minutes=i) for i in range(40)]
                + [aware(2026, 7, 1, 12)])
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(ORDERS)
    assert response.status_code == 200
    assert response.context["cl"].result_count == 30  # capped, not 41
    assert whole_table_reads(queries, "smm_smmorder") == []
    page = response.content.decode()
    # The hierarchy spans two years: both offered, found by probes, not by DISTINCT.
    assert "created_at__year=2025" in page and "created_at__year=2026" in page
    assert "created_at__year=2024" not in page


@pytest.mark.django_db
def test_date_hierarchy_drills_down_to_the_days_that_have_orders(admin_client, provider):
    make_orders(provider, [aware(2026, 2, 3, 9), aware(2026, 2, 3, 23, 59), aware(2026, 2, 17, 0, 1),
                           aware(2026, 5, 1, 12)])
    year = admin_client.get(ORDERS, {"created_at__year": 2026}).content.decode()
    months = set(re.findall(r"created_at__month=(\d+)", year))
    assert months == {"2", "5"}
    with CaptureQueriesContext(connection) as queries:
        month = admin_client.get(ORDERS, {"created_at__year": 2026, "created_at__month": 2})
    assert whole_table_reads(queries, "smm_smmorder") == []
    days = set(re.findall(r"created_at__day=(\d+)", month.content.decode()))
    assert days == {"3", "17"}
    assert month.context["cl"].result_count == 3


@pytest.mark.django_db
def test_log_list_offers_recent_methods_without_reading_the_whole_table(admin_client, provider):
    now = timezone.now()
    IntegrationLog.objects.bulk_create([
        IntegrationLog(integration=provider.integration, endpoint="https://panel.example.test", method=method,
                       transport=transport, started_at=now - timedelta(seconds=i))
        for i, (transport, method) in enumerate([("http", "POST"), ("http", "GET"), ("ftp", "RETR"),
                                                 ("http", "POST")])])
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(LOGS)
    assert response.status_code == 200
    assert whole_table_reads(queries, "integration_logs") == []
    page = response.content.decode()
    for method in ("POST", "GET", "RETR"):
        assert f"method={method}" in page
    filtered = admin_client.get(LOGS, {"method": "RETR"})
    assert filtered.context["cl"].result_count == 1
    assert [row.method for row in filtered.context["cl"].result_list] == ["RETR"]


@pytest.mark.django_db
def test_lists_sort_only_by_indexed_columns(admin_client, provider):
    make_orders(provider, [aware(2026, 1, 1, 10)])
    page = admin_client.get(ORDERS).content.decode()
    assert "o=2" not in page  # the owner column (second) offers no sort: it would sort a million rows
    assert 'class="sortable' in page  # id and created_at still sort
