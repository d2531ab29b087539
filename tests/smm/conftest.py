import pytest

from smm.models import SandboxPanel
from smm.providers import create_provider
from smm.sandbox import catalogue

PANEL_URL = "https://panel.example.test/api/v2"


@pytest.fixture
def make_provider(db, merchant):
    def make(owner=None, name="mypanel", code="panel_v2", url=PANEL_URL, key="k-SECRET-123456", **extra):
        return create_provider(owner=owner or merchant, name=name, display_name=name.title(),
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


@pytest.fixture
def worker(celery_worker_process):
    """A real Celery worker, with tasks really sent to it (not run eagerly in the test process)."""
    return celery_worker_process
