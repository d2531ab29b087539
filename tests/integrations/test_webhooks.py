import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from integrations.models import WebhookEvent
from integrations.webhooks import signed_headers

SECRET = "whsec_TOPSECRET99"


@pytest.fixture
def provider(make_provider):
    return make_provider()


def post(body, headers=None, provider=None, content_type="application/json"):
    url = reverse("webhook", kwargs={"kind": "analytics", "code": "echo"})
    if provider is not None:
        url = reverse("webhook-for", kwargs={"kind": "analytics", "code": "echo", "integration_id": provider.pk})
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
    return Client().post(url, data=body, content_type=content_type, **extra)


def signed(payload, **kw):
    body = json.dumps(payload)
    return body, signed_headers(SECRET, body, **kw)


def test_a_signed_event_is_stored_processed_and_acknowledged(provider, django_capture_on_commit_callbacks):
    body, headers = signed({"id": "evt_1", "type": "ping"})
    with django_capture_on_commit_callbacks(execute=True):
        response = post(body, headers)
    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    event = WebhookEvent.objects.get(event_id="evt_1")
    assert event.state == WebhookEvent.State.PROCESSED and event.attempts == 1
    provider.refresh_from_db()
    assert provider.configuration["seen_events"] == ["evt_1"]


def test_a_replayed_webhook_is_acknowledged_but_not_processed_twice(provider, django_capture_on_commit_callbacks):
    body, headers = signed({"id": "evt_2"})
    with django_capture_on_commit_callbacks(execute=True):
        first = post(body, headers)
        second = post(body, headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert WebhookEvent.objects.filter(event_id="evt_2").count() == 1
    provider.refresh_from_db()
    assert provider.configuration["seen_events"] == ["evt_2"]


def test_an_event_claimed_once_is_not_processed_by_a_second_worker(provider):
    from integrations import webhooks

    event = WebhookEvent.objects.create(integration=provider, kind="analytics", code="echo", event_id="e3", body="{}")
    assert webhooks.process(event) is True
    assert webhooks.process(WebhookEvent.objects.get(pk=event.pk)) is False
    provider.refresh_from_db()
    assert provider.configuration["seen_events"] == ["e3"]


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda body, h: (body, {**h, "X-Eishro-Signature": "sha256=" + "0" * 64}), 401),
        (lambda body, h: (body.replace("evt", "EVT"), h), 401),
        (lambda body, h: (body, {k: v for k, v in h.items() if k != "X-Eishro-Signature"}), 401),
        (lambda body, h: (body, signed_headers(SECRET, body, timestamp=time.time() - 301)), 401),
        (lambda body, h: (body, signed_headers(SECRET, body, timestamp=time.time() + 400)), 401),
        (lambda body, h: (body, signed_headers("another-secret", body)), 401),
    ],
    ids=["forged", "tampered-body", "unsigned", "stale", "future", "wrong-secret"],
)
def test_forged_or_stale_requests_are_rejected_recorded_and_not_processed(provider, mutate, status):
    body, headers = mutate(*signed({"id": "evt_bad", "card_number": "4111111111111111"}))
    response = post(body, headers)
    assert response.status_code == status
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.REJECTED and event.event_id is None and event.error
    assert "4111111111111111" not in event.body
    provider.refresh_from_db()
    assert "seen_events" not in provider.configuration


def test_malformed_body_is_rejected(provider):
    body = "{not json"
    response = post(body, signed_headers(SECRET, body))
    assert response.status_code == 400
    assert WebhookEvent.objects.get().state == WebhookEvent.State.REJECTED


def test_oversized_body_is_rejected_without_storing_it(provider, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1024
    body, headers = signed({"id": "big", "blob": "x" * 5000})
    response = post(body, headers)
    assert response.status_code == 413
    event = WebhookEvent.objects.get()
    assert event.state == WebhookEvent.State.REJECTED and event.body == ""


def test_unknown_provider_is_404_and_not_stored(db):
    # Storing calls to codes nobody answers to is how a flood filled the database (issue 11).
    response = Client().post("/webhooks/payment/nope/", data="{}", content_type="application/json")
    assert response.status_code == 404
    assert not WebhookEvent.objects.exists()


def test_get_is_not_allowed(provider):
    assert Client().get("/webhooks/analytics/echo/").status_code == 405


def test_handler_failure_is_kept_on_the_row_and_can_be_replayed(provider, django_capture_on_commit_callbacks):
    body, headers = signed({"id": "evt_x", "explode": True})
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, headers).status_code == 200
    event = WebhookEvent.objects.get(event_id="evt_x")
    assert event.state == WebhookEvent.State.FAILED and "handler failed on purpose" in event.error
    from integrations.tasks import process_webhook_event

    event.raw_body = json.dumps({"id": "evt_x"})
    event.save(update_fields=["raw_body"])
    assert process_webhook_event.delay(event.pk).get() == "processed"
    event.refresh_from_db()
    assert event.state == WebhookEvent.State.PROCESSED and event.attempts == 2


def test_per_row_route_reaches_a_merchants_own_provider(make_provider, merchant, django_capture_on_commit_callbacks):
    own = make_provider(owner=merchant, name="merchant-echo")
    body, headers = signed({"id": "evt_m"})
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, headers, provider=own).status_code == 200
    assert WebhookEvent.objects.get(event_id="evt_m").integration == own
