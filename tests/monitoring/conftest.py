import itertools

import pytest
from django.apps import apps

from integrations.models import ExternalIntegration, Kind

_names = itertools.count(1)


@pytest.fixture(autouse=True)
def test_adapters():
    config = apps.get_app_config("monitoring")
    saved = config.adapters
    config.adapters = {
        **saved,
        "probe": "tests.monitoring.fakes.HttpProbeAdapter",
        "scripted": "tests.monitoring.fakes.ScriptedAdapter",
    }
    yield
    config.adapters = saved


@pytest.fixture
def make_provider():
    def make(code="scripted", kind=Kind.PAYMENT, base_url="http://127.0.0.1:9/", **extra):
        n = next(_names)
        defaults = dict(
            kind=kind,
            code=code,
            name=extra.pop("name", f"{code}-{n}"),
            display_name=f"{code.title()} {n}",
            base_url=base_url,
        )
        defaults.update(extra)
        return ExternalIntegration.objects.create(**defaults)

    return make


def script(provider, **config):
    ExternalIntegration.objects.filter(pk=provider.pk).update(configuration=config)


@pytest.fixture(autouse=True)
def _really_eager_celery():
    """Work around the shared `_eager_celery` fixture (tests/conftest.py): it sets
    `conf.task_always_eager`, but with `config_from_object(..., namespace="CELERY")` the settings key
    CELERY_TASK_ALWAYS_EAGER (False) shadows that name, so tasks went to the broker. Set the key
    Celery actually reads here, and put it back afterwards."""
    from eishro.celery import app

    saved = app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.get("CELERY_TASK_EAGER_PROPAGATES", False)
    app.conf.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.CELERY_TASK_EAGER_PROPAGATES = True
    yield
    app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.CELERY_TASK_EAGER_PROPAGATES = saved
