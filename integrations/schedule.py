"""The beat schedule in the database: the sum of the domain apps' declarations (`integrations.domain`).

`install_schedules` (run after every migrate) creates the missing rows in django-celery-beat's
tables and leaves existing ones alone, so an operator's edits in the admin (interval, enabled,
arguments) survive deploys.
"""

import json

from django.db import transaction

from .domain import beat_schedule


def install_schedules(schedule=None, verbosity=1, stdout=None):
    """Create missing periodic tasks; never overwrite what operators changed. Returns names created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    if schedule is None:
        schedule = beat_schedule()
    created = []
    with transaction.atomic():
        for name, (task, every, kwargs) in schedule.items():
            if PeriodicTask.objects.filter(name=name).exists():
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.create(name=name, task=task, interval=interval, kwargs=json.dumps(kwargs))
            created.append(name)
        if created:
            PeriodicTasks.update_changed()
    if stdout and verbosity and created:
        stdout.write(f"Installed {len(created)} periodic task(s).\n")
    return created


def install_after_migrate(sender, verbosity=1, stdout=None, using="default", plan=None, **kwargs):
    from django.db import connections

    from . import partitions

    if "django_celery_beat_periodictask" in connections[using].introspection.table_names():
        install_schedules(verbosity=verbosity, stdout=stdout)
    # So that a fresh database has this month's and the next months' log partitions at once.
    from django.conf import settings

    partitions.ensure_partitions(settings.INTEGRATION_LOG_PARTITIONS_AHEAD)
