"""The beat schedule of ARCHITECTURE.md, in code.

`install_schedules` (run after every migrate) creates the missing rows in django-celery-beat's
tables and leaves existing ones alone, so an operator's edits in the admin (interval, enabled,
arguments) survive deploys. Each domain app adds its jobs here.
"""

MINUTE, HOUR, DAY, WEEK = 60, 3600, 86400, 7 * 86400

BEAT_SCHEDULE = {
    # name: (task, every N seconds, kwargs)
    "IntegrationLog partitions ahead and retention": ("integrations.tasks.maintain_log_partitions", DAY, {}),
    "SMM service sync": ("smm.tasks.sync_all_services", HOUR, {}),
    "SMM order status polling": ("smm.tasks.poll_all_orders", 5 * MINUTE, {}),
    "SMM balances": ("smm.tasks.refresh_all_balances", HOUR, {}),
    "SMM cleanup of old orders": ("smm.tasks.cleanup_old_orders", WEEK, {}),
    "Health checks of every active provider": ("monitoring.tasks.run_health_round", MINUTE, {}),
    "Monitoring alert delivery": ("monitoring.tasks.deliver_alerts", MINUTE, {}),
    "Health check retention": ("monitoring.tasks.prune_health_checks", DAY, {}),
}

# Sent once when `make run` starts, so that a newcomer sees catalogues and balances at once instead
# of after the first hourly run.
STARTUP_TASKS = ("smm.tasks.sync_all_services", "smm.tasks.refresh_all_balances")
