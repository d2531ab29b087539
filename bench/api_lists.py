"""Benchmark: list pages at a million SMM orders (issue 12, point 16).

    .venv/bin/python bench/api_lists.py [--orders 1000000] [--small 1000] [--requests 30]

Loads `--orders` orders of one merchant (and as many integration logs of its providers) with one SQL
statement each (generate_series on PostgreSQL, a recursive CTE on SQLite) into a throwaway database
made and dropped here (a test database of whatever DATABASE_URL points at; never the developer's
data), and `--small` orders of a second merchant. Then, through the real API (Django's test client,
token authentication, every middleware), p50/p95 of: the first page, the deepest page by number, a
deep page by cursor (the middle of the table), a status filter, a provider filter, and the refused
page 50,000 — for both merchants side by side, with their ratio (flat: about 1), and the first page,
page 50,000 and the status filter again with DRF's plain PageNumberPagination (COUNT(*) and OFFSET,
the naive way) for comparison. Then the admin's changelists of orders and logs (time and queries).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eishro.settings")
os.environ.setdefault("EISHRO_TEST_DB_SUFFIX", f"listbench{os.getpid()}")
os.environ["EISHRO_VAR_DIR"] = tempfile.mkdtemp(prefix="eishro-list-bench-")
# Production-like: no query log kept in memory (DEBUG), no manifest needed for the admin's pages.
os.environ["DEBUG"] = "0"
os.environ.setdefault("STATIC_MANIFEST", "0")

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

from django.db import connection  # noqa: E402

logging.getLogger("django.request").setLevel(logging.ERROR)  # the refused pages' 400s are expected

ORDER_SQL = {
    # %(n)s rows numbered n = 1..N: newest first, two orders per second (ties on created_at, broken by id),
    # spread over three providers, statuses mostly final as in a real history.
    "postgresql": """
        INSERT INTO smm_smmorder (reference, owner_id, provider_id, service_id, external_order_id, link, quantity,
            extra, status, charge, currency, error, attempts, idempotency_key, request_fingerprint, created_at,
            updated_at)
        SELECT gen_random_uuid(), %(owner)s, (%(providers)s::bigint[])[n %% 3 + 1],
            (%(services)s::bigint[])[n %% 3 + 1], n::text, 'https://instagram.com/p/' || n, 1000, '{}'::jsonb,
            %(status)s, 0.9, 'USD', '', 0, '', '', %(base)s::timestamptz - (n / 2) * interval '1 second',
            %(base)s::timestamptz
        FROM generate_series(1, %(count)s) AS n""",
    "sqlite": """
        WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %(count)s)
        INSERT INTO smm_smmorder (reference, owner_id, provider_id, service_id, external_order_id, link, quantity,
            extra, status, charge, currency, error, attempts, idempotency_key, request_fingerprint, created_at,
            updated_at)
        SELECT lower(hex(randomblob(16))), %(owner)s,
            CASE n %% 3 WHEN 0 THEN %(p0)s WHEN 1 THEN %(p1)s ELSE %(p2)s END,
            CASE n %% 3 WHEN 0 THEN %(s0)s WHEN 1 THEN %(s1)s ELSE %(s2)s END,
            CAST(n AS TEXT), 'https://instagram.com/p/' || n, 1000, '{}', %(status)s, 0.9, 'USD', '', 0, '', '',
            datetime(%(base)s, '-' || (n / 2) || ' seconds'), %(base)s
        FROM s""",
}
STATUS_SQL = ("CASE n %% 20 WHEN 0 THEN 'pending' WHEN 1 THEN 'in_progress' WHEN 2 THEN 'failed' "
              "WHEN 3 THEN 'canceled' WHEN 4 THEN 'partial' ELSE 'completed' END")
LOG_SQL = {
    "postgresql": """
        INSERT INTO integration_logs (id, integration_id, request_id, transport, operation, endpoint, method,
            request_body, response_status, response_body, request_duration, started_at, completed_at, status,
            error_message, error_code, user_agent)
        SELECT gen_random_uuid(), (%(integrations)s::uuid[])[n %% 3 + 1], '', 'http', 'status',
            'https://panel.example.test/api/v2', 'POST', 'action=status&orders=1,2,3', 200,
            '{"1": {"status": "Completed"}}', 120.5, %(base)s::timestamptz - (n / 2) * interval '1 second',
            %(base)s::timestamptz, 'success', '', '', ''
        FROM generate_series(1, %(count)s) AS n""",
    "sqlite": """
        WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %(count)s)
        INSERT INTO integration_logs (id, integration_id, request_id, transport, operation, endpoint, method,
            request_body, response_status, response_body, request_duration, started_at, completed_at, status,
            error_message, error_code, user_agent)
        SELECT lower(hex(randomblob(16))), CASE n %% 3 WHEN 0 THEN %(i0)s WHEN 1 THEN %(i1)s ELSE %(i2)s END,
            '', 'http', 'status', 'https://panel.example.test/api/v2', 'POST', 'action=status&orders=1,2,3', 200,
            '{"1": {"status": "Completed"}}', 120.5, datetime(%(base)s, '-' || (n / 2) || ' seconds'), %(base)s,
            'success', '', '', ''
        FROM s""",
}


class Merchant:
    """A merchant with three panels, their orders loaded with one statement, and an API client."""

    def __init__(self, name, orders, logs=0):
        from django.contrib.auth import get_user_model
        from django.test import Client
        from rest_framework.authtoken.models import Token

        from smm.models import SMMService
        from smm.providers import create_provider

        self.user = get_user_model().objects.create_user(name)
        self.providers = [create_provider(owner=self.user, name=f"{name}-{i}", display_name=f"{name} {i}",
                                          api_url=f"https://panel{i}.example.test/api/v2", api_key="k" * 32)
                          for i in range(3)]
        services = [SMMService.objects.create(provider=p, service_id="1", name="Followers", rate="0.9",
                                              max_quantity=10**6) for p in self.providers]
        self.orders = orders
        self._load(ORDER_SQL, orders, owner=self.user.pk, status=STATUS_SQL,
                   providers=[p.pk for p in self.providers], services=[s.pk for s in services])
        if logs:
            self._load(LOG_SQL, logs, integrations=[p.integration_id for p in self.providers])
        self.client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=self.user).key}",
                             HTTP_X_FORWARDED_PROTO="https")  # production: behind a TLS proxy

    def _load(self, sql, count, **params):
        from django.utils import timezone

        started = time.perf_counter()
        base = timezone.now().replace(microsecond=0)
        params = {"count": count, "base": base.strftime("%Y-%m-%d %H:%M:%S") if connection.vendor == "sqlite"
                  else base.isoformat(), **params}
        statement = sql[connection.vendor]
        if "%(status)s" in statement:
            statement = statement.replace("%(status)s", params.pop("status"))
        for key in ("providers", "services", "integrations"):
            if key not in params:
                continue
            # UUIDs as each database stores them; SQLite has no arrays: one parameter per provider.
            values = params[key]
            if key == "integrations":
                values = [v.hex if connection.vendor == "sqlite" else str(v) for v in values]
            if connection.vendor == "sqlite":
                del params[key]
                params.update({f"{key[0]}{i}": value for i, value in enumerate(values)})
            else:
                params[key] = values
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
        print(f"  loaded {count:,} rows in {time.perf_counter() - started:.1f} s", flush=True)


def analyze():
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # What autovacuum does to a table this size within minutes: statistics and the visibility
            # map (index-only scans for the capped counts).
            for table in ("smm_smmorder", "integration_logs"):
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")
    print(f"  analyzed in {time.perf_counter() - started:.1f} s", flush=True)


def timed(client, url, requests, expect=200):
    response = None
    for _ in range(3):  # warm-up
        response = client.get(url)
    if expect and response.status_code != expect:
        raise SystemExit(f"{url}: {response.status_code} (expected {expect}): {response.content[:300]!r}")
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], response


def deep_cursor(merchant):
    """The cursor of the position in the middle of the merchant's orders."""
    from integrations.paging import Keyset
    from smm.models import SMMOrder

    queryset = SMMOrder.objects.filter(owner=merchant.user).order_by("-created_at", "-id")
    keyset = Keyset(queryset)
    return keyset.token(keyset.order(queryset)[merchant.orders // 2])


def api_figures(big, small, requests):
    from smm.models import SMMOrder

    pending = "status=Pending"
    cases = [
        ("first page", lambda m: "page=1&limit=10", 200),
        ("deepest page by number (1,000)", lambda m: "page=1000&limit=10", 200),
        ("deep page by cursor (middle)", lambda m: f"cursor={deep_cursor(m)}&limit=10", 200),
        ("status filter, first page", lambda m: f"{pending}&page=1&limit=10", 200),
        ("provider filter, first page", lambda m: f"provider={m.providers[1].pk}&page=1&limit=10", 200),
        ("page 50,000 (refused: 400)", lambda m: "page=50000&limit=10", 400),
    ]
    print(f"\n  API, GET /api/smm/orders?…, {requests} requests each, ms"
          f"\n  {'':34}{f'{big.orders:,} orders':>22}{f'{small.orders:,} orders':>22}{'p95 ratio':>11}")
    print(f"  {'':34}{'p50':>11}{'p95':>11}{'p50':>11}{'p95':>11}")
    worst = 0
    for label, query, expect in cases:
        row = []
        for merchant in (big, small):
            if expect == 200 and label.startswith("deepest") and merchant.orders < 10_000:
                row.append(None)
                continue
            p50, p95, response = timed(merchant.client, f"/api/smm/orders?{query(merchant)}", requests, expect)
            if expect == 200:
                assert len(response.json()["results"]) == 10, label
            row.append((p50, p95))
        if row[0] and expect == 200:
            worst = max(worst, row[0][1])
        cells = "".join(f"{a:11.1f}{b:11.1f}" if pair else f"{'—':>11}{'—':>11}" for pair in row
                        for a, b in [pair or (0, 0)])
        ratio = f"{row[0][1] / row[1][1]:11.2f}" if all(row) else f"{'—':>11}"
        print(f"  {label:34}{cells}{ratio}")
    print(f"  worst p95 at {big.orders:,} orders: {worst:.1f} ms (target ≤ 30)")

    from rest_framework.pagination import PageNumberPagination

    from smm.views import OrderViewSet

    class Naive(PageNumberPagination):  # DRF's own: COUNT(*) over every matching row, then OFFSET
        page_size_query_param = "limit"
        max_page_size = 100

    ours = OrderViewSet.pagination_class
    print(f"\n  the naive way (DRF's PageNumberPagination: COUNT(*) and OFFSET) at {big.orders:,} orders, "
          f"{max(5, requests // 3)} requests each, ms")
    for label, query in [("first page", "page=1&limit=10"), ("page 50,000", "page=50000&limit=10"),
                         ("status filter, first page", f"{pending}&page=1&limit=10")]:
        p50_ours = None
        try:
            p50_ours = timed(big.client, f"/api/smm/orders?{query}", max(5, requests // 3),
                             400 if "50,000" in label else 200)[0]
            OrderViewSet.pagination_class = Naive
            p50, p95, _ = timed(big.client, f"/api/smm/orders?{query}", max(5, requests // 3), expect=None)
        finally:
            OrderViewSet.pagination_class = ours
        what = "(ours: 400, use cursor)" if "50,000" in label else f"ours p50 {p50_ours:.1f}, ×{p50 / p50_ours:.1f}"
        print(f"  {label:34}p50 {p50:9.1f}  p95 {p95:9.1f}   {what}")
    assert SMMOrder.objects.filter(owner=big.user).exists()


def admin_figures(requests):
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import CaptureQueriesContext


    staff = get_user_model().objects.create_superuser("bench-admin", "admin@example.ly", "pw")
    client = Client(HTTP_X_FORWARDED_PROTO="https")
    client.force_login(staff)
    print(f"\n  admin changelists, {requests // 3} requests each, ms")
    from django.utils import timezone

    today = timezone.localtime()
    month = f"created_at__year={today.year}&created_at__month={today.month}"
    for url in ["/admin/smm/smmorder/", "/admin/smm/smmorder/?status__exact=pending",
                f"/admin/smm/smmorder/?{month}", f"/admin/smm/smmorder/?{month}&created_at__day={today.day}",
                "/admin/smm/smmorder/?p=99", "/admin/integrations/integrationlog/",
                "/admin/integrations/integrationlog/?status__exact=success&method=POST"]:
        p50, p95, _ = timed(client, url, max(5, requests // 3))
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        print(f"  {url:72}p50 {p50:8.1f}  p95 {p95:8.1f}   {len(queries)} queries"
              f"{'   (target < 1000 ms)' if p95 >= 1000 else ''}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from integrations.partitions import ensure_partitions

        ensure_partitions()
        print(f"  database: {connection.vendor}", flush=True)
        big = Merchant("bench-big", args.orders, logs=args.orders)
        small = Merchant("bench-small", args.small)
        analyze()
        api_figures(big, small, args.requests)
        admin_figures(args.requests)
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
