"""Issue 12, point 14: how fast the hub recovers from a killed worker is set deliberately: the
broker's visibility timeout, late acknowledgements, and a stale-submission sweep that runs as often
as its threshold needs."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from eishro.celery import app as celery_app
from integrations.domain import beat_schedule
from smm import orders
from smm.models import SMMOrder, SMMService
from smm.panel import PanelV2

from ..conftest import ROOT

SEND_TIMEOUT = PanelV2.meta.timeout  # one `add`, never retried


def settings_with(**env):
    """The Celery settings as a process started with `env` computes them."""
    code = ("import django, json; django.setup(); from django.conf import settings as s; "
            "print(json.dumps({'options': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'acks_late': s.CELERY_TASK_ACKS_LATE, "
            "'prefetch': s.CELERY_WORKER_PREFETCH_MULTIPLIER}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "DJANGO_SETTINGS_MODULE": "eishro.settings", **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_on_redis_a_killed_workers_messages_come_back_within_minutes_not_an_hour():
    chosen = settings_with(REDIS_URL="redis://127.0.0.1:6379/0", CELERY_BROKER_URL="redis://127.0.0.1:6379/1")
    timeout = chosen["options"].get("visibility_timeout")
    assert timeout is not None, "Redis's default (one hour) is not a choice"
    assert 4 * SEND_TIMEOUT <= timeout <= 600
    assert chosen["options"]["socket_connect_timeout"] <= 10  # an unreachable broker is not waited on
    assert chosen["acks_late"] is True and chosen["prefetch"] == 1
    assert settings_with(REDIS_URL="redis://127.0.0.1:6379/0", CELERY_VISIBILITY_TIMEOUT="120")[
        "options"]["visibility_timeout"] == 120


def test_late_acknowledgement_is_what_the_running_app_uses():
    assert celery_app.conf.task_acks_late is True and celery_app.conf.task_reject_on_worker_lost is True
    assert celery_app.conf.worker_prefetch_multiplier == 1
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert celery_app.conf.broker_transport_options["visibility_timeout"] == 300


@pytest.mark.django_db
def test_an_interrupted_send_is_under_review_within_about_one_threshold(make_provider):
    threshold = orders.STALE_SUBMISSION
    assert 2 * timedelta(seconds=SEND_TIMEOUT) <= threshold <= timedelta(minutes=3)
    jobs = {task: every for task, every, _kwargs in beat_schedule().values()}
    every = jobs["smm.tasks.mark_stale_submissions"]
    assert every <= threshold.total_seconds() / 2  # a claim is seen stale at most half a threshold late

    provider = make_provider()
    service = SMMService.objects.create(provider=provider, service_id="1", name="x", type="Default",
                                        category="x", rate="1", min_quantity=1, max_quantity=10)
    interrupted = SMMOrder.objects.create(owner=provider.integration.owner, provider=provider, service=service,
                                          link="https://x.ly/a", quantity=5)
    sending = SMMOrder.objects.create(owner=provider.integration.owner, provider=provider, service=service,
                                      link="https://x.ly/b", quantity=5)
    assert orders.submission.claim(interrupted) and orders.submission.claim(sending)
    # Claimed one threshold and one sweep interval ago: the scheduled job has run by now.
    SMMOrder.objects.filter(pk=interrupted.pk).update(
        updated_at=timezone.now() - threshold - timedelta(seconds=every))
    SMMOrder.objects.filter(pk=sending.pk).update(updated_at=timezone.now() - timedelta(seconds=SEND_TIMEOUT))
    assert celery_app.tasks["smm.tasks.mark_stale_submissions"].apply().get() == 1
    assert SMMOrder.objects.get(pk=interrupted.pk).status == "unknown"
    assert SMMOrder.objects.get(pk=sending.pk).status == "submitting"  # a send still within its timeout
