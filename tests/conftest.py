"""Fixtures shared by every suite. Our own database, cache and broker are real; only outside
providers are replaced, by `responses` in unit tests and by the sandbox simulators over real HTTP."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from eishro.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_cache():
    from integrations.breaker import forget_clean_marks
    from integrations.webhooks import forget_rows

    cache.clear()
    forget_clean_marks()
    forget_rows()  # a rolled-back test's provider rows are gone without a delete signal
    yield


def set_eager(value):
    # The app reads Django settings under the CELERY_ namespace, where the prefixed key shadows the
    # plain one: `conf.task_always_eager = True` would be ignored while the setting
    # CELERY_TASK_ALWAYS_EAGER says False. Set the key Celery actually reads.
    celery_app.conf.CELERY_TASK_ALWAYS_EAGER = value
    celery_app.conf.CELERY_TASK_EAGER_PROPAGATES = value


@pytest.fixture(autouse=True)
def _no_default_smm_panels(settings):
    """Suites give their merchants the panels they need; the seed's default panels at registration
    (smm.signals, on in production) are turned on by the tests of that feature
    (tests/smm/test_default_panels.py)."""
    settings.SMM_DEFAULT_PANELS_AT_REGISTRATION = False


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks run in-process by default; `celery_worker_process` sends them to a real worker instead."""
    set_eager(True)
    yield
    set_eager(True)


def _reinstall_migrated_rows(sender, using="default", **kwargs):
    from integrations.selection import install_seed_table
    from payments.models import Bank, PaymentMethod
    from payments.reference import install

    install(Bank, PaymentMethod, using=using)
    install_seed_table()


@pytest.fixture(scope="session", autouse=True)
def _migrated_rows_survive_flushes():
    """Data migrations install reference rows (the seed's banks and ways to pay, the fallback table).
    A transactional test (live_server, a real worker) ends with a flush that empties every table, and
    Django then sends post_migrate as after `migrate`: the rows are installed again there, so every
    test meets the database as the migrations leave it, whatever ran before it."""
    from django.apps import apps
    from django.db.models.signals import post_migrate

    sender = apps.get_app_config("payments")
    post_migrate.connect(_reinstall_migrated_rows, sender=sender, dispatch_uid="tests-migrated-rows")
    yield
    post_migrate.disconnect(sender=sender, dispatch_uid="tests-migrated-rows")


@pytest.fixture(scope="session", autouse=True)
def _end_stray_postgres_sessions(django_db_setup, django_db_blocker):
    """live_server's request threads keep their connections (CONN_MAX_AGE) after the server stops,
    and a worker process may still hold one; on PostgreSQL the test database then cannot be dropped.
    End them before it is."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture
def merchant(django_user_model):
    user = django_user_model.objects.create_user("merchant-a", "a@example.ly", "pw-merchant-a")
    Token.objects.create(user=user)
    return user


@pytest.fixture
def other_merchant(django_user_model):
    user = django_user_model.objects.create_user("merchant-b", "b@example.ly", "pw-merchant-b")
    Token.objects.create(user=user)
    return user


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@example.ly", "pw-ops-123")


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def api(merchant):
    return client_for(merchant)


@pytest.fixture
def other_api(other_merchant):
    return client_for(other_merchant)


@pytest.fixture
def staff_api(staff):
    return client_for(staff)


def _database_url():
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db, live_server):
    """A real `celery worker` process on the configured broker and the test database.

    Tasks sent from the test process go through the real broker (Redis in CI, the filesystem
    transport by default) and their effects land in the test database."""
    set_eager(False)
    celery_app.control.purge()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url(),
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        C_FORCE_ROOT="1",
        SANDBOX_BASE_URL=f"{live_server.url}/sandbox",
        PYTHONUNBUFFERED="1",
    )
    log_path = ROOT / "var" / "test-worker.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tests.worker_app", "worker", "--pool=threads", "--concurrency=4",
             "-l", "info", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.time() + 60
            while time.time() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"celery worker exited early:\n{log_path.read_text()[-3000:]}")
                if "ready" in log_path.read_text():
                    break
                time.sleep(0.2)
            else:
                raise RuntimeError("celery worker did not become ready in 60 s")
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
            set_eager(True)


def wait_for(predicate, timeout=30.0, interval=0.1):
    """Poll until `predicate()` is truthy (for effects of another process); return its value."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
