"""The Celery path with a real worker process on the real broker (Redis in CI, files by default)."""

import json

import pytest
import requests

from integrations.models import ExternalIntegration, WebhookEvent
from integrations.webhooks import signed_headers
from tests.conftest import wait_for

pytestmark = pytest.mark.worker


def test_a_webhook_is_processed_by_a_real_worker(make_provider, celery_worker_process, live_server):
    provider = make_provider()
    body = json.dumps({"id": "evt_worker"})
    response = requests.post(
        f"{live_server.url}/webhooks/analytics/echo/", data=body, timeout=10,
        headers={"Content-Type": "application/json", **signed_headers("whsec_TOPSECRET99", body)},
    )
    assert response.status_code == 200
    event = wait_for(
        lambda: WebhookEvent.objects.filter(event_id="evt_worker", state=WebhookEvent.State.PROCESSED).first(),
        timeout=60,
    )
    assert event.attempts == 1
    assert ExternalIntegration.objects.get(pk=provider.pk).configuration["seen_events"] == ["evt_worker"]
