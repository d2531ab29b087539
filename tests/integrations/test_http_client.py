import pytest
import requests
import responses
from responses import matchers

from integrations import errors
from integrations.http import ProviderClient
from integrations.models import IntegrationLog

BASE = "https://echo.provider.test/api/"


@pytest.fixture
def provider(make_provider):
    return make_provider(
        base_url=BASE, configuration={"backoff": 0, "circuit_breaker_threshold": 3, "circuit_breaker_cooldown": 60}
    )


@responses.activate
def test_idempotent_get_is_retried_on_503_then_succeeds(provider):
    responses.get(BASE + "items", status=503)
    responses.get(BASE + "items", status=503)
    responses.get(BASE + "items", json={"ok": True})
    assert ProviderClient(provider).request("GET", "items").json() == {"ok": True}
    assert len(responses.calls) == 3
    assert IntegrationLog.objects.filter(integration=provider).count() == 3
    provider.refresh_from_db()
    assert (provider.total_requests, provider.successful_requests, provider.failed_requests) == (3, 1, 2)


@responses.activate
def test_non_idempotent_post_is_never_retried(provider):
    responses.post(BASE + "orders", status=503)
    with pytest.raises(errors.ProviderUnavailable):
        ProviderClient(provider).request("POST", "orders", data={"x": 1})
    assert len(responses.calls) == 1


@responses.activate
def test_read_timeout_on_a_write_is_an_unknown_outcome_and_not_retried(provider):
    responses.post(BASE + "orders", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(errors.UnknownOutcome):
        ProviderClient(provider).request("POST", "orders", data={"x": 1})
    assert len(responses.calls) == 1
    assert IntegrationLog.objects.get(integration=provider).status == "timeout"


@responses.activate
def test_read_timeout_on_an_idempotent_call_is_retried_then_unavailable(provider):
    responses.get(BASE + "items", body=requests.ReadTimeout("slow"))
    with pytest.raises(errors.ProviderUnavailable):
        ProviderClient(provider, retries=2).request("GET", "items")
    assert len(responses.calls) == 3


@responses.activate
def test_explicitly_idempotent_post_is_retried(provider):
    responses.post(BASE + "status", body=requests.ConnectionError("reset"))
    responses.post(BASE + "status", json={"status": "Completed"})
    assert ProviderClient(provider).request("POST", "status", idempotent=True).json()["status"] == "Completed"


@pytest.mark.parametrize(
    ("status", "exc"),
    [
        (401, errors.ProviderAuthError),
        (403, errors.ProviderAuthError),
        (422, errors.ProviderValidationError),
        (429, errors.ProviderRateLimited),
        (500, errors.ProviderUnavailable),
    ],
)
@responses.activate
def test_http_errors_map_to_the_exception_family_with_the_providers_message(provider, status, exc):
    responses.post(BASE + "x", status=status, json={"error": "Provider says no"})
    with pytest.raises(exc) as caught:
        ProviderClient(provider).request("POST", "x")
    assert caught.value.provider_message == "Provider says no"
    assert caught.value.status_code == status


@responses.activate
def test_circuit_opens_after_threshold_and_stops_calling(provider):
    responses.post(BASE + "x", status=500)
    client = ProviderClient(provider)
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable):
            client.request("POST", "x")
    with pytest.raises(errors.CircuitOpen):
        client.request("POST", "x")
    assert len(responses.calls) == 3
    assert client.breaker.state == "open"


@responses.activate
def test_circuit_half_opens_after_cooldown_and_closes_on_success(provider, monkeypatch):
    import integrations.breaker as breaker

    responses.post(BASE + "x", status=500)
    client = ProviderClient(provider)
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable):
            client.request("POST", "x")
    now = breaker.time.time()
    monkeypatch.setattr(breaker.time, "time", lambda: now + 61)
    assert client.breaker.state == "half-open"
    responses.replace(responses.POST, BASE + "x", json={"ok": 1})
    assert client.request("POST", "x").json() == {"ok": 1}
    assert client.breaker.state == "closed"


@responses.activate
def test_half_open_failure_reopens(provider, monkeypatch):
    import integrations.breaker as breaker

    responses.post(BASE + "x", status=502)
    client = ProviderClient(provider)
    for _ in range(3):
        with pytest.raises(errors.ProviderUnavailable):
            client.request("POST", "x")
    later = breaker.time.time() + 61
    monkeypatch.setattr(breaker.time, "time", lambda: later)
    with pytest.raises(errors.ProviderUnavailable):
        client.request("POST", "x")
    assert client.breaker.state == "open"


@responses.activate
def test_logged_call_is_redacted_everywhere(provider):
    responses.post(
        BASE + "orders",
        json={"echo": "sk_live_ABCDEF123456", "card_number": "4111111111111111", "ok": True},
        match=[matchers.header_matcher({"Authorization": "Bearer sk_live_ABCDEF123456"}, strict_match=False)],
    )
    ProviderClient(provider).request(
        "POST",
        "orders",
        params={"api_key": "sk_live_ABCDEF123456"},
        data={"key": "sk_live_ABCDEF123456", "password": "p4ssw0rd!", "link": "https://x.ly/p"},
        headers={"Authorization": "Bearer sk_live_ABCDEF123456"},
    )
    log = IntegrationLog.objects.get(integration=provider)
    stored = " ".join(
        str(v) for v in (log.endpoint, log.request_headers, log.request_body, log.response_body, log.response_headers)
    )
    assert "sk_live_ABCDEF123456" not in stored
    assert "p4ssw0rd!" not in stored
    assert "4111111111111111" not in stored
    assert "link=https" in log.request_body
    assert log.response_status == 200 and log.request_duration is not None and log.request_id


@responses.activate
def test_average_response_time_is_a_running_mean(provider):
    responses.get(BASE + "a", json={})
    client = ProviderClient(provider)
    for _ in range(4):
        client.request("GET", "a")
    provider.refresh_from_db()
    durations = [
        float(d) for d in IntegrationLog.objects.filter(integration=provider).values_list("request_duration", flat=True)
    ]
    assert provider.total_requests == 4
    assert float(provider.average_response_time) == pytest.approx(sum(durations) / 4, abs=0.05)


def test_counters_are_atomic_across_threads(transactional_db, make_provider):
    import threading
    from decimal import Decimal

    from django.db import connection

    provider = make_provider()

    def hit():
        for _ in range(25):
            provider.record_calls(1, 1, Decimal("10"))
        connection.close()

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    provider.refresh_from_db()
    assert provider.total_requests == 100 and provider.successful_requests == 100


@responses.activate
def test_each_call_writes_its_log_and_counters_in_one_transaction(provider, django_assert_num_queries):
    responses.get(BASE + "a", json={"ok": True})
    client = ProviderClient(provider)
    client.request("GET", "a")  # warm-up (the adapter's metadata, URL cache)
    # One INSERT of the log row and one UPDATE of the counters; no read of the provider row.
    with django_assert_num_queries(2):
        client.request("GET", "a")
    provider.refresh_from_db()
    assert (provider.total_requests, provider.successful_requests) == (2, 2)
    assert IntegrationLog.objects.filter(integration=provider).count() == 2


@responses.activate
def test_successful_calls_on_a_closed_circuit_do_not_write_the_cache(provider):
    from unittest import mock

    import integrations.breaker as breaker

    responses.get(BASE + "a", json={})
    responses.get(BASE + "fail", status=503)
    client = ProviderClient(provider, retries=0)
    with mock.patch.object(breaker.cache, "delete_many", wraps=breaker.cache.delete_many) as delete_many:
        client.request("GET", "a")
        client.request("GET", "a")
        assert delete_many.call_count == 0
        with pytest.raises(errors.ProviderUnavailable):
            client.request("GET", "fail")
        client.request("GET", "a")  # clears the failure count
        assert delete_many.call_count == 1
        client.request("GET", "a")
        assert delete_many.call_count == 1
    assert client.breaker.state == "closed"


@responses.activate
def test_a_key_echoed_by_the_provider_is_masked_before_anyone_reads_the_answer(provider):
    """A provider quoting our key back (in JSON, in an HTML error page) never hands it to the caller,
    so no error message, stored error or API answer built from the answer can hold it."""
    responses.post(BASE + "orders", json={"error": "Invalid key sk_live_ABCDEF123456"}, status=401)
    responses.post(BASE + "page", body="<html><h1>Bad key whsec_TOPSECRET99</h1></html>", status=200,
                   content_type="text/html")
    client = ProviderClient(provider)
    with pytest.raises(errors.ProviderAuthError) as info:
        client.request("POST", "orders", data={"x": 1})
    assert "sk_live_ABCDEF123456" not in str(info.value) and "[REDACTED]" in str(info.value)
    page = client.request("POST", "page")
    assert "whsec_TOPSECRET99" not in page.text and "Bad key" in page.text
