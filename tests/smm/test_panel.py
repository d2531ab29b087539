"""The panel API v2 adapter against recorded-style payloads (`responses`): every action and quirk."""

from decimal import Decimal
from urllib.parse import parse_qs

import pytest
import requests
import responses

from integrations.errors import (
    ProviderAuthError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderUnavailable,
    ProviderValidationError,
    UnknownOutcome,
)
from integrations.models import IntegrationLog

from .conftest import PANEL_URL

pytestmark = pytest.mark.django_db


def form(call):
    return {k: v[0] for k, v in parse_qs(call.request.body).items()}


@responses.activate
def test_services_parse_strings_numbers_and_missing_fields(adapter):
    responses.post(PANEL_URL, json=[
        {"service": 1, "name": "Followers", "type": "Default", "category": "First Category", "rate": "0.90",
         "min": "50", "max": "10000", "refill": True, "cancel": True},
        {"service": "2", "name": "Comments", "type": "Custom Comments", "category": "Second", "rate": 8,
         "min": 10, "max": 1500, "refill": "0", "dripfeed": "1", "desc": "Real"},
        {"service": 3, "name": "No price"},  # unusable: skipped
        {"service": 4, "name": "Float", "rate": 0.1234567, "min": "1"},
    ])
    services = adapter.services()
    assert [s.service_id for s in services] == ["1", "2", "4"]
    first, second, third = services
    assert first.rate == Decimal("0.90") and isinstance(first.rate, Decimal)
    assert (first.min_quantity, first.max_quantity, first.refill, first.cancel) == (50, 10000, True, True)
    assert second.rate == Decimal("8") and second.refill is False and second.cancel is False
    assert second.dripfeed is True and second.description == "Real" and second.type == "Custom Comments"
    assert third.rate == Decimal("0.1234567") and third.type == "Default" and third.max_quantity == 1
    body = form(responses.calls[0])
    assert body == {"key": "k-SECRET-123456", "action": "services"}


@responses.activate
def test_the_api_key_never_reaches_the_log(adapter):
    responses.post(PANEL_URL, json={"balance": "1.5", "currency": "USD"})
    adapter.balance()
    log = IntegrationLog.objects.get()
    assert "k-SECRET-123456" not in log.request_body + log.endpoint + str(log.request_headers)


@pytest.mark.parametrize(
    ("stype", "values", "expected"),
    [
        ("Default", {"quantity": 100}, {"quantity": "100"}),
        ("Default", {"quantity": 100, "runs": 5, "interval": 30}, {"quantity": "100", "runs": "5", "interval": "30"}),
        ("Package", {"quantity": 100}, {}),
        ("Custom Comments", {"comments": ["nice", "great"]}, {"comments": "nice\ngreat"}),
        ("Mentions with Hashtags", {"quantity": 10, "usernames": "a\nb", "hashtags": "#x"},
         {"quantity": "10", "usernames": "a\nb", "hashtags": "#x"}),
        ("Mentions Custom List", {"usernames": ["u1", "u2"]}, {"usernames": "u1\nu2"}),
        ("Mentions Hashtag", {"quantity": 10, "hashtag": "#libya"}, {"quantity": "10", "hashtag": "#libya"}),
        ("Mentions User Followers", {"quantity": 10, "username": "bob"}, {"quantity": "10", "username": "bob"}),
        ("Comment Likes", {"quantity": 10, "username": "bob"}, {"quantity": "10", "username": "bob"}),
        ("SEO", {"keywords": "buy, sell"}, {"keywords": "buy, sell"}),
        ("Poll", {"quantity": 100, "answer_number": 2}, {"quantity": "100", "answer_number": "2"}),
    ],
)
@responses.activate
def test_add_sends_the_fields_of_each_service_type(adapter, stype, values, expected):
    responses.post(PANEL_URL, json={"order": 23501})
    assert adapter.add(stype, service=7, link="https://instagram.com/p/x", **values) == "23501"
    body = form(responses.calls[0])
    assert body == {"key": "k-SECRET-123456", "action": "add", "service": "7", "link": "https://instagram.com/p/x",
                    **expected}


@responses.activate
def test_add_subscriptions_sends_no_link(adapter):
    responses.post(PANEL_URL, json={"order": "99"})
    adapter.add("Subscriptions", service=3, link="ignored", username="bob", min=100, max=200, posts=5, delay=30,
                expiry="31/12/2026")
    body = form(responses.calls[0])
    assert "link" not in body
    assert body["username"] == "bob" and body["min"] == "100" and body["max"] == "200" and body["delay"] == "30"
    assert body["expiry"] == "31/12/2026"


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("Not enough funds on balance", ProviderValidationError),
        ("Incorrect service ID", ProviderValidationError),
        ("Quantity less than minimal 50", ProviderValidationError),
        ("Invalid API key", ProviderAuthError),
        ("Too many requests", ProviderRateLimited),
    ],
)
@responses.activate
def test_error_with_http_200_keeps_the_panels_message(adapter, message, error):
    responses.post(PANEL_URL, json={"error": message}, status=200)
    with pytest.raises(error) as caught:
        adapter.add("Default", service=1, link="https://x.ly/a", quantity=10)
    assert str(caught.value) == message
    assert caught.value.provider_message == message
    assert len(responses.calls) == 1


@responses.activate
def test_html_login_page_for_a_bad_key_is_an_auth_error(adapter):
    responses.post(PANEL_URL, body="<!DOCTYPE html><html><head><title>Login | Panel</title></head></html>",
                   content_type="text/html")
    with pytest.raises(ProviderAuthError) as caught:
        adapter.balance()
    assert "HTML page (Login | Panel)" in str(caught.value) and "API key" in str(caught.value)


@responses.activate
def test_other_html_is_a_readable_protocol_error(adapter):
    responses.post(PANEL_URL, body="<html><body><h1>Error</h1></body></html>", content_type="text/html")
    with pytest.raises(ProviderProtocolError, match=r"HTML page \(Error\) instead of JSON"):
        adapter.services()


@responses.activate
def test_malformed_json_is_a_protocol_error(adapter):
    responses.post(PANEL_URL, body='{"status": "ok", "data": [1, 2', content_type="application/json")
    with pytest.raises(ProviderProtocolError, match="not valid JSON"):
        adapter.status("1")


@responses.activate
def test_http_401_with_json_error_is_auth_error(adapter):
    responses.post(PANEL_URL, json={"error": "Invalid API key"}, status=401)
    with pytest.raises(ProviderAuthError, match="Invalid API key"):
        adapter.balance()


@responses.activate
def test_5xx_is_unavailable_and_status_reads_are_retried(adapter):
    adapter.client.retries = 2
    adapter.client.backoff = 0
    responses.post(PANEL_URL, json={"error": "bad gateway"}, status=502)
    with pytest.raises(ProviderUnavailable):
        adapter.status("1")
    assert len(responses.calls) == 3  # idempotent: retried


@responses.activate
def test_add_is_never_retried_and_a_timeout_is_an_unknown_outcome(adapter):
    adapter.client.retries = 3
    responses.post(PANEL_URL, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(UnknownOutcome):
        adapter.add("Default", service=1, link="https://x.ly/a", quantity=10)
    assert len(responses.calls) == 1


@responses.activate
def test_add_without_an_order_id_is_an_unknown_outcome(adapter):
    responses.post(PANEL_URL, json={"status": "ok"})
    with pytest.raises(UnknownOutcome):
        adapter.add("Default", service=1, link="https://x.ly/a", quantity=10)


@responses.activate
def test_single_status_with_strings(adapter):
    responses.post(PANEL_URL, json={"charge": "0.27819", "start_count": "3572", "status": "Partial",
                                    "remains": "157", "currency": "USD"})
    answer = adapter.status("1")
    assert answer.status == "partial" and answer.charge == Decimal("0.27819")
    assert (answer.start_count, answer.remains, answer.currency) == (3572, 157, "USD")


@responses.activate
def test_single_status_with_numbers_and_missing_currency(adapter):
    responses.post(PANEL_URL, json={"charge": 0.5, "start_count": 0, "status": "In progress", "remains": 10})
    answer = adapter.status("1")
    assert answer.status == "in_progress" and answer.charge == Decimal("0.5") and answer.currency == ""


@responses.activate
def test_multi_status_batches_of_100_and_per_id_errors(adapter):
    def reply(request):
        ids = parse_qs(request.body)["orders"][0].split(",")
        import json

        data = {i: ({"error": "Incorrect order ID"} if i == "10" else
                    {"charge": "1", "start_count": "0", "status": "Completed", "remains": "0"}) for i in ids}
        return 200, {}, json.dumps(data)

    responses.add_callback(responses.POST, PANEL_URL, callback=reply)
    ids = [str(i) for i in range(1, 251)]
    result = adapter.statuses(ids)
    assert len(responses.calls) == 3
    assert [len(form(c)["orders"].split(",")) for c in responses.calls] == [100, 100, 50]
    assert result["10"].status is None and result["10"].error == "Incorrect order ID"
    assert result["11"].status == "completed" and len(result) == 250


@responses.activate
def test_refill_single_and_multi(adapter):
    responses.post(PANEL_URL, json={"refill": "1"})
    assert adapter.refill("5") == "1"
    responses.replace(responses.POST, PANEL_URL,
                      json=[{"order": 1, "refill": 1}, {"order": 3, "refill": {"error": "Incorrect order ID"}}])
    result = adapter.refills(["1", "3"])
    assert result["1"] == "1"
    assert isinstance(result["3"], ProviderValidationError) and str(result["3"]) == "Incorrect order ID"
    assert form(responses.calls[1])["orders"] == "1,3"


@responses.activate
def test_refill_status_single_and_multi(adapter):
    responses.post(PANEL_URL, json={"status": "Completed"})
    assert adapter.refill_status("1") == "completed"
    responses.replace(responses.POST, PANEL_URL,
                      json=[{"refill": 1, "status": "Completed"},
                            {"refill": 3, "status": {"error": "Refill not found"}}])
    result = adapter.refill_statuses(["1", "3"])
    assert result["1"] == "completed" and str(result["3"]) == "Refill not found"


@responses.activate
def test_cancel(adapter):
    responses.post(PANEL_URL, json=[{"order": 9, "cancel": {"error": "Incorrect order ID"}}, {"order": 2, "cancel": 1}])
    result = adapter.cancel(["9", "2"])
    assert result["2"] is True and str(result["9"]) == "Incorrect order ID"
    assert form(responses.calls[0]) == {"key": "k-SECRET-123456", "action": "cancel", "orders": "9,2"}


@responses.activate
def test_balance_is_decimal_from_string_or_number(adapter):
    responses.post(PANEL_URL, json={"balance": "100.84292", "currency": "USD"})
    assert adapter.balance() == (Decimal("100.84292"), "USD")
    responses.replace(responses.POST, PANEL_URL, body='{"balance": 100.84292}')
    amount, currency = adapter.balance()
    assert amount == Decimal("100.84292") and currency == "USD"


@responses.activate
def test_health_check_is_a_balance_call(adapter):
    responses.post(PANEL_URL, json={"balance": "3", "currency": "USD"})
    adapter.check_health()
    assert form(responses.calls[0])["action"] == "balance"
    responses.replace(responses.POST, PANEL_URL, json={"error": "Invalid API key"})
    with pytest.raises(ProviderAuthError):
        adapter.check_health()


@responses.activate
def test_a_redirect_is_not_read_as_the_panels_answer(adapter):
    """A 3xx is not followed, and its body (JSON or not) is not taken for the panel's answer."""
    responses.post(PANEL_URL, status=302, json={"balance": "100.0", "currency": "USD"},
                   headers={"Location": "http://169.254.169.254/"})
    with pytest.raises(ProviderProtocolError):
        adapter.balance()
