"""Demo data follows the address `make run` serves (RUN_ADDR): the demo providers point at that
address's simulators, and a run on another port re-points them instead of leaving them down."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from integrations.breaker import CircuitBreaker
from integrations.models import ExternalIntegration, Health

from ..conftest import ROOT, _database_url

SETTINGS_PROBE = "import django; django.setup(); from django.conf import settings; print(settings.SANDBOX_BASE_URL)"


def demo_env(**extra):
    """This process's environment (its .env, cache and var directory) on the test database, with
    the address settings given and no other."""
    env = {k: v for k, v in os.environ.items() if k not in ("RUN_ADDR", "SANDBOX_BASE_URL")}
    env.update(DATABASE_URL=_database_url(), PYTHONUNBUFFERED="1", **extra)
    return env


def load_demo(run_addr):
    result = subprocess.run([sys.executable, "manage.py", "load_demo_data"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=demo_env(RUN_ADDR=run_addr))
    assert result.returncode == 0, result.stderr
    return result.stdout


def demo_providers():
    return ExternalIntegration.objects.filter(owner__username="demo-merchant").order_by("code")


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "http://127.0.0.1:8000/sandbox"),
        ({"RUN_ADDR": "127.0.0.1:8123"}, "http://127.0.0.1:8123/sandbox"),
        ({"RUN_ADDR": "0.0.0.0:8123"}, "http://127.0.0.1:8123/sandbox"),  # a wildcard bind: the loopback
        ({"RUN_ADDR": "8123"}, "http://127.0.0.1:8123/sandbox"),  # runserver's port-only form
        ({"RUN_ADDR": "localhost:8123", "SANDBOX_BASE_URL": "http://web:8000/sandbox"}, "http://web:8000/sandbox"),
    ],
)
def test_the_sandbox_url_derives_from_run_addr_unless_set(environment, expected):
    env = {k: v for k, v in os.environ.items() if k not in ("RUN_ADDR", "SANDBOX_BASE_URL")}
    env.update(DJANGO_SETTINGS_MODULE="eishro.settings", **environment)
    result = subprocess.run([sys.executable, "-c", SETTINGS_PROBE], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


@pytest.mark.django_db(transaction=True)
def test_a_second_run_on_another_port_re_points_the_demo_providers(django_user_model):
    load_demo("127.0.0.1:8000")
    providers = list(demo_providers())
    assert providers and all(p.base_url.startswith("http://127.0.0.1:8000/sandbox/") for p in providers)
    # The panels were checked, found down and their breakers opened while nothing served port 8000.
    demo_providers().update(health_status=Health.UNHEALTHY)
    for p in providers:
        breaker = CircuitBreaker(p.pk, threshold=1)
        breaker.record_failure()
        assert breaker.state == "open"

    output = load_demo("127.0.0.1:8123")
    moved = list(demo_providers())
    assert [p.pk for p in moved] == [p.pk for p in providers]  # the same rows, re-pointed
    for p in moved:
        assert p.base_url == f"http://127.0.0.1:8123/sandbox/smm/{p.code}/api/v2"
        assert p.health_status == "" and p.last_health_check is None  # not shown down any more
        assert CircuitBreaker(p.pk).state == "closed"
    assert "http://127.0.0.1:8123/admin/" in output

    # Idempotent: the same address again changes nothing.
    before = {p.pk: (p.base_url, p.updated_at) for p in demo_providers()}
    load_demo("127.0.0.1:8123")
    assert {p.pk: (p.base_url, p.updated_at) for p in demo_providers()} == before
    assert get_user_model().objects.filter(username="demo-merchant").count() == 1
    connection.close()  # the subprocesses' writes are read on a fresh connection next time
