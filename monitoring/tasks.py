from celery import shared_task

from . import alerts, health


@shared_task(ignore_result=False, soft_time_limit=50, time_limit=55)
def run_health_round():
    """Every minute (beat): probe every active provider, then deliver what changed."""
    result = health.run_round()
    if result.changes:
        deliver_alerts.delay()
    return result.as_dict()


@shared_task
def deliver_alerts():
    """Also on its own every minute, so a change left behind by a crashed worker is never lost, and
    alerts that failed for a transient reason are tried again."""
    processed = alerts.process_changes()
    alerts.retry_failed()
    return processed


@shared_task
def prune_health_checks():
    return health.prune()
