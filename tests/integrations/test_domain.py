"""The domain contract: what each app declares on its config, and what the project sums from it."""

import importlib
import json

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLResolver, clear_url_caches
from django_celery_beat.models import PeriodicTask

from integrations import domain
from integrations.adapters import registered_codes
from integrations.domain import DomainConfig, beat_schedule, domain_configs
from integrations.schedule import install_schedules

DOMAIN_APPS = ["integrations", "payments", "shipping", "messaging", "smm", "monitoring"]

# docs/architecture.md's beat schedule table, for the apps that exist so far.
SCHEDULE = {
    "IntegrationLog partitions ahead and retention": ("integrations.tasks.maintain_log_partitions", 86400, {}),
    "Webhook events left unprocessed": ("integrations.tasks.process_received_webhooks", 60, {}),
    "SMM service sync": ("smm.tasks.sync_all_services", 3600, {}),
    "SMM order status polling": ("smm.tasks.poll_all_orders", 300, {}),
    "SMM balances": ("smm.tasks.refresh_all_balances", 3600, {}),
    "SMM cleanup of old orders": ("smm.tasks.cleanup_old_orders", 7 * 86400, {}),
    "SMM queued order retries": ("smm.tasks.retry_queued_orders", 60, {}),
    "SMM stale submissions": ("smm.tasks.mark_stale_submissions", 30, {}),
    "Health checks of every active provider": ("monitoring.tasks.run_health_round", 60, {}),
    "Monitoring alert delivery": ("monitoring.tasks.deliver_alerts", 60, {}),
    "Health check retention": ("monitoring.tasks.prune_health_checks", 86400, {}),
    "Payment reconciliation of pending and unknown payments": ("payments.tasks.reconcile_payments", 300, {}),
    "Payment expiry": ("payments.tasks.expire_payments", 300, {}),
    "Payment refund retries": ("payments.tasks.retry_refunds", 60, {}),
    "Payment API idempotency keys retention": ("payments.tasks.prune_idempotency_keys", 3600, {}),
}


def test_every_domain_app_is_configured_through_the_core_base():
    assert [config.label for config in domain_configs()] == DOMAIN_APPS
    for label in DOMAIN_APPS:
        assert type(apps.get_app_config(label)).__module__ == f"{label}.apps"  # its own, not the base


def test_an_app_that_declares_nothing_gets_the_safe_defaults(merchant):
    shipping = apps.get_app_config("shipping")
    assert isinstance(shipping, DomainConfig)
    assert shipping.adapters == {} and shipping.schedule == {} and shipping.startup_tasks == ()
    assert shipping.sandbox_urls is None and shipping.api_urls is None
    assert list(shipping.affected_owners(None)) == []
    assert shipping.load_demo(merchant) is None
    assert shipping.dashboard_figures(None) == []


def test_the_schedule_is_the_sum_of_the_apps_declarations():
    declared = [(name, entry) for config in domain_configs() for name, entry in config.schedule.items()]
    assert beat_schedule() == dict(declared)
    assert len(beat_schedule()) == len(declared)  # nothing lost or overwritten
    assert beat_schedule() == SCHEDULE


def test_a_job_name_declared_twice_is_refused(monkeypatch):
    monitoring = apps.get_app_config("monitoring")
    twice = {**monitoring.schedule, "SMM service sync": ("monitoring.tasks.deliver_alerts", 60, {})}
    monkeypatch.setattr(monitoring, "schedule", twice)
    with pytest.raises(ImproperlyConfigured, match="'SMM service sync' is declared by both 'smm' and 'monitoring'"):
        beat_schedule()


@pytest.mark.django_db
def test_install_schedules_installs_exactly_the_declared_schedule():
    # migrate (post_migrate) installed it already
    assert set(PeriodicTask.objects.values_list("name", flat=True)) == set(beat_schedule())
    PeriodicTask.objects.all().delete()
    assert sorted(install_schedules()) == sorted(beat_schedule())
    installed = {
        task.name: (task.task, task.interval.every, json.loads(task.kwargs))
        for task in PeriodicTask.objects.select_related("interval")
    }
    assert installed == beat_schedule()
    assert {task.interval.period for task in PeriodicTask.objects.select_related("interval")} == {"seconds"}
    assert install_schedules() == []  # and never twice


@pytest.mark.django_db
def test_install_schedules_leaves_an_operators_edit_alone():
    task = PeriodicTask.objects.get(name="SMM balances")
    task.enabled, task.kwargs = False, json.dumps({"note": "paused by ops"})
    task.save()
    install_schedules()
    task.refresh_from_db()
    assert not task.enabled and json.loads(task.kwargs) == {"note": "paused by ops"}


def test_startup_tasks_are_the_declared_ones_and_runall_sends_them(monkeypatch):
    from eishro import runall
    from eishro.celery import app

    assert domain.startup_tasks() == ("smm.tasks.sync_all_services", "smm.tasks.refresh_all_balances")
    sent = []
    monkeypatch.setattr(app, "send_task", sent.append)
    runall.send_startup_tasks("127.0.0.1:9", wait=0)
    assert tuple(sent) == domain.startup_tasks()


def test_adapters_are_read_from_the_domain_declarations(monkeypatch):
    assert {"jap", "smmkings", "secsers", "panel_v2"} <= set(registered_codes())
    # an app that is not a domain app declares nothing, whatever attribute it carries
    monkeypatch.setattr(apps.get_app_config("auth"), "adapters", {"stray": "x.Y"}, raising=False)
    assert "stray" not in registered_codes()


def _mounts():
    from eishro import urls

    resolvers = [p for p in urls.urlpatterns if isinstance(p, URLResolver)]
    return [(str(p.pattern), getattr(p.urlconf_module, "__name__", None)) for p in resolvers]


def _remount():
    from eishro import urls

    importlib.reload(urls)
    clear_url_caches()


def test_api_and_sandbox_mounts_are_the_declared_modules(settings):
    assert settings.SANDBOX_ENABLED
    assert domain.api_url_modules() == {
        "payments": "payments.api_urls", "smm": "smm.api_urls", "monitoring": "monitoring.api_urls"}
    assert domain.sandbox_url_modules() == ["integrations.sandbox", "payments.sandbox", "smm.sandbox"]
    mounts = _mounts()
    assert [m for m in mounts if m[0].startswith("api/") and m[0] != "api/"] == [
        (f"api/{label}/", module) for label, module in domain.api_url_modules().items()
    ]
    assert [m for m in mounts if m[0] == "sandbox/"] == [("sandbox/", m) for m in domain.sandbox_url_modules()]


def test_a_new_declaration_is_mounted_and_nothing_undeclared_is(client, settings):
    shipping = apps.get_app_config("shipping")
    assert client.get("/api/shipping/ping/").status_code == 404
    shipping.api_urls = shipping.sandbox_urls = "tests.integrations.domain_urls"
    try:
        _remount()
        assert client.get("/api/shipping/ping/").content == b"pong"
        assert client.get("/sandbox/ping/").content == b"pong"
        settings.SANDBOX_ENABLED = False
        _remount()
        assert client.get("/api/shipping/ping/").content == b"pong"
        assert client.get("/sandbox/ping/").status_code == 404  # never mounted without SANDBOX_ENABLED
    finally:
        del shipping.api_urls, shipping.sandbox_urls
        settings.SANDBOX_ENABLED = True
        _remount()
    assert client.get("/api/shipping/ping/").status_code == 404
    assert ("api/smm/", "smm.api_urls") in _mounts()
