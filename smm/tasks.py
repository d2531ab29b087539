"""Scheduled SMM work. Each per-provider job holds a lock so two runs never overlap on one panel,
and transient provider errors are retried with exponential backoff."""

import logging

from celery import shared_task

from integrations.errors import ProviderError
from integrations.locks import LockUnavailable, provider_lock
from integrations.outbox import publish

from . import catalogue, orders, polling, providers
from .models import OPEN_STATES, SMMOrder, SMMProvider, SMMRefill

logger = logging.getLogger("smm")
MAX_RETRIES = 4


def _provider(pk):
    return SMMProvider.objects.select_related("integration").filter(pk=pk).first()


def _run_locked(task, job, provider_pk, func):
    provider = _provider(provider_pk)
    # A panel without its key is inactive (providers.create_default_panels); the key is checked too
    # in case a row was switched on around the API, so that no job ever calls a panel with no key.
    if provider is None or not provider.is_active or not providers.has_api_key(provider):
        return "skipped"
    try:
        with provider_lock(provider.pk, job) as acquired:
            if not acquired:
                return "locked"
            try:
                return func(provider)
            except ProviderError as exc:
                if exc.transient and task.request.retries < MAX_RETRIES:
                    countdown = getattr(exc, "retry_after", None) or 30 * 2 ** task.request.retries
                    raise task.retry(exc=exc, countdown=int(countdown)) from exc
                logger.warning("SMM %s for provider %s failed: %s", job, provider_pk, exc)
                return f"error: {exc}"
    except LockUnavailable:
        return "lock unavailable"  # the cache is down (logged); the job's next scheduled run does it


@shared_task(bind=True, max_retries=MAX_RETRIES)
def sync_provider_services(self, provider_pk):
    return _run_locked(self, "sync", provider_pk, catalogue.sync_services)


@shared_task(bind=True, max_retries=MAX_RETRIES)
def poll_provider_orders(self, provider_pk):
    def work(provider):
        result = polling.poll_orders(provider)
        result["refills"] = orders.poll_refills(provider)
        return result

    return _run_locked(self, "poll", provider_pk, work)


@shared_task(bind=True, max_retries=MAX_RETRIES)
def refresh_provider_balance(self, provider_pk):
    def work(provider):
        amount, currency = providers.refresh_balance(provider)
        return f"{amount} {currency}"

    return _run_locked(self, "balance", provider_pk, work)


@shared_task
def submit_order(order_pk):
    order = SMMOrder.objects.filter(pk=order_pk).first()
    if order is None:
        return "missing"
    return orders.submit_order(order).status


def enqueue_submission(order_pk):
    """Queue the send of a created order; False if the broker could not take it (logged).

    The order's row is the outbox: a created order is sent by this task or, whatever became of
    the task (never queued, its message lost, its worker killed before claiming), by the retry
    sweep below, which finds every queued order that is due. So a failure here is a delay, not a
    lost order, and the request that created the order goes on."""
    return publish(submit_order, (order_pk,), what=f"The send of SMM order {order_pk}",
                   sweep="the retry sweep (SMM queued order retries)")


@shared_task
def retry_queued_orders(limit=100):
    """The outbox's sweep: send the queued orders whose next attempt has come. That is every order
    no attempt was made for yet (its task never queued or lost) and every order whose `add`
    certainly did not reach the panel (circuit open, connection refused) once its backoff is over.
    Each is claimed first (integrations.writes), so the order's own task arriving late, a worker
    restarted mid-run, or two runs at once never send one order twice."""
    return orders.retry_queued_orders(limit=limit)


@shared_task
def sync_all_services():
    pks = list(SMMProvider.objects.active().values_list("pk", flat=True))
    for pk in pks:
        sync_provider_services.delay(pk)
    return len(pks)


@shared_task
def mark_stale_submissions():
    """Orders whose send was interrupted (left `submitting` longer than orders.STALE_SUBMISSION)
    become unknown: the panel may have taken them, so they are never sent again blindly."""
    return orders.mark_stale_submissions()


@shared_task
def poll_all_orders():
    with_open = set(SMMOrder.objects.filter(status__in=OPEN_STATES).values_list("provider_id", flat=True))
    with_open |= set(SMMRefill.objects.filter(status__in=SMMRefill.OPEN).values_list("order__provider_id", flat=True))
    pks = list(SMMProvider.objects.active().filter(pk__in=with_open).values_list("pk", flat=True))
    for pk in pks:
        poll_provider_orders.delay(pk)
    return len(pks)


@shared_task
def refresh_all_balances():
    pks = list(SMMProvider.objects.active().values_list("pk", flat=True))
    for pk in pks:
        refresh_provider_balance.delay(pk)
    return len(pks)


@shared_task
def cleanup_old_orders(days=180):
    return orders.cleanup_orders(days=days)
