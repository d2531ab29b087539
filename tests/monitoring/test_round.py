import time

import pytest
from django.core.cache import cache

from integrations.models import ExternalIntegration, Health
from integrations.sandbox import clear_fault, set_fault
from monitoring import health
from monitoring.models import CheckStatus, HealthCheck, StatusChange

from .conftest import script


@pytest.mark.django_db(transaction=True)
def test_ten_providers_five_hanging_round_ends_near_the_longest_timeout(make_provider, live_server):
    providers = [
        make_provider(code="probe", name=f"p{i}", base_url=f"{live_server.url}/sandbox/generic/p{i}/")
        for i in range(10)
    ]
    for i in range(5):
        set_fault("generic", f"p{i}", hang_s=3)
    try:
        t0 = time.perf_counter()
        result = health.run_round()
        elapsed = time.perf_counter() - t0
    finally:
        for i in range(5):
            clear_fault("generic", f"p{i}")
    assert result.longest_timeout == 1.0
    # Sequentially this would take 5 s; concurrently about one timeout.
    assert 1.0 <= elapsed < 1.6, elapsed
    assert HealthCheck.objects.count() == 10
    statuses = {c.integration.name: c.status for c in HealthCheck.objects.select_related("integration")}
    assert {statuses[f"p{i}"] for i in range(5)} == {CheckStatus.ERROR}
    assert {statuses[f"p{i}"] for i in range(5, 10)} == {CheckStatus.HEALTHY}
    for p in providers:
        p.refresh_from_db()
        assert p.last_health_check is not None
    assert ExternalIntegration.objects.filter(health_status=Health.UNHEALTHY).count() == 5
    # First check: unknown → unhealthy is a change; unknown → healthy is not.
    assert StatusChange.objects.count() == 5


@pytest.mark.django_db(transaction=True)
def test_wrong_http_status_is_unhealthy_with_the_status_in_the_error(make_provider, live_server):
    make_provider(code="probe", name="bad", base_url=f"{live_server.url}/sandbox/generic/bad/")
    set_fault("generic", "bad", status=503)
    try:
        health.run_round()
    finally:
        clear_fault("generic", "bad")
    check = HealthCheck.objects.get()
    assert check.status == CheckStatus.UNHEALTHY
    assert "503" in check.error


@pytest.mark.django_db
def test_a_round_never_overlaps_the_previous_one(make_provider):
    make_provider()
    cache.add(health.LOCK_KEY, "someone-else", timeout=60)
    result = health.run_round()
    assert result.skipped
    assert HealthCheck.objects.count() == 0
    cache.delete(health.LOCK_KEY)
    assert not health.run_round().skipped
    assert HealthCheck.objects.count() == 1


@pytest.mark.django_db
def test_only_active_providers_are_checked(make_provider):
    make_provider()
    make_provider(status="inactive")
    make_provider(status="maintenance")
    assert health.run_round().checked == 1


@pytest.mark.django_db
def test_slow_answer_is_degraded(make_provider):
    p = make_provider()
    script(p, sleep_s=0.6)  # threshold of the scripted adapter: 0.5 s
    health.run_round()
    check = HealthCheck.objects.get()
    assert check.status == CheckStatus.DEGRADED
    assert "Slow" in check.error
    p.refresh_from_db()
    assert p.health_status == Health.DEGRADED


@pytest.mark.django_db
def test_threshold_from_the_row_configuration_overrides_the_adapter(make_provider):
    p = make_provider()
    script(p, sleep_s=0.1, degraded_after_ms=50)
    health.run_round()
    assert HealthCheck.objects.get().status == CheckStatus.DEGRADED


@pytest.mark.django_db
def test_failing_part_of_the_time_is_degraded(make_provider):
    p = make_provider()
    for outcome in ["status", "", "error", ""]:
        script(p, fail=outcome)
        health.run_round()
    statuses = list(HealthCheck.objects.order_by("checked_at", "pk").values_list("status", flat=True))
    # ok after one failure: healthy; ok after two failures in the window: degraded.
    assert statuses == ["unhealthy", "healthy", "error", "degraded"]


@pytest.mark.django_db
def test_a_broken_adapter_does_not_end_the_round(make_provider):
    make_provider(code="nonexistent")
    make_provider()
    result = health.run_round()
    assert result.checked == 2
    assert sorted(HealthCheck.objects.values_list("status", flat=True)) == ["error", "healthy"]


@pytest.mark.django_db
def test_current_health_lists_every_provider_with_its_latest_check(make_provider):
    a, b = make_provider(), make_provider()
    script(b, fail="status")
    health.run_round()
    health.run_round()
    rows = dict(health.current_health())
    assert rows[a].status == CheckStatus.HEALTHY
    assert rows[b].status == CheckStatus.UNHEALTHY
    assert HealthCheck.objects.count() == 4


@pytest.mark.django_db
def test_old_health_checks_are_pruned(make_provider):
    from datetime import timedelta

    from django.utils import timezone

    p = make_provider()
    HealthCheck.objects.create(integration=p, status="healthy", checked_at=timezone.now() - timedelta(days=40))
    HealthCheck.objects.create(integration=p, status="healthy", checked_at=timezone.now() - timedelta(days=1))
    assert health.prune() == 1
    assert HealthCheck.objects.count() == 1
