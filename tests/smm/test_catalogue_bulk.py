"""The catalogue's bulk upsert (COPY on PostgreSQL, executemany on SQLite) stores every value as the
panel sent it, and the sync's log row keeps a redacted head of a big catalogue, not all of it."""

import json
import threading
from decimal import Decimal

import pytest
import responses
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from integrations.models import IntegrationLog
from smm.catalogue import sync_services
from smm.models import SMMProvider, SMMService

from .conftest import PANEL_URL

# Characters COPY's text format and SQL quoting must carry through untouched.
AWKWARD = "Tab\there, line\nbreak, back\\slash, quote ' and \" — متابعين حقيقيين \\N %s {}"


def catalogue(size, first=None):
    rows = [{"service": str(1000 + i), "name": f"Followers {i}", "type": "Default", "category": "Instagram",
             "rate": f"{i % 97}.{i % 1000:03d}123", "min": 10 + i, "max": 100_000 + i, "refill": i % 2 == 0,
             "cancel": i % 3 == 0, "desc": f"{AWKWARD} #{i} " + "x" * 300} for i in range(size)]
    if first:
        rows[0].update(first)
    return rows


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_bulk_upsert_stores_every_value_exactly_and_updates_on_resync(make_provider):
    provider = make_provider()
    rows = catalogue(3000)
    responses.post(PANEL_URL, json=rows)
    assert sync_services(provider)["created"] == 3000
    stored = {s.service_id: s for s in SMMService.objects.filter(provider=provider)}
    assert len(stored) == 3000
    for i in (0, 1, 1234, 2999):
        row, service = rows[i], stored[rows[i]["service"]]
        assert service.description == row["desc"]
        assert service.rate == Decimal(row["rate"])
        assert (service.min_quantity, service.max_quantity) == (row["min"], row["max"])
        assert (service.refill, service.cancel, service.dripfeed) == (row["refill"], row["cancel"], False)
        assert service.is_active

    rows[5].update(name="Renamed", rate="1.5", desc="new text")
    responses.replace(responses.POST, PANEL_URL, json=rows[:2000])
    result = sync_services(provider)
    assert (result["created"], result["updated"], result["deactivated"]) == (0, 2000, 1000)
    changed = SMMService.objects.get(provider=provider, service_id=rows[5]["service"])
    assert (changed.name, changed.rate, changed.description) == ("Renamed", Decimal("1.5"), "new text")


@pytest.mark.django_db(transaction=True)
@responses.activate
@override_settings(INTEGRATION_LOG_BODY_LIMIT=2000)
def test_log_row_of_a_big_catalogue_is_a_redacted_head(make_provider):
    provider = make_provider()
    rows = catalogue(500, first={"token": "tok-live-abcdef123456", "desc": "card 4111 1111 1111 1111"})
    body = json.dumps(rows)
    responses.post(PANEL_URL, body=body, content_type="application/json")
    sync_services(provider)
    log = IntegrationLog.objects.get(integration=provider.integration, operation="services")
    assert "tok-live-abcdef123456" not in log.response_body
    assert "4111 1111 1111 1111" not in log.response_body
    assert '"Followers 0"' in log.response_body  # the head is there, readable
    assert '"Followers 400"' not in log.response_body
    assert len(log.response_body) < 2 * 2000 + 200
    assert log.response_body.endswith("more characters, not logged]")


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_first_sync_and_resync_each_take_a_constant_number_of_queries(make_provider):
    queries = {}
    for size in (40, 400):
        provider = make_provider(name=f"panel{size}")
        responses.post(PANEL_URL, json=catalogue(size))
        for kind in ("first", "resync"):
            with CaptureQueriesContext(connection) as ctx:
                result = sync_services(provider)
            assert result["active"] == size and result["created"] == (size if kind == "first" else 0)
            queries.setdefault(kind, set()).add(len(ctx))
        responses.reset()
    assert all(len(counts) == 1 for counts in queries.values()), queries


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
@responses.activate
def test_two_first_syncs_of_one_panel_at_once_both_succeed(make_provider):
    """Both see an empty catalogue when they fetch it; the provider's row lock makes the second wait
    and merge into what the first loaded, instead of loading it again and hitting the unique key."""
    provider = make_provider()
    rows = catalogue(2000)
    both_fetched = threading.Barrier(2, timeout=10)

    def answer(request):
        both_fetched.wait()
        return 200, {"Content-Type": "application/json"}, json.dumps(rows)

    responses.add_callback(responses.POST, PANEL_URL, callback=answer)
    results, failures = [], []

    def sync():
        try:
            results.append(sync_services(SMMProvider.objects.get(pk=provider.pk)))
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sync) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failures == []
    assert sorted(r["created"] for r in results) == [0, 2000]
    assert SMMService.objects.filter(provider=provider).count() == 2000


@pytest.mark.django_db(transaction=True)
@responses.activate
def test_a_rate_finer_than_the_column_is_rounded_alike_by_first_sync_and_resync(make_provider):
    provider = make_provider()
    rows = catalogue(3, first={"rate": "0.1234567"})
    responses.post(PANEL_URL, json=rows)
    sync_services(provider)  # first: loaded straight into the table
    assert SMMService.objects.get(provider=provider, service_id="1000").rate == Decimal("0.123457")
    rows[0]["rate"] = "2.0000004"
    responses.replace(responses.POST, PANEL_URL, json=rows)
    sync_services(provider)  # resync: through the staging table
    assert SMMService.objects.get(provider=provider, service_id="1000").rate == Decimal("2.000000")
