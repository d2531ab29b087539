import pytest

from smm import services
from smm.models import SandboxPanel
from smm.sandbox import catalogue

PANEL_URL = "https://panel.example.test/api/v2"


@pytest.fixture
def make_provider(db, merchant):
    def make(owner=None, name="mypanel", code="panel_v2", url=PANEL_URL, key="k-SECRET-123456", **extra):
        return services.create_provider(owner=owner or merchant, name=name, display_name=name.title(),
                                        api_url=url, api_key=key, code=code, **extra)

    return make


@pytest.fixture
def adapter(make_provider):
    provider = make_provider()
    provider.integration.configuration = {"retries": 0, "backoff": 0}
    provider.integration.save()
    return provider.adapter


@pytest.fixture
def sandbox_provider(make_provider, live_server, merchant):
    """A provider for the simulated panel `code` over real HTTP (live_server), with a fast clock."""

    def make(code="jap", owner=None, step_seconds=0.2, catalogue_size=60, balance="1000", **extra):
        SandboxPanel.objects.update_or_create(
            code=code, defaults={"api_key": f"sandbox-{code}-key", "step_seconds": step_seconds,
                                 "catalogue_size": catalogue_size, "balance": balance},
        )
        return make_provider(owner=owner or merchant, name=extra.pop("name", code), code=code,
                             url=f"{live_server.url}/sandbox/smm/{code}/api/v2", key=f"sandbox-{code}-key", **extra)

    return make


def first_service(code, size, stype="Default", **where):
    for s in catalogue(code, size).values():
        if s["type"] == stype and all(s[k] == v for k, v in where.items()):
            return s
    raise LookupError(stype)


def _set_eager(value):
    from eishro.celery import app

    # The app reads settings under the CELERY_ namespace, where the prefixed key wins over the plain
    # one: `conf.task_always_eager = True` (what tests/conftest.py does) is shadowed by the Django
    # setting CELERY_TASK_ALWAYS_EAGER=False. Setting the prefixed key takes effect.
    app.conf.CELERY_TASK_ALWAYS_EAGER = value
    app.conf.CELERY_TASK_EAGER_PROPAGATES = value


@pytest.fixture(autouse=True)
def _really_eager_celery(_eager_celery):
    _set_eager(True)
    yield
    _set_eager(True)


@pytest.fixture
def worker(celery_worker_process):
    """A real Celery worker, with tasks really sent to it (not run eagerly in the test process)."""
    _set_eager(False)
    yield celery_worker_process
    _set_eager(True)


@pytest.fixture(scope="session", autouse=True)
def _end_stray_postgres_sessions(django_db_setup, django_db_blocker):
    """live_server's request threads keep their connections (CONN_MAX_AGE) after the server stops;
    on PostgreSQL the test database then cannot be dropped. End them before it is."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
