"""`HeldCalls`: the SMM poll holds its calls' log rows and counters and writes them with its own
writes; the rows are the same as those written one call at a time."""

import threading

import pytest
import responses

from integrations import errors
from integrations.http import ProviderClient
from integrations.models import ExternalIntegration, IntegrationLog, Kind
from smm.polling import HeldCalls

BASE = "https://echo.provider.test/api/"


@pytest.fixture
def provider(db):
    return ExternalIntegration.objects.create(
        kind=Kind.SMM, code="panel_v2", name="held", display_name="Held", base_url=BASE,
        configuration={"backoff": 0}, credentials={"api_key": "sk_live_ABCDEF123456"},
    )


@responses.activate
def test_held_calls_are_written_together_and_counters_stay_exact(provider, django_assert_num_queries):
    responses.get(BASE + "a", json={"ok": True})
    responses.get(BASE + "b", status=422, json={"error": "no"})
    client = ProviderClient(provider)
    with HeldCalls(client) as held:
        with django_assert_num_queries(0):
            for _ in range(3):
                client.request("GET", "a")
            with pytest.raises(errors.ProviderValidationError):
                client.request("GET", "b")
        assert IntegrationLog.objects.filter(integration=provider).count() == 0
        with django_assert_num_queries(2):  # one bulk INSERT, one UPDATE
            assert held.flush() == 4
        client.request("GET", "a")
    # The end of the block writes what is still held.
    logs = list(IntegrationLog.objects.filter(integration=provider))
    assert len(logs) == 5 and {log.response_status for log in logs} == {200, 422}
    provider.refresh_from_db()
    assert (provider.total_requests, provider.successful_requests, provider.failed_requests) == (5, 4, 1)
    durations = [float(log.request_duration) for log in logs]
    assert float(provider.average_response_time) == pytest.approx(sum(durations) / 5, abs=0.05)
    # Outside the block each call is written at once again.
    client.request("GET", "a")
    assert IntegrationLog.objects.filter(integration=provider).count() == 6


@responses.activate
def test_held_calls_are_written_when_the_block_ends_with_an_error(provider):
    responses.get(BASE + "a", json={"ok": True})
    client = ProviderClient(provider)
    with pytest.raises(RuntimeError), HeldCalls(client):
        client.request("GET", "a")
        client.request("GET", "a")
        raise RuntimeError("the caller failed after its calls")
    assert IntegrationLog.objects.filter(integration=provider).count() == 2
    provider.refresh_from_db()
    assert provider.total_requests == 2


@responses.activate
def test_held_calls_are_redacted_like_immediate_ones(provider):
    responses.post(BASE + "orders", json={"echo": "sk_live_ABCDEF123456", "token": "tok_abcdef"})
    client = ProviderClient(provider)
    with HeldCalls(client):
        client.request("POST", "orders", params={"api_key": "sk_live_ABCDEF123456"},
                       data={"key": "sk_live_ABCDEF123456", "password": "p4ssw0rd!"})
    log = IntegrationLog.objects.get(integration=provider)
    stored = " ".join(str(v) for v in (log.endpoint, log.request_headers, log.request_body, log.response_body))
    assert "sk_live_ABCDEF123456" not in stored and "p4ssw0rd!" not in stored and "tok_abcdef" not in stored


@responses.activate
def test_deferred_rows_store_the_same_values_as_immediate_ones(provider):
    responses.post(BASE + "x", json={"text": 'a "quoted" \\ word', "n": [1, 2]}, headers={"X-Trace": "t-1"})
    client = ProviderClient(provider)
    client.request("POST", "x", data={"q": 'he said "hi"', "ids": "1,2"})
    with HeldCalls(client):
        client.request("POST", "x", data={"q": 'he said "hi"', "ids": "1,2"})
    immediate, deferred = IntegrationLog.objects.filter(integration=provider).order_by("started_at")
    for log in (immediate, deferred):
        log.request_headers.pop("X-Request-ID")
    fields = ["endpoint", "method", "request_headers", "request_body", "response_status", "response_headers",
              "response_body", "status", "error_message", "error_code"]
    assert [getattr(deferred, f) for f in fields] == [getattr(immediate, f) for f in fields]
    assert deferred.response_headers["X-Trace"] == "t-1" and '\\"quoted\\"' in deferred.response_body
    assert deferred.started_at <= deferred.completed_at and deferred.request_duration > 0


@responses.activate
def test_a_helper_threads_calls_are_held_for_the_caller(provider):
    responses.get(BASE + "a", json={"ok": True})
    client = ProviderClient(provider)
    with HeldCalls(client) as held:
        client.request("GET", "a")
        helper = threading.Thread(target=lambda: client.request("GET", "a"))
        helper.start()
        helper.join()
        # The helper made no query (it may have no connection of its own): its call is held here.
        assert IntegrationLog.objects.filter(integration=provider).count() == 0
        assert held.flush() == 2
        client.request("GET", "a")
    assert IntegrationLog.objects.filter(integration=provider).count() == 3
    provider.refresh_from_db()
    assert provider.total_requests == 3
    # Once the block is over, each call is written at once again.
    client.request("GET", "a")
    assert IntegrationLog.objects.filter(integration=provider).count() == 4
