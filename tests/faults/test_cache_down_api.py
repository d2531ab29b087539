"""Issue 12, point 11: with the cache down an order is still taken (the write throttle and the
circuit breaker go on without it, with a log line), never a 500."""

import logging

import pytest
import responses

from smm.models import SMMOrder, SMMService
from tests.smm.conftest import PANEL_URL

pytestmark = pytest.mark.django_db

# A real Redis client against a port where nothing listens: the cache is down, not mocked.
CACHE_DOWN = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": "redis://127.0.0.1:1/0"}}


@responses.activate
def test_an_order_posted_while_the_cache_is_down_is_taken_and_sent_once(
    api, make_provider, settings, caplog, django_capture_on_commit_callbacks
):
    provider = make_provider()
    SMMService.objects.create(provider=provider, service_id="1", name="IG Followers", type="Default",
                              category="Instagram", rate="0.90", min_quantity=10, max_quantity=1000)
    responses.post(PANEL_URL, json={"order": 901})
    settings.CACHES = CACHE_DOWN
    body = {"providerId": provider.pk, "serviceId": "1", "link": "https://instagram.com/p/cache-down", "quantity": 100}
    with caplog.at_level(logging.WARNING), django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/api/smm/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="cache-down-1")
    assert answer.status_code == 201, answer.content
    assert api.get("/api/smm/orders").status_code == 200
    order = SMMOrder.objects.get()
    assert (order.status, order.external_order_id) == ("pending", "901")  # sent through the breaker without it
    assert len(responses.calls) == 1
    assert "The cache is unavailable" in caplog.text and "write throttle" in caplog.text
