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
