"""The beat schedule of ARCHITECTURE.md, in code.

`install_schedules` (run after every migrate) creates the missing rows in django-celery-beat's
tables and leaves existing ones alone, so an operator's edits in the admin (interval, enabled,
arguments) survive deploys. Each domain app adds its jobs here.
"""

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86400, 7 * 86400

BEAT_SCHEDULE = {
    # name: (task, every N seconds, kwargs)
    "IntegrationLog partitions ahead and retention": ("integrations.tasks.maintain_log_partitions", DAY, {}),
}
