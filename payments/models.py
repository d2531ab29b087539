"""Payments: the banks and ways to pay of the seed, the merchants' payments and their refunds.

`Bank` and `PaymentMethod` are reference data (payments.reference, installed by migration 0002,
edited by operators afterwards). A `Payment` is one charge a merchant asks of a buyer; its status
moves along `Payment.TRANSITIONS` only, through the core's state machine (integrations.statemachine):
every change is a compare-and-set UPDATE with a history row (integrations.models.StateTransition).
A `Refund` is an exactly-once write (integrations.writes): `requested` is its queue, `submitting`
the claim. Services live in payments.services; adapters never touch these rows, they read the
attributes payments.interface lists.
"""

import secrets
import uuid

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from integrations.models import ExternalIntegration
from integrations.permissions import scoped
from integrations.statemachine import StateMachine

from .interface import Method, State

AMOUNT = {"max_digits": 18, "decimal_places": 3}
CURRENCIES = (("LYD", _("Libyan dinar")), ("USD", _("US dollar")))
REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read out over the phone
reference_validator = RegexValidator(r"^[A-Z0-9-]{1,30}$", _("At most 30 characters of A-Z, 0-9 and “-”."))


def new_reference(prefix="EP"):
    """Ours, unique by chance (32^10 per day) and by the unique index: `EP261207-7KQ2M9XW4R`."""
    token = "".join(secrets.choice(REFERENCE_ALPHABET) for _i in range(10))
    return f"{prefix}{timezone.now():%y%m%d}-{token}"


def new_refund_reference():
    return new_reference("RF")


class BankType(models.TextChoices):
    COMMERCIAL = "commercial", _("Commercial")
    DEVELOPMENT = "development", _("Development")


class Bank(models.Model):
    code = models.CharField(_("code"), max_length=8, unique=True, help_text=_("NBC, JUM, SAH, WAH, BCD…"))
    name_ar = models.CharField(_("name (Arabic)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    type = models.CharField(_("type"), max_length=20, choices=BankType.choices, default=BankType.COMMERCIAL)
    cards = models.JSONField(_("cards"), default=list, blank=True,
                             help_text=_("Card networks: mada, visa, mastercard."))
    online_banking = models.BooleanField(_("online banking"), default=False)
    branches = models.JSONField(_("branches"), default=list, blank=True, help_text=_("Cities with a branch."))
    active = models.BooleanField(_("active"), default=True)
    position = models.PositiveSmallIntegerField(_("order"), default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("bank")
        verbose_name_plural = _("banks")
        ordering = ["position", "code"]

    def __str__(self):
        return f"{self.code} · {self.local_name}"

    @property
    def local_name(self):
        """The name in the reader's language: Arabic when the active language is, else English
        (Arabic when no English name is set)."""
        if (translation.get_language() or "").startswith("ar"):
            return self.name_ar or self.name_en
        return self.name_en or self.name_ar


class PaymentMethod(models.Model):
    """One way to pay with its limits: what `payments.services.create_payment` checks a payment
    against. `adapter` is the registry code of the adapter that serves it (`moamalat` for cards,
    `cash_on_delivery`, `bank_transfer`, the wallets' own)."""

    code = models.CharField(_("code"), max_length=32, unique=True, choices=[
        (Method.CARD_CREDIT, _("Credit card")), (Method.CARD_DEBIT, _("Debit card")),
        (Method.BANK_TRANSFER, _("Bank transfer")), (Method.COD, _("Cash on delivery")),
        (Method.MOBICASH, _("MobiCash")), (Method.SADAD, _("Sadad")), (Method.ONEPAY, _("1Pay")),
    ])
    name_ar = models.CharField(_("name (Arabic)"), max_length=200)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    adapter = models.CharField(_("adapter"), max_length=50, help_text=_("Registry code of the adapter serving it."))
    networks = models.JSONField(_("card networks"), default=list, blank=True)
    currencies = models.JSONField(_("currencies"), default=list, help_text=_("ISO codes accepted, e.g. [\"LYD\"]."))
    min_amount = models.DecimalField(_("minimum amount"), null=True, blank=True, **AMOUNT)
    max_amount = models.DecimalField(_("maximum amount"), null=True, blank=True, **AMOUNT)
    banks = models.ManyToManyField(Bank, blank=True, related_name="methods", verbose_name=_("banks"),
                                   help_text=_("Banks a payer may choose (bank transfer); none: no choice."))
    processing_time = models.CharField(_("processing time"), max_length=100, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    planned = models.BooleanField(_("planned"), default=False, help_text=_("Announced by the seed, not live yet."))
    position = models.PositiveSmallIntegerField(_("order"), default=1)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("payment method")
        verbose_name_plural = _("payment methods")
        ordering = ["position", "code"]

    def __str__(self):
        return self.local_name or self.code

    @property
    def local_name(self):
        """The name in the reader's language: Arabic when the active language is, else English
        (Arabic when no English name is set)."""
        if (translation.get_language() or "").startswith("ar"):
            return self.name_ar or self.name_en
        return self.name_en or self.name_ar


class PaymentStatus(models.TextChoices):
    INITIATED = State.INITIATED, _("Initiated")
    PENDING = State.PENDING, _("Pending")
    PAID = State.PAID, _("Paid")
    FAILED = State.FAILED, _("Failed")
    CANCELLED = State.CANCELLED, _("Cancelled")
    EXPIRED = State.EXPIRED, _("Expired")
    PARTIALLY_REFUNDED = State.PARTIALLY_REFUNDED, _("Partially refunded")
    REFUNDED = State.REFUNDED, _("Refunded")
    UNKNOWN = State.UNKNOWN, _("Under review")


P = PaymentStatus
OUTCOMES = {P.PAID, P.FAILED, P.CANCELLED, P.EXPIRED}
OPEN_STATES = (P.INITIATED, P.PENDING, P.UNKNOWN)  # reconciliation and expiry look at these
CAPTURED_STATES = (P.PAID, P.PARTIALLY_REFUNDED)  # money was taken: refundable
FINAL_STATES = (P.FAILED, P.CANCELLED, P.EXPIRED, P.REFUNDED)


class PaymentQuerySet(models.QuerySet):
    def visible_to(self, user, perm="view"):
        return scoped(self, user, "owner", perm)


class Payment(models.Model):
    Status = PaymentStatus
    # Anything else is refused, so a late or duplicate answer changes nothing. `unknown` is an outcome
    # we could not learn (a begin whose answer was lost); it resolves to the real state.
    TRANSITIONS = {
        P.INITIATED: {P.PENDING, P.UNKNOWN} | OUTCOMES,
        P.PENDING: {P.UNKNOWN} | OUTCOMES,
        P.UNKNOWN: {P.PENDING} | OUTCOMES,
        P.PAID: {P.PARTIALLY_REFUNDED, P.REFUNDED},
        P.PARTIALLY_REFUNDED: {P.PARTIALLY_REFUNDED, P.REFUNDED},
        P.FAILED: set(),
        P.CANCELLED: set(),
        P.EXPIRED: set(),
        P.REFUNDED: set(),
    }
    machine = StateMachine(TRANSITIONS)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="payments", verbose_name=_("merchant")
    )
    order_reference = models.CharField(_("order reference"), max_length=100, blank=True,
                                       help_text=_("The merchant's own order number."))
    reference = models.CharField(_("reference"), max_length=30, unique=True, default=new_reference,
                                 validators=[reference_validator], editable=False)
    # The buyer's checkout page is addressed by this, never by the sequential id or our reference.
    public_id = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    amount = models.DecimalField(_("amount"), validators=[MinValueValidator(0)], **AMOUNT)
    currency = models.CharField(_("currency"), max_length=3, choices=CURRENCIES, default="LYD")
    method = models.CharField(_("method"), max_length=32)
    bank = models.ForeignKey(Bank, to_field="code", db_column="bank_code", null=True, blank=True,
                             on_delete=models.PROTECT, related_name="payments", verbose_name=_("bank"))
    # Null for the ways to pay of our own (cash on delivery, bank transfer): no provider row exists.
    integration = models.ForeignKey(ExternalIntegration, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="payments", verbose_name=_("provider row"))
    status = models.CharField(_("status"), max_length=20, choices=PaymentStatus.choices, default=P.INITIATED)
    next_step = models.CharField(_("next step"), max_length=20, blank=True)
    instructions = models.TextField(_("instructions"), blank=True)
    provider_reference = models.CharField(_("provider reference"), max_length=100, blank=True, db_index=True)
    network_reference = models.CharField(_("network reference"), max_length=100, blank=True)
    provider_data = models.JSONField(_("provider data"), default=dict, blank=True)
    payer_phone = models.CharField(_("payer phone"), max_length=20, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    # Set, and committed, before the adapter's `begin` is called: an `initiated` payment without it
    # was certainly never sent to its provider; one with it may have been (payments.services.checkout).
    begun_at = models.DateTimeField(_("begun"), null=True, blank=True, editable=False)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    refunded_amount = models.DecimalField(_("refunded"), default=0, **AMOUNT)
    error = models.TextField(_("error"), blank=True)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"], condition=~Q(idempotency_key=""), name="payment_idempotency"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative"),
            # The last guard of the refund race: whatever a service does, the database refuses more.
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=models.F("amount")),
                name="payment_refunded_within_amount",
            ),
        ]
        # Each list's ordering and filter has its index (integrations.paging).
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="payment_owner_recent"),
            models.Index(fields=["owner", "status", "-created_at", "-id"], name="payment_owner_status"),
            models.Index(fields=["-created_at", "-id"], name="payment_recent"),
            models.Index(fields=["status", "-created_at", "-id"], name="payment_status_recent"),
            models.Index(fields=["method", "-created_at", "-id"], name="payment_method_recent"),
            models.Index(fields=["owner", "order_reference"], name="payment_owner_order"),
            # Reconciliation and expiry read the open payments only.
            models.Index(fields=["status", "expires_at"], name="payment_open",
                         condition=Q(status__in=OPEN_STATES)),
            models.Index(fields=["integration", "status"], name="payment_integration_open",
                         condition=Q(status__in=OPEN_STATES)),
        ]

    def __str__(self):
        return f"{self.reference} · {self.amount} {self.currency} ({self.get_status_display()})"

    @property
    def bank_code(self):
        """What adapters read (payments.interface): the bank's code or ""."""
        return self.bank_id or ""

    @property
    def refundable_amount(self):
        return self.amount - self.refunded_amount if self.status in CAPTURED_STATES else 0

    @property
    def is_open(self):
        return self.status in OPEN_STATES

    def can_move_to(self, new):
        return self.machine.can_move(self.status, new)

    def transition(self, new, *, reason="", actor=None, **fields):
        """Compare-and-set move with its history row (integrations.statemachine)."""
        return self.machine.move(self, new, reason=reason, actor=actor, **fields)


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", _("Requested")
    SUBMITTING = "submitting", _("Submitting")
    PENDING = "pending", _("Pending")
    REFUNDED = "refunded", _("Refunded")
    FAILED = "failed", _("Failed")
    UNKNOWN = "unknown", _("Under review")


R = RefundStatus


class Refund(models.Model):
    Status = RefundStatus
    # `requested` is the exactly-once write's queue and `submitting` its claim (integrations.writes):
    # `submitting` -> `requested` is a send that certainly did not leave us.
    TRANSITIONS = {
        R.REQUESTED: {R.SUBMITTING, R.FAILED},
        R.SUBMITTING: {R.REQUESTED, R.PENDING, R.REFUNDED, R.FAILED, R.UNKNOWN},
        R.PENDING: {R.REFUNDED, R.FAILED},
        R.UNKNOWN: {R.PENDING, R.REFUNDED, R.FAILED},
        R.REFUNDED: set(),
        R.FAILED: set(),
    }
    machine = StateMachine(TRANSITIONS)

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="refunds", verbose_name=_("payment"))
    reference = models.CharField(_("reference"), max_length=30, unique=True, default=new_refund_reference,
                                 validators=[reference_validator], editable=False)
    amount = models.DecimalField(_("amount"), validators=[MinValueValidator(0)], **AMOUNT)
    status = models.CharField(_("status"), max_length=20, choices=RefundStatus.choices, default=R.REQUESTED)
    provider_reference = models.CharField(_("provider reference"), max_length=100, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="payment_refunds", verbose_name=_("requested by"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    completed_at = models.DateTimeField(_("finished"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["payment", "idempotency_key"], condition=~Q(idempotency_key=""), name="refund_idempotency"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]
        indexes = [
            models.Index(fields=["payment", "-created_at", "-id"], name="refund_payment_recent"),
            models.Index(fields=["-created_at", "-id"], name="refund_recent"),
            models.Index(fields=["status", "-created_at", "-id"], name="refund_status_recent"),
            models.Index(fields=["status", "next_attempt_at"], name="refund_to_send",
                         condition=Q(status__in=[R.REQUESTED, R.SUBMITTING])),
        ]

    def __str__(self):
        return f"{self.reference} · {self.amount} ({self.get_status_display()})"

    def transition(self, new, *, reason="", actor=None, **fields):
        return self.machine.move(self, new, reason=reason, actor=actor, **fields)


class ReconciliationMismatch(models.Model):
    """What we hold and what the provider says differ: recorded for an operator, never applied."""

    class Kind(models.TextChoices):
        AMOUNT = "amount", _("Amount")
        CURRENCY = "currency", _("Currency")
        STATUS = "status", _("Status")

    class Source(models.TextChoices):
        RECONCILIATION = "reconciliation", _("Reconciliation")
        NOTIFICATION = "notification", _("Notification")
        COLLECTION = "collection", _("Cash collection")

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="mismatches",
                                verbose_name=_("payment"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices)
    ours = models.CharField(_("our value"), max_length=100, blank=True)
    theirs = models.CharField(_("provider's value"), max_length=100, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("resolved by"))
    created_at = models.DateTimeField(_("found"), auto_now_add=True)

    class Meta:
        verbose_name = _("reconciliation mismatch")
        verbose_name_plural = _("reconciliation mismatches")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="mismatch_recent"),
            models.Index(fields=["payment", "kind"], name="mismatch_payment_kind"),
            models.Index(fields=["-created_at"], name="mismatch_open",
                         condition=Q(resolved_at__isnull=True)),
        ]

    def __str__(self):
        return f"{self.payment_id} {self.kind}: {self.ours} ≠ {self.theirs}"


class ApiIdempotencyKey(models.Model):
    """A merchant's `Idempotency-Key` on a write of the payments API, with the first answer given to
    it: a repeat of the same request gets that answer again, another request under the same key a
    409 (payments.idempotency). The unique index makes two racing requests with one key run once."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                              verbose_name=_("merchant"))
    key = models.CharField(_("idempotency key"), max_length=255)
    operation = models.CharField(_("operation"), max_length=100)
    fingerprint = models.CharField(max_length=64)
    # Null while the first request is still running.
    status_code = models.PositiveSmallIntegerField(_("answer status"), null=True, blank=True)
    body = models.JSONField(_("answer"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("API idempotency key")
        verbose_name_plural = _("API idempotency keys")
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="payment_api_idempotency_key")]
        indexes = [models.Index(fields=["created_at"], name="payment_api_key_created")]

    def __str__(self):
        return f"{self.owner_id} {self.key} {self.operation}"
