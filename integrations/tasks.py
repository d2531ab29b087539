from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import partitions, webhooks
from .models import WebhookEvent


@shared_task(ignore_result=False)
def process_webhook_event(event_pk):
    event = WebhookEvent.objects.select_related("integration").filter(pk=event_pk).first()
    if event is None:
        return "missing"
    return "processed" if webhooks.process(event) else event.state


# Long enough that the event's own task, queued at once, has certainly had its turn.
RECEIVED_GRACE_SECONDS = 60


@shared_task
def process_received_webhooks(limit=200):
    """The webhook outbox's sweep: events still `received` a minute after they arrived (their task
    never queued, its message lost, its worker killed before claiming) are applied now. Each goes
    through `webhooks.process`, whose claim is a conditional UPDATE: an event's own task arriving
    late, or two sweeps at once, never apply one twice. Failed events are left to operators."""
    cutoff = timezone.now() - timedelta(seconds=RECEIVED_GRACE_SECONDS)
    pks = list(
        WebhookEvent.objects.filter(state=WebhookEvent.State.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at").values_list("pk", flat=True)[:limit]
    )
    processed = 0
    for event in WebhookEvent.objects.select_related("integration").filter(pk__in=pks).order_by("received_at"):
        processed += bool(webhooks.process(event))
    return processed


@shared_task
def maintain_log_partitions():
    created = partitions.ensure_partitions(settings.INTEGRATION_LOG_PARTITIONS_AHEAD)
    dropped = partitions.drop_expired(settings.INTEGRATION_LOG_RETENTION_MONTHS)
    return {"created": created, "dropped": dropped}
