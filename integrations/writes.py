"""Exactly-once external writes: the pattern of a write a provider cannot deduplicate (an SMM `add`,
a shipment creation, a charge).

1. The local row exists first (with the caller's idempotency key), in a *queued* state.
2. A worker claims it with a compare-and-set to *submitting* (the state it read, the attempt counter
   it read, and a due time that has come): of two workers, or a task delivered twice, one sends.
3. The answer decides:
   - a write that certainly did not leave us (`CircuitOpen`, a `ProviderError` whose `sent` is
     False, or any error raised before a call reached its transport: see integrations.outbound)
     goes back to *queued* with `attempts + 1` and a `next_attempt_at` by exponential backoff
     with jitter; after `max_attempts` it is *failed* with the last error;
   - a lost answer after sending (`UnknownOutcome`, or what the domain says the provider may have
     accepted) becomes *unknown*: never sent again blindly;
   - any other refusal is *failed*;
   - success is recorded by the domain (`sent_state_and_fields`).
4. A worker that died between claim and answer leaves the row in *submitting*: `sweep_stale` moves
   rows claimed longer than `stale_after` ago to *unknown*.
5. An operator resolves an *unknown* row from the provider's own history: sent (with the provider's
   reference) or failed — `resolve_sent` / `resolve_failed`, and the admin's actions
   (`integrations.admin.ExternalWriteAdminMixin`).

Every state change goes through the domain's `StateMachine`, so each one leaves a history row.

A domain subclasses `ExternalWrite` and fills in the hooks::

    class OrderSubmission(ExternalWrite):
        model = SMMOrder
        machine = SMMOrder.machine
        queued, submitting, unknown, failed = "created", "submitting", "unknown", "failed"

        def send(self, order): ...                       # the provider call; returns its answer
        def sent_state_and_fields(self, order, answer): ...  # -> ("pending", {"external_order_id": …})
"""

import enum
import logging
import random
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from . import outbound
from .errors import CircuitOpen, ProviderError, UnknownOutcome

logger = logging.getLogger("integrations.writes")

__all__ = ["ExternalWrite", "Outcome", "certainly_not_sent"]


class Outcome(enum.StrEnum):
    SENT = "sent"  # the provider took it; recorded
    QUEUED = "queued"  # certainly not sent; back in the queue for a later attempt
    UNKNOWN = "unknown"  # may have been taken; an operator or reconciliation decides
    FAILED = "failed"  # refused, or out of attempts
    SKIPPED = "skipped"  # not claimed: someone else has it, it is not due, or it is not queued


def certainly_not_sent(exc):
    """The request never left us: trying again cannot make the provider act twice."""
    return isinstance(exc, CircuitOpen) or getattr(exc, "sent", None) is False


class ExternalWrite:
    """One kind of exactly-once write. Subclass it per domain (see the module's docstring)."""

    model = None
    machine = None
    # The domain's states.
    queued = "queued"
    submitting = "submitting"
    unknown = "unknown"
    failed = "failed"
    # The domain's fields.
    attempts_field = "attempts"
    next_attempt_field = "next_attempt_at"
    error_field = "error"
    claimed_at_field = "updated_at"  # set by the claim (an auto_now field is)
    error_max_length = 2000
    # Retries of writes that certainly were not sent.
    max_attempts = 5
    backoff_seconds = 30
    backoff_max_seconds = 3600
    stale_after = timedelta(minutes=10)

    # --- the domain's hooks ---------------------------------------------------------------------
    def send(self, obj):
        """Make the provider call; return its answer (handed to `sent_state_and_fields`)."""
        raise NotImplementedError

    def sent_state_and_fields(self, obj, answer):
        """The state and fields recording a successful send."""
        raise NotImplementedError

    def may_have_been_accepted(self, exc):
        """After sending: could the provider have acted despite this error? Then the row is unknown."""
        return isinstance(exc, UnknownOutcome)

    def failed_fields(self, obj, error):
        """Extra fields written with the failed state (a finish time…)."""
        return {}

    def resolved_state_and_fields(self, obj, reference):
        """The state and fields when an operator found the write in the provider's history."""
        raise NotImplementedError

    def check_reference(self, obj, reference):
        """Raise ValidationError if `reference` cannot be this row's (taken by another row…)."""

    def get_queryset(self):
        return self.model._default_manager.all()

    # --- helpers --------------------------------------------------------------------------------
    def state_of(self, obj):
        return getattr(obj, self.machine.field)

    def _error(self, error):
        return str(error)[: self.error_max_length]

    def backoff(self, attempts, exc=None):
        """The delay before attempt `attempts + 1`: exponential, capped, with jitter (half of it
        random, so that rows queued by one outage do not all come back at once). A provider's
        `retry_after` is a floor."""
        delay = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            delay = max(delay, float(retry_after))
        return timedelta(seconds=delay)

    def due(self, now=None):
        """Queued rows whose next attempt has come, oldest first."""
        now = now or timezone.now()
        next_at = self.next_attempt_field
        return (
            self.get_queryset()
            .filter(**{self.machine.field: self.queued})
            .filter(Q(**{f"{next_at}__isnull": True}) | Q(**{f"{next_at}__lte": now}))
            .order_by("pk")
        )

    # --- the flow -------------------------------------------------------------------------------
    def claim(self, obj, now=None):
        """Compare-and-set queued -> submitting, on the attempt counter we read and a due time that
        has come. True: this caller owns the send."""
        if self.state_of(obj) != self.queued:
            return False
        now = now or timezone.now()
        next_at = self.next_attempt_field
        only_if = Q(**{self.attempts_field: getattr(obj, self.attempts_field)}) & (
            Q(**{f"{next_at}__isnull": True}) | Q(**{f"{next_at}__lte": now})
        )
        return self.machine.move(obj, self.submitting, reason=gettext("Claimed for sending."), only_if=only_if)

    def submit(self, obj, now=None):
        """Claim `obj` and send it, at most once. Returns an `Outcome`; `obj` holds the new state.
        `now` is the clock the due time is compared with (tests)."""
        if not self.claim(obj, now):
            return Outcome.SKIPPED
        with outbound.watch() as calls:
            try:
                answer = self.send(obj)
            except ProviderError as exc:
                return self._after_error(obj, exc)
            except Exception as exc:
                # Not one of the providers' errors: a bug, or a fault no transport mapped (the cache,
                # the database). Before any call was handed to a transport nothing left us: the row
                # goes back to the queue like any write that certainly was not sent.
                if not calls.started:
                    logger.exception("%s %s: failed before sending; queued again", self.model.__name__, obj.pk)
                    return self._not_sent(obj, exc)
                # After that, whether the request left us is not known, so it is not sent again.
                self._move(obj, self.unknown, reason=gettext("Unexpected error while sending: %s") % exc,
                           **{self.error_field: self._error(exc)})
                raise
        state, fields = self.sent_state_and_fields(obj, answer)
        if self._move(obj, state, reason=gettext("Sent."), **fields):
            return Outcome.SENT
        return Outcome.SKIPPED

    def _not_sent(self, obj, exc):
        """Back to the queue with a later attempt (or failed, out of attempts): `exc` certainly did
        not reach the provider."""
        error = self._error(exc)
        attempts = getattr(obj, self.attempts_field) + 1
        if attempts >= self.max_attempts:
            fields = {self.attempts_field: attempts, self.error_field: error, **self.failed_fields(obj, error)}
            self._move(obj, self.failed, reason=gettext("Not sent after %(count)d attempts: %(error)s")
                       % {"count": attempts, "error": error}, **fields)
            return Outcome.FAILED
        next_at = timezone.now() + self.backoff(attempts, exc)
        self._move(obj, self.queued, reason=gettext("Not sent: %s") % error,
                   **{self.attempts_field: attempts, self.next_attempt_field: next_at, self.error_field: error})
        return Outcome.QUEUED

    def _after_error(self, obj, exc):
        error = self._error(exc)
        if certainly_not_sent(exc):
            return self._not_sent(obj, exc)
        if self.may_have_been_accepted(exc):
            logger.warning("%s %s: outcome unknown after sending: %s", self.model.__name__, obj.pk, exc)
            self._move(obj, self.unknown, reason=gettext("The outcome is unknown: %s") % error,
                       **{self.error_field: error})
            return Outcome.UNKNOWN
        self._move(obj, self.failed, reason=gettext("Refused: %s") % error,
                   **{self.error_field: error, **self.failed_fields(obj, error)})
        return Outcome.FAILED

    def _move(self, obj, new, *, reason, **fields):
        """Move from `submitting`; if the stale sweep moved the row to unknown meanwhile (a very slow
        answer), record the answer from there, since it is better knowledge than unknown."""
        if self.machine.move(obj, new, reason=reason, **fields):
            return True
        current = self.get_queryset().filter(pk=obj.pk).values_list(self.machine.field, flat=True).first()
        if current == self.unknown and new != self.unknown:
            setattr(obj, self.machine.field, current)
            return self.machine.move(obj, new, reason=reason, **fields)
        return False

    def retry_due(self, limit=100, now=None):
        """Send the queued rows that are due, each under its own claim. Returns counts by outcome."""
        counts = {}
        now = now or timezone.now()
        for obj in list(self.due(now)[:limit]):
            try:
                outcome = self.submit(obj, now)
            except Exception:  # one row's bug must not stop the others
                logger.exception("%s %s: sending failed", self.model.__name__, obj.pk)
                outcome = Outcome.UNKNOWN
            counts[str(outcome)] = counts.get(str(outcome), 0) + 1
        return counts

    def sweep_stale(self, older_than=None, now=None):
        """Rows claimed longer than `older_than` ago whose worker never recorded the answer become
        unknown (their request may have reached the provider). Returns their primary keys."""
        cutoff = (now or timezone.now()) - (older_than or self.stale_after)
        stale = self.get_queryset().filter(
            **{self.machine.field: self.submitting, f"{self.claimed_at_field}__lt": cutoff}
        )
        message = gettext("The submission was interrupted; check the provider's own history.")
        return self.machine.move_many(stale, self.unknown, reason=message, **{self.error_field: message})

    # --- operator resolution --------------------------------------------------------------------
    def _check_unknown(self, obj):
        if self.state_of(obj) != self.unknown:
            raise ValidationError(gettext("Only rows whose outcome is unknown can be resolved."))

    def resolve_sent(self, obj, reference, *, actor=None, note=""):
        """The operator found the write in the provider's history under `reference`."""
        self._check_unknown(obj)
        reference = str(reference or "").strip()
        if not reference:
            raise ValidationError(gettext("Enter the provider's reference."))
        self.check_reference(obj, reference)
        state, fields = self.resolved_state_and_fields(obj, reference)
        reason = note or gettext("Resolved by an operator as sent (provider's reference %s).") % reference
        return self.machine.move(obj, state, reason=reason, actor=actor, **fields)

    def resolve_failed(self, obj, *, actor=None, note=""):
        """The operator found no trace of the write at the provider."""
        self._check_unknown(obj)
        message = note or gettext("Marked as failed by an operator: the provider has no such write.")
        fields = {self.error_field: message, **self.failed_fields(obj, message)}
        return self.machine.move(obj, self.failed, reason=message, actor=actor, **fields)
