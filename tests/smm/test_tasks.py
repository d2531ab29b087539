"""Scheduled jobs: per-provider locks (no overlap), retries with backoff on transient errors."""

import pytest
import responses
from celery.exceptions import Retry

from integrations.domain import beat_schedule
from integrations.locks import provider_lock
from smm import tasks
from smm.models import SMMService

from .conftest import PANEL_URL

pytestmark = pytest.mark.django_db


def test_a_second_poll_of_one_provider_waits_for_the_first(make_provider):
    provider = make_provider()
    with provider_lock(provider.pk, "poll") as held:
        assert held
        assert tasks.poll_provider_orders.apply(args=[provider.pk]).get() == "locked"
        with provider_lock(provider.pk, "poll") as again:
            assert not again
    with provider_lock(provider.pk, "poll") as free:
        assert free  # released


@responses.activate
def test_transient_errors_are_retried_with_backoff(make_provider, monkeypatch):
    provider = make_provider()
    provider.integration.configuration = {"retries": 0}
    provider.integration.save()
    responses.post(PANEL_URL, json={"error": "down"}, status=503)
    countdowns = []

    def fake_retry(self, exc=None, countdown=None, **kwargs):
        countdowns.append(countdown)
        raise Retry(exc=exc, when=countdown)

    monkeypatch.setattr(tasks.sync_provider_services, "retry", fake_retry.__get__(tasks.sync_provider_services))
    with pytest.raises(Retry):
        tasks.sync_provider_services.apply(args=[provider.pk], throw=True)
    assert countdowns == [30]
    assert len(responses.calls) == 1


@responses.activate
def test_permanent_errors_are_not_retried(make_provider):
    provider = make_provider()
    responses.post(PANEL_URL, json={"error": "Invalid API key"})
    result = tasks.sync_provider_services.apply(args=[provider.pk]).get()
    assert result.startswith("error: Invalid API key") and len(responses.calls) == 1


@responses.activate
def test_fan_out_jobs_cover_active_providers_only(make_provider):
    active = make_provider(name="on")
    make_provider(name="off", is_active=False)
    responses.post(PANEL_URL, json=[{"service": 1, "name": "x", "rate": "1", "min": 1, "max": 5}])
    assert tasks.sync_all_services.apply().get() == 1
    assert SMMService.objects.filter(provider=active).count() == 1
    responses.replace(responses.POST, PANEL_URL, json={"balance": "5", "currency": "USD"})
    assert tasks.refresh_all_balances.apply().get() == 1
    assert tasks.poll_all_orders.apply().get() == 0  # nothing open


def test_the_four_jobs_are_scheduled():
    jobs = {task: every for task, every, _ in beat_schedule().values()}
    assert jobs["smm.tasks.sync_all_services"] == 3600
    assert jobs["smm.tasks.poll_all_orders"] == 300
    assert jobs["smm.tasks.refresh_all_balances"] == 3600
    assert jobs["smm.tasks.cleanup_old_orders"] == 7 * 86400
