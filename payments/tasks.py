"""Scheduled payment work (PaymentsConfig.schedule). Each job is safe to run twice at once: moves are
compare-and-set, reconciliation holds a lock per provider row, refunds are claimed before sending."""

import logging

from celery import shared_task

from . import idempotency, services

logger = logging.getLogger("payments")


@shared_task
def reconcile_payments(limit=200):
    """Pending and unknown payments asked at their provider (and initiated ones never begun)."""
    return services.reconcile(limit=limit)


@shared_task
def expire_payments(limit=500):
    """Checkouts and transfers whose time ran out, closed (a provider's payment asked first)."""
    return len(services.expire_payments(limit=limit))


@shared_task
def retry_refunds(limit=100):
    """Refunds whose send certainly did not leave us, sent again once due; interrupted sends marked
    unknown."""
    return services.retry_refunds(limit=limit)


@shared_task
def prune_idempotency_keys():
    """The API's kept Idempotency-Key answers older than PAYMENT_IDEMPOTENCY_RETENTION_HOURS, deleted."""
    return idempotency.prune()
