from celery import shared_task
from django.conf import settings

from . import partitions, webhooks
from .models import WebhookEvent


@shared_task(ignore_result=False)
def process_webhook_event(event_pk):
    event = WebhookEvent.objects.select_related("integration").filter(pk=event_pk).first()
    if event is None:
        return "missing"
    return "processed" if webhooks.process(event) else event.state


@shared_task
def maintain_log_partitions():
    created = partitions.ensure_partitions(settings.INTEGRATION_LOG_PARTITIONS_AHEAD)
    dropped = partitions.drop_expired(settings.INTEGRATION_LOG_RETENTION_MONTHS)
    return {"created": created, "dropped": dropped}
