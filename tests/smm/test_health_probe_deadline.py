"""An SMM panel's health probe (a `balance` call, whose ordinary timeout is 30 s with retries) ends
within the health round, and no thread of the round is left behind."""

import threading
import time

import pytest

from integrations.models import IntegrationLog
from integrations.sandbox import clear_fault, set_fault
from monitoring import health
from monitoring.models import CheckStatus, HealthCheck

pytestmark = pytest.mark.django_db(transaction=True)


def health_threads():
    return [t for t in threading.enumerate() if t.name.startswith("health")]


def test_a_slow_panel_probe_ends_within_the_rounds_deadline(sandbox_provider):
    provider = sandbox_provider("jap")
    provider.integration.configuration = {"health_timeout_ms": 800}
    provider.integration.save()
    set_fault("smm", "jap", hang_s=1.5)  # each call: longer than the probe may take, far shorter than 30 s
    try:
        t0 = time.perf_counter()
        result = health.run_round([provider.integration])
        elapsed = time.perf_counter() - t0
        alive = health_threads()
    finally:
        clear_fault("smm", "jap")
    assert result.longest_timeout == 0.8
    assert elapsed < 0.8 + 0.4, elapsed
    assert alive == []  # the probe's own call ended before the round returned
    check = HealthCheck.objects.get()
    assert check.status == CheckStatus.ERROR and "0.8" in check.error
    # One balance call, not retried.
    assert list(IntegrationLog.objects.values_list("operation", flat=True)) == ["balance"]


def test_a_probe_queued_behind_others_gets_only_the_time_left(sandbox_provider, monkeypatch):
    """More panels than workers: the probes that start late are bounded by the round, not by their
    own timeout."""
    monkeypatch.setattr(health, "MAX_WORKERS", 1)
    first = sandbox_provider("jap")
    second = sandbox_provider("smmkings")
    for provider in (first, second):
        provider.integration.configuration = {"health_timeout_ms": 1000}
        provider.integration.save()
    set_fault("smm", "jap", hang_s=1.5)
    set_fault("smm", "smmkings", hang_s=1.5)
    try:
        t0 = time.perf_counter()
        health.run_round([first.integration, second.integration])
        elapsed = time.perf_counter() - t0
        alive = health_threads()
    finally:
        clear_fault("smm", "jap")
        clear_fault("smm", "smmkings")
        for thread in health_threads():
            thread.join(timeout=5)
    assert elapsed < 1.0 + 0.2 + 0.3, elapsed
    assert alive == []
    assert set(HealthCheck.objects.values_list("status", flat=True)) == {CheckStatus.ERROR}
