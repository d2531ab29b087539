from django.db import transaction


def install_schedules(schedule=None, verbosity=1, stdout=None):
    """Create missing periodic tasks; never overwrite what operators changed. Returns names created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    from eishro.schedule import BEAT_SCHEDULE

    created = []
    with transaction.atomic():
        for name, (task, every, kwargs) in (schedule or BEAT_SCHEDULE).items():
            if PeriodicTask.objects.filter(name=name).exists():
                continue
            interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
            import json

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
