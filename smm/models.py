"""SMM panels: the domain state on top of the provider registry row.

`SMMProvider` points at one `integrations.ExternalIntegration` (URL, encrypted API key, owner,
status and call counters live there, never here). Orders and refills move along their
`TRANSITIONS` only, through the core's state machine (integrations.statemachine): every change of
status is a conditional update and leaves a history row.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from integrations.models import ExternalIntegration
from integrations.permissions import scoped
from integrations.statemachine import StateMachine


class SMMProviderQuerySet(models.QuerySet):
    def visible_to(self, user, perm="view"):
        """The providers `user` may `perm`: all with the model permission (staff), else their own
        (integrations.permissions)."""
        return scoped(self, user, "integration__owner", perm)

    def active(self):
        return self.filter(integration__status="active")


class SMMProvider(models.Model):
    integration = models.OneToOneField(
        ExternalIntegration, on_delete=models.CASCADE, related_name="smm_provider", verbose_name=_("provider row")
    )
    balance = models.DecimalField(_("balance"), max_digits=18, decimal_places=5, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=8, default="USD")
    balance_checked_at = models.DateTimeField(_("balance checked"), null=True, blank=True)
    low_balance_threshold = models.DecimalField(
        _("low-balance alert threshold"), max_digits=18, decimal_places=5, default=10
    )
    low_balance = models.BooleanField(_("balance is low"), default=False)
    services_count = models.PositiveIntegerField(_("supported services"), default=0)
    last_sync_at = models.DateTimeField(_("last service sync"), null=True, blank=True)
    last_sync_error = models.TextField(_("last sync error"), blank=True)
    # Statistics of the seed: the orders in the table plus the `archived_*` figures below, written
    # after every final state (smm.providers.refresh_stats).
    total_orders = models.PositiveIntegerField(_("orders"), default=0)
    completed_orders = models.PositiveIntegerField(_("completed orders"), default=0)
    failed_orders = models.PositiveIntegerField(_("failed orders"), default=0)
    total_spent = models.DecimalField(_("total spent"), max_digits=18, decimal_places=5, default=0)
    # The share of the statistics of orders the cleanup deleted: folded in by the same transaction
    # that deletes them, so the totals never shrink.
    archived_orders = models.PositiveIntegerField(_("orders deleted by the cleanup"), default=0, editable=False)
    archived_completed_orders = models.PositiveIntegerField(
        _("completed orders deleted by the cleanup"), default=0, editable=False
    )
    archived_failed_orders = models.PositiveIntegerField(
        _("failed orders deleted by the cleanup"), default=0, editable=False
    )
    archived_spent = models.DecimalField(
        _("spent on orders deleted by the cleanup"), max_digits=18, decimal_places=5, default=0, editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = SMMProviderQuerySet.as_manager()

    class Meta:
        verbose_name = _("SMM provider")
        verbose_name_plural = _("SMM providers")
        ordering = ["integration__priority", "integration__display_name"]

    def __str__(self):
        return self.integration.display_name

    @property
    def owner(self):
        return self.integration.owner

    @property
    def owner_id(self):
        return self.integration.owner_id

    @property
    def is_active(self):
        return self.integration.status == "active"

    @property
    def success_rate(self):
        """Percent of submitted orders the panel accepted and did not fail."""
        if not self.total_orders:
            return None
        return round(100 * (self.total_orders - self.failed_orders) / self.total_orders, 1)

    @property
    def average_response_time(self):
        return self.integration.average_response_time

    @property
    def adapter(self):
        return self.integration.adapter


class SMMService(models.Model):
    provider = models.ForeignKey(SMMProvider, on_delete=models.CASCADE, related_name="services")
    service_id = models.CharField(_("panel service id"), max_length=64)
    name = models.CharField(_("name"), max_length=500)
    type = models.CharField(_("type"), max_length=64, default="Default")
    category = models.CharField(_("category"), max_length=255, blank=True)
    rate = models.DecimalField(_("rate per 1000"), max_digits=18, decimal_places=6)
    min_quantity = models.PositiveBigIntegerField(_("minimum"), default=1)
    max_quantity = models.PositiveBigIntegerField(_("maximum"), default=1)
    refill = models.BooleanField(_("refill"), default=False)
    cancel = models.BooleanField(_("cancel"), default=False)
    dripfeed = models.BooleanField(_("drip-feed"), default=False)
    description = models.TextField(_("description"), blank=True)
    is_active = models.BooleanField(_("active"), default=True, help_text=_("Off when the panel stopped listing it."))
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SMM service")
        verbose_name_plural = _("SMM services")
        ordering = ["provider", "category", "name"]
        constraints = [models.UniqueConstraint(fields=["provider", "service_id"], name="smm_service_unique")]
        indexes = [models.Index(fields=["provider", "is_active", "category"], name="smm_service_catalogue")]

    def __str__(self):
        return f"{self.service_id} · {self.name}"


class OrderStatus(models.TextChoices):
    CREATED = "created", _("Queued")
    SUBMITTING = "submitting", _("Submitting")
    PENDING = "pending", _("Pending")
    IN_PROGRESS = "in_progress", _("In progress")
    PROCESSING = "processing", _("Processing")
    COMPLETED = "completed", _("Completed")
    PARTIAL = "partial", _("Partial")
    CANCELED = "canceled", _("Canceled")
    FAILED = "failed", _("Failed")
    UNKNOWN = "unknown", _("Under review")


S = OrderStatus
PANEL_STATES = {S.PENDING, S.IN_PROGRESS, S.PROCESSING, S.COMPLETED, S.PARTIAL, S.CANCELED}
OPEN_STATES = (S.PENDING, S.IN_PROGRESS, S.PROCESSING)
FINAL_STATES = (S.COMPLETED, S.PARTIAL, S.CANCELED, S.FAILED)


class SMMOrder(models.Model):
    Status = OrderStatus
    # Allowed transitions: anything else is refused (a late or duplicate answer changes nothing).
    # `created` is the queue of orders to send; `submitting` -> `created` is a send that certainly
    # did not leave us (integrations.writes), tried again later.
    TRANSITIONS = {
        S.CREATED: {S.SUBMITTING, S.FAILED},
        S.SUBMITTING: PANEL_STATES | {S.CREATED, S.FAILED, S.UNKNOWN},
        S.UNKNOWN: PANEL_STATES | {S.FAILED},
        S.PENDING: PANEL_STATES - {S.PENDING},
        S.IN_PROGRESS: PANEL_STATES - {S.IN_PROGRESS},
        S.PROCESSING: PANEL_STATES - {S.PROCESSING},
        S.COMPLETED: set(),
        S.PARTIAL: set(),
        S.CANCELED: set(),
        S.FAILED: set(),
    }
    machine = StateMachine(TRANSITIONS)

    reference = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="smm_orders", verbose_name=_("owner")
    )
    provider = models.ForeignKey(
        SMMProvider, on_delete=models.PROTECT, related_name="orders", verbose_name=_("provider")
    )
    service = models.ForeignKey(SMMService, on_delete=models.PROTECT, related_name="orders", verbose_name=_("service"))
    external_order_id = models.CharField(_("panel order id"), max_length=64, blank=True, db_index=True)
    link = models.CharField(_("link"), max_length=1000, blank=True)
    quantity = models.PositiveBigIntegerField(_("quantity"), null=True, blank=True)
    runs = models.PositiveIntegerField(_("drip-feed runs"), null=True, blank=True)
    interval = models.PositiveIntegerField(_("drip-feed interval (minutes)"), null=True, blank=True)
    extra = models.JSONField(
        _("type-specific fields"), default=dict, blank=True, help_text=_("Comments, usernames, answer number…")
    )
    status = models.CharField(_("status"), max_length=20, choices=OrderStatus.choices, default=S.CREATED)
    charge = models.DecimalField(_("charge"), max_digits=18, decimal_places=5, null=True, blank=True)
    start_count = models.BigIntegerField(_("start count"), null=True, blank=True)
    remains = models.BigIntegerField(_("remains"), null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=8, blank=True)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(
        _("attempts"), default=0, help_text=_("Sends that certainly did not reach the panel.")
    )
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    cancel_requested_at = models.DateTimeField(_("cancel requested"), null=True, blank=True)
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    completed_at = models.DateTimeField(_("finished"), null=True, blank=True)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SMM order")
        verbose_name_plural = _("SMM orders")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"], condition=~Q(idempotency_key=""), name="smm_order_idempotency"
            )
        ]
        # Each list's ordering and filter has its index, so that a page is a range scan at any size
        # (integrations.paging): the merchant's list, by status, by provider; staff's and the admin's.
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="smm_order_owner_recent"),
            models.Index(fields=["owner", "status", "-created_at", "-id"], name="smm_order_owner_status"),
            models.Index(fields=["provider", "-created_at", "-id"], name="smm_order_provider_recent"),
            models.Index(fields=["-created_at", "-id"], name="smm_order_recent"),
            models.Index(fields=["status", "-created_at", "-id"], name="smm_order_status_recent"),
            models.Index(
                fields=["provider", "status"], name="smm_order_open", condition=Q(status__in=OPEN_STATES)
            ),
            # The send queue and the stale-submission sweep (integrations.writes).
            models.Index(
                fields=["status", "next_attempt_at"], name="smm_order_to_send",
                condition=Q(status__in=[S.CREATED, S.SUBMITTING]),
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.service.name if self.service_id else ''} ({self.get_status_display()})"

    @property
    def is_open(self):
        return self.status in OPEN_STATES

    def can_move_to(self, new):
        return self.machine.can_move(self.status, new)

    def transition(self, new, *, reason="", actor=None, **fields):
        """Move to `new` only if the table allows it and the row is still in the status we read
        (compare-and-set), with its history row."""
        return self.machine.move(self, new, reason=reason, actor=actor, **fields)


class SMMRefill(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        PENDING = "pending", _("Pending")
        IN_PROGRESS = "in_progress", _("In progress")
        COMPLETED = "completed", _("Completed")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")
        UNKNOWN = "unknown", _("Under review")

    OPEN = ("pending", "in_progress")
    TRANSITIONS = {
        Status.REQUESTED: {Status.PENDING, Status.IN_PROGRESS, Status.COMPLETED, Status.REJECTED, Status.FAILED,
                           Status.UNKNOWN},
        Status.PENDING: {Status.IN_PROGRESS, Status.COMPLETED, Status.REJECTED, Status.FAILED},
        Status.IN_PROGRESS: {Status.COMPLETED, Status.REJECTED, Status.FAILED},
        Status.UNKNOWN: {Status.PENDING, Status.IN_PROGRESS, Status.COMPLETED, Status.REJECTED, Status.FAILED},
        Status.COMPLETED: set(),
        Status.REJECTED: set(),
        Status.FAILED: set(),
    }
    machine = StateMachine(TRANSITIONS)

    order = models.ForeignKey(SMMOrder, on_delete=models.CASCADE, related_name="refills", verbose_name=_("order"))
    external_refill_id = models.CharField(_("panel refill id"), max_length=64, blank=True, db_index=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.REQUESTED)
    error = models.TextField(_("error"), blank=True)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SMM refill")
        verbose_name_plural = _("SMM refills")
        ordering = ["-created_at"]

    def __str__(self):
        return f"refill {self.external_refill_id or '-'} of #{self.order_id}"


# --- the simulator's own state (smm/sandbox.py); never used outside the sandbox ----------------


class SandboxPanel(models.Model):
    code = models.CharField(max_length=50, unique=True)
    api_key = models.CharField(max_length=200)
    balance = models.DecimalField(max_digits=18, decimal_places=5, default=1000)
    catalogue_size = models.PositiveIntegerField(default=0, help_text="0: the panel's default size")
    step_seconds = models.FloatField(default=20.0, help_text="How long each order phase lasts.")

    class Meta:
        verbose_name = "sandbox panel"

    def __str__(self):
        return self.code


class SandboxPanelOrder(models.Model):
    panel = models.ForeignKey(SandboxPanel, on_delete=models.CASCADE, related_name="orders")
    service = models.CharField(max_length=64)
    link = models.CharField(max_length=1000, blank=True)
    quantity = models.PositiveBigIntegerField(default=0)
    params = models.JSONField(default=dict)
    charge = models.DecimalField(max_digits=18, decimal_places=5)
    start_count = models.BigIntegerField(default=0)
    canceled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "sandbox panel order"

    def __str__(self):
        return f"{self.panel_id}:{self.pk}"


class SandboxPanelRefill(models.Model):
    order = models.ForeignKey(SandboxPanelOrder, on_delete=models.CASCADE, related_name="refills")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "sandbox panel refill"

    def __str__(self):
        return f"refill {self.pk}"
