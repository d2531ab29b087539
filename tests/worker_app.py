"""The Celery app as the test worker process loads it (`celery -A tests.worker_app worker`).

It is the project's own app plus the test-only adapters the suites register in-process with
fixtures, so that a task the real worker runs can resolve them too."""

from celery.signals import worker_init

from eishro.celery import app

__all__ = ["app"]

TEST_ADAPTERS = {"echo": "tests.integrations.fakes.EchoAdapter"}


@worker_init.connect
def _register_test_adapters(**kwargs):
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    config = apps.get_app_config("integrations")
    config.adapters = {**config.adapters, **TEST_ADAPTERS}
