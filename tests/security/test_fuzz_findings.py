"""What the fuzzer found (test_fuzz.py), kept as plain tests: the fuzzer's budget in CI is small and
may not draw the same case again.

`?since=` with a date-time at the edge of what Python can represent: an offset beyond PostgreSQL's
±15:59 (`…-22:26`) was a DataError, and a first or last day whose UTC instant falls outside years
1–9999 was an OverflowError on SQLite. Both were 500s."""

import pytest

from integrations.models import ExternalIntegration, Kind
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

EDGES = [
    "0008-01-31T02:14:59-22:26",  # found by the fuzzer on PostgreSQL
    "2025-06-01T12:00:00+23:59",
    "0001-01-01T00:00:00+01:00",  # one hour before year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # one hour into year 10000 in UTC
]


@pytest.fixture
def operator(staff):
    client = client_for(staff)
    client.raise_request_exception = False
    return client


@pytest.fixture
def provider(db):
    return ExternalIntegration.objects.create(kind=Kind.SMM, code="jap", name="edge", display_name="Edge",
                                              base_url="https://panel.example.test/api/v2")


@pytest.mark.parametrize("since", EDGES)
@pytest.mark.parametrize("where", ["history", "logs"])
def test_a_since_at_the_edge_of_time_is_an_answer_not_a_crash(operator, provider, since, where):
    url = f"/api/monitoring/health/{provider.pk}/history/" if where == "history" else "/api/integration-logs/"
    response = operator.get(url, {"since": since})
    assert response.status_code in (200, 400), (response.status_code, response.content[:300])
    if response.status_code == 400:
        assert set(response.json()) == {"since"}


@pytest.mark.parametrize("where", ["history", "logs"])
def test_a_since_with_any_offset_means_the_same_instant(operator, provider, where):
    from integrations.models import IntegrationLog
    from monitoring.models import HealthCheck

    HealthCheck.objects.create(integration=provider, status="healthy", checked_at="2025-06-01T12:00:00Z")
    IntegrationLog.objects.create(integration=provider, endpoint="https://panel.example.test/api/v2", method="POST",
                                  started_at="2025-06-01T12:00:00Z")
    url = f"/api/monitoring/health/{provider.pk}/history/" if where == "history" else "/api/integration-logs/"
    # 12:00 UTC written with a -22:00 offset (beyond PostgreSQL's own range) and with +14:00.
    for since, count in [("2025-05-31T14:00:00-22:00", 1), ("2025-05-31T14:00:01-22:00", 0),
                         ("2025-06-02T02:00:00+14:00", 1), ("2025-06-02T02:00:01+14:00", 0)]:
        response = operator.get(url, {"since": since})
        assert response.status_code == 200, (since, response.content[:300])
        assert response.json()["count"] == count, since
