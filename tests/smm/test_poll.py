"""The poll's pipeline against `responses`: calls one at a time and in id order, every open order
asked about exactly once across pages, and an error mid-poll keeps what came before it."""

import json
import threading
from urllib.parse import parse_qs

import pytest
import responses

from integrations.errors import ProviderValidationError
from integrations.models import IntegrationLog
from smm.models import SMMOrder, SMMService
from smm.polling import poll_orders

from .conftest import PANEL_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def open_orders(make_provider, merchant):
    """A provider (no retries) with `count` open orders, panel ids 1000, 1001, …"""

    def make(count):
        provider = make_provider()
        provider.integration.configuration = {"retries": 0, "backoff": 0}
        provider.integration.save()
        service = SMMService.objects.create(provider=provider, service_id="1", name="Followers", rate="0.9",
                                            min_quantity=10, max_quantity=10_000)
        SMMOrder.objects.bulk_create(
            [SMMOrder(owner=merchant, provider=provider, service=service, link="https://x.ly", quantity=100,
                      status="pending", external_order_id=str(1000 + n)) for n in range(count)]
        )
        return provider

    return make


class Panel:
    """A panel answering `status` for many ids; records the ids asked and how many calls overlapped."""

    def __init__(self, fail_on_call=None):
        self.fail_on_call = fail_on_call
        self.asked, self.active, self.most_active = [], 0, 0
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            fields = {k: v[0] for k, v in parse_qs(request.body).items()}
            ids = fields["orders"].split(",")
            self.asked.append(ids)
            if len(self.asked) == self.fail_on_call:
                return 200, {}, '{"error": "Incorrect request"}'
            return 200, {}, json.dumps({i: {"charge": "0.09", "start_count": "5", "status": "In progress",
                                            "remains": "40", "currency": "USD"} for i in ids})
        finally:
            with self.lock:
                self.active -= 1


@responses.activate
def test_every_open_order_is_asked_about_once_in_order_one_call_at_a_time(open_orders):
    provider = open_orders(2150)  # the first page is one batch, the next ones 2000 orders
    panel = Panel()
    responses.add_callback(responses.POST, PANEL_URL, callback=panel)
    result = poll_orders(provider)
    assert result["calls"] == 22 == len(panel.asked)  # ceil(2150 / 100)
    asked = [i for ids in panel.asked for i in ids]
    assert asked == [str(1000 + n) for n in range(2150)]  # each once, in id order
    assert panel.most_active == 1
    assert SMMOrder.objects.filter(status="in_progress", remains=40, last_checked_at__isnull=False).count() == 2150
    assert IntegrationLog.objects.filter(integration=provider.integration).count() == 22


@responses.activate
def test_an_error_mid_poll_is_raised_after_writing_what_came_before(open_orders):
    provider = open_orders(250)
    panel = Panel(fail_on_call=2)
    responses.add_callback(responses.POST, PANEL_URL, callback=panel)
    with pytest.raises(ProviderValidationError, match="Incorrect request"):
        poll_orders(provider)
    assert len(panel.asked) == 2  # nothing asked after the failed call
    first = panel.asked[0]
    assert set(SMMOrder.objects.filter(status="in_progress").values_list("external_order_id", flat=True)) == set(first)
    assert SMMOrder.objects.filter(status="pending", last_checked_at__isnull=True).count() == 150
    # Both calls are logged, the failed one with the panel's message.
    logs = IntegrationLog.objects.filter(integration=provider.integration).order_by("started_at")
    assert logs.count() == 2 and "Incorrect request" in logs.last().response_body
    provider.integration.refresh_from_db()
    assert provider.integration.total_requests == 2
