import pytest

from integrations.domain import beat_schedule
from monitoring import tasks
from monitoring.models import AlertDelivery, HealthCheck, Incident

from .conftest import script


def test_the_beat_schedule_has_the_monitoring_jobs():
    jobs = {task: every for task, every, _kwargs in beat_schedule().values()}
    assert jobs["monitoring.tasks.run_health_round"] == 60
    assert jobs["monitoring.tasks.deliver_alerts"] == 60
    assert jobs["monitoring.tasks.prune_health_checks"] == 86400


@pytest.mark.django_db
def test_the_round_task_checks_and_then_delivers(make_provider, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    p = make_provider()
    script(p, fail="status")
    result = tasks.run_health_round.delay().get()
    assert result["checked"] == 1 and result["changes"] == 1
    assert HealthCheck.objects.count() == 1
    assert Incident.objects.count() == 1
    assert AlertDelivery.objects.exists()
    assert tasks.deliver_alerts.delay().get() == 0
    assert tasks.prune_health_checks.delay().get() == 0
