"""`Idempotency-Key` on every write of the payments API.

The first request under a key runs and its answer is kept (ApiIdempotencyKey); the same request
again gets that answer back, the same status code and body, without running again; another request
under the same key (another body, another payment, another operation) is a 409. The key is claimed
by inserting its row (committed at once) before the write runs: of two racing requests, the unique
index lets one in and the other fails to insert, and answers 409 "still being processed" until the
first has answered.

A claim still without an answer ABANDONED_AFTER after it was made belongs to a request that died
(the web server kills a request after 60 s): a retry takes it over (compare-and-set, so one retry
only) and runs; the services' own keys make that safe.

Only successful answers (2xx) are kept. A refused request (400, 404, 409…) or a provider's failure
(502, 503) did nothing worth repeating, so its key is released and a retry runs afresh; the payment
and refund services keep their own keys too, so a payment begun or a refund sent is never started
twice even when the answer was lost before it could be kept.

Kept answers are pruned after PAYMENT_IDEMPOTENCY_RETENTION_HOURS (default 24; `prune`, hourly from
beat): a key reused after that runs afresh at this layer, and the services' own keys (on the Payment
and Refund rows, never pruned) still answer the first payment or refund instead of making a second."""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .models import ApiIdempotencyKey

HEADER = "Idempotency-Key"
KEY_MAX = 255
RETRY_AFTER = 1
PRUNE_BATCH = 5000
ABANDONED_AFTER = timedelta(minutes=5)


def retention_hours():
    return int(getattr(settings, "PAYMENT_IDEMPOTENCY_RETENTION_HOURS", 24))


def request_key(request):
    """The request's Idempotency-Key, stripped, or "" (a 400 when longer than the column)."""
    key = (request.headers.get(HEADER) or "").strip()
    if len(key) > KEY_MAX:
        raise ValidationError({"detail": _("The Idempotency-Key header has at most %d characters.") % KEY_MAX})
    return key


def fingerprint(operation, body):
    text = json.dumps({"operation": operation, "body": body}, sort_keys=True, cls=DjangoJSONEncoder)
    return hashlib.sha256(text.encode()).hexdigest()


def _conflict(message):
    return Response({"detail": message}, status=status.HTTP_409_CONFLICT)


def _take_over(claim):
    """Whether this request now holds `claim`, an answerless claim its request abandoned."""
    now = timezone.now()
    if claim.created_at > now - ABANDONED_AFTER:
        return False
    return bool(ApiIdempotencyKey.objects.filter(pk=claim.pk, status_code__isnull=True,
                                                 created_at=claim.created_at).update(created_at=now))


def idempotent(request, operation, body, run):
    """Answer `run()` (a DRF Response) once per key: see the module's docstring. `operation` names the
    write and its object (`payments.create`, `payments.123.refund`), `body` what was asked (the
    validated input): both make the fingerprint a repeat must match."""
    key = request_key(request)
    if not key:
        return run()
    print_ = fingerprint(operation, body)
    try:
        with transaction.atomic():
            claim = ApiIdempotencyKey.objects.create(owner=request.user, key=key, operation=operation,
                                                     fingerprint=print_)
    except IntegrityError:
        first = ApiIdempotencyKey.objects.filter(owner=request.user, key=key).first()
        if first is None:  # released by a refused first request between our insert and this read
            return idempotent(request, operation, body, run)
        if first.fingerprint != print_:
            return _conflict(_("This idempotency key was already used for a different request."))
        if first.status_code is None and not _take_over(first):
            response = _conflict(_("A request with this idempotency key is still being processed; retry shortly."))
            response["Retry-After"] = str(RETRY_AFTER)
            return response
        if first.status_code is not None:
            response = Response(first.body, status=first.status_code)
            response["Idempotent-Replayed"] = "true"
            return response
        claim = first
    try:
        response = run()
    except BaseException:
        ApiIdempotencyKey.objects.filter(pk=claim.pk).delete()
        raise
    if 200 <= response.status_code < 300:
        body = json.loads(json.dumps(response.data, cls=DjangoJSONEncoder))
        ApiIdempotencyKey.objects.filter(pk=claim.pk).update(status_code=response.status_code, body=body)
    else:
        ApiIdempotencyKey.objects.filter(pk=claim.pk).delete()
    return response


def prune(hours=None, now=None):
    """Delete the keys older than the retention, claims left by a crashed request included (one
    that old is not running any more). In batches, so no statement holds many rows locked. Returns
    how many were deleted."""
    hours = retention_hours() if hours is None else int(hours)
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    deleted = 0
    while True:
        batch = list(ApiIdempotencyKey.objects.filter(created_at__lt=cutoff).order_by("pk")
                     .values_list("pk", flat=True)[:PRUNE_BATCH])
        if not batch:
            return deleted
        deleted += ApiIdempotencyKey.objects.filter(pk__in=batch).delete()[0]
