"""The Celery path with a real worker process on the real broker (Redis in CI, files by default)."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

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


def test_a_burst_of_webhooks_is_processed_without_stalls(make_provider, celery_worker_process, live_server):
    # The worker acknowledges each task late, from its pool thread; Celery's consumer ran those
    # acknowledgements only at its next timer (here, with no heartbeat: 10 s on Redis, 2 s on files)
    # while the prefetch limit (4) stopped it fetching: 24 events took 12 s to a minute.
    make_provider()
    bodies = [json.dumps({"id": f"evt_burst_{i}"}) for i in range(24)]

    def post(body):
        return requests.post(
            f"{live_server.url}/webhooks/analytics/echo/", data=body, timeout=10,
            headers={"Content-Type": "application/json", **signed_headers("whsec_TOPSECRET99", body)},
        ).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as executor:
        assert set(executor.map(post, bodies)) == {200}
    processed = WebhookEvent.objects.filter(event_id__startswith="evt_burst_", state=WebhookEvent.State.PROCESSED)
    wait_for(lambda: processed.count() == len(bodies), timeout=60)
    elapsed = time.monotonic() - started
    assert elapsed < 6, f"24 webhook events took {elapsed:.1f} s through the worker"
