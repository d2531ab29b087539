"""A webhook event stored while its task could not be queued (the broker down) or whose message was
lost is still applied, once, by the received-webhooks sweep; the provider is answered 200 either way
(a 500 would make it retry into the replay guard, which acknowledges without processing)."""

import json
import logging
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from integrations import tasks
from integrations.models import WebhookEvent
from integrations.webhooks import signed_headers
from tests.conftest import set_eager
from tests.faults.support import closed_port, publishing_to

from .test_webhooks import SECRET


def post(payload):
    body = json.dumps(payload)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in signed_headers(SECRET, body).items()}
    url = reverse("webhook", kwargs={"kind": "analytics", "code": "echo"})
    return Client().post(url, data=body, content_type="application/json", **extra)


def age(event, seconds):
    WebhookEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(seconds=seconds))


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: on_commit runs inside the request
def test_an_event_taken_while_the_broker_is_down_is_acknowledged_and_the_sweep_applies_it_once(
    make_provider, caplog
):
    provider = make_provider()
    set_eager(False)
    try:
        with publishing_to(f"redis://127.0.0.1:{closed_port()}/0"), caplog.at_level(logging.WARNING):
            response = post({"id": "evt_down", "type": "ping"})
    finally:
        set_eager(True)
    assert response.status_code == 200 and response.json() == {"status": "accepted"}
    assert "could not be queued" in caplog.text
    event = WebhookEvent.objects.get(event_id="evt_down")
    assert event.state == WebhookEvent.State.RECEIVED

    assert tasks.process_received_webhooks.apply().get() == 0  # its own task may still come: not yet
    age(event, tasks.RECEIVED_GRACE_SECONDS + 1)
    assert tasks.process_received_webhooks.apply().get() == 1
    assert tasks.process_received_webhooks.apply().get() == 0
    assert tasks.process_webhook_event.apply(args=[event.pk]).get() == "processed"  # a late task: a no-op
    provider.refresh_from_db()
    assert provider.configuration["seen_events"] == ["evt_down"]
    event.refresh_from_db()
    assert (event.state, event.attempts) == (WebhookEvent.State.PROCESSED, 1)


@pytest.mark.django_db
def test_the_sweep_leaves_failed_events_to_operators(make_provider):
    event = WebhookEvent.objects.create(integration=make_provider(), kind="analytics", code="echo",
                                        event_id="evt_failed", state=WebhookEvent.State.FAILED)
    age(event, 3600)
    assert tasks.process_received_webhooks.apply().get() == 0
    event.refresh_from_db()
    assert event.state == WebhookEvent.State.FAILED and event.attempts == 0
