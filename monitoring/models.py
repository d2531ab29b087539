"""Monitoring state, recorded as rows that the dashboard, the API and the alert delivery read.

The flow follows healthchecks' `sendalerts`: a health round writes `HealthCheck` rows and, when a
provider's health changes, a `StatusChange` row (first). Delivery claims unprocessed changes with a
compare-and-set update and only then opens/closes incidents, switches fallbacks, notifies merchants
and sends alerts, each delivery recorded once per (change, channel).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from integrations.models import ExternalIntegration


class CheckStatus(models.TextChoices):
    HEALTHY = "healthy", _("Healthy")
    DEGRADED = "degraded", _("Degraded")
    UNHEALTHY = "unhealthy", _("Unhealthy")
    ERROR = "error", _("Error")


class Severity(models.TextChoices):
    INFO = "info", _("Information")
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    CRITICAL = "critical", _("Critical")


SEVERITY_ORDER = {s: i for i, s in enumerate(Severity.values)}


class HealthCheck(models.Model):
    """The result of one probe of one provider."""

    integration = models.ForeignKey(
        ExternalIntegration, on_delete=models.CASCADE, related_name="health_checks", verbose_name=_("provider")
    )
    status = models.CharField(_("status"), max_length=20, choices=CheckStatus.choices)
    response_time = models.FloatField(_("response time (ms)"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    checked_at = models.DateTimeField(_("checked at"), default=timezone.now)

    class Meta:
        verbose_name = _("health check")
        verbose_name_plural = _("health checks")
        ordering = ["-checked_at"]
        indexes = [
            models.Index(fields=["integration", "-checked_at"], name="idx_healthcheck_provider"),
            models.Index(fields=["checked_at"], name="idx_healthcheck_checked"),
        ]

    def __str__(self):
        return f"{self.integration_id} {self.status} @ {self.checked_at:%Y-%m-%d %H:%M:%S}"


class StatusChange(models.Model):
    """A provider's health changed. Written by the round; processed (alerts, incidents) afterwards."""

    integration = models.ForeignKey(
        ExternalIntegration, on_delete=models.CASCADE, related_name="status_changes", verbose_name=_("provider")
    )
    old_status = models.CharField(_("from"), max_length=20, blank=True)
    new_status = models.CharField(_("to"), max_length=20)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    alerts_suppressed = models.BooleanField(
        _("alerts suppressed"), default=False, help_text=_("Within the cool-down after a previous alert.")
    )

    class Meta:
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["integration", "-created_at"], name="idx_statuschange_provider"),
            # healthchecks' trick: the "not yet processed" query stays fast however long the history.
            models.Index(fields=["created_at"], name="idx_statuschange_pending", condition=Q(processed_at=None)),
        ]

    def __str__(self):
        return f"{self.integration}: {self.old_status or '—'} → {self.new_status}"

    @property
    def is_down(self):
        return self.new_status == CheckStatus.UNHEALTHY

    @staticmethod
    def _label(value):
        return CheckStatus(value).label if value in CheckStatus.values else _("Not checked yet")

    @property
    def old_label(self):
        return self._label(self.old_status)

    @property
    def new_label(self):
        return self._label(self.new_status)


class Incident(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        ACKNOWLEDGED = "acknowledged", _("Acknowledged")
        RESOLVED = "resolved", _("Resolved")

    integration = models.ForeignKey(
        ExternalIntegration, on_delete=models.CASCADE, related_name="incidents", verbose_name=_("service")
    )
    severity = models.CharField(_("severity"), max_length=20, choices=Severity.choices)
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.OPEN)
    description = models.TextField(_("description"), blank=True)
    notes = models.TextField(_("operator notes"), blank=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration"], condition=Q(resolved_at=None), name="one_open_incident_per_provider"
            )
        ]
        indexes = [models.Index(fields=["-started_at", "-id"], name="idx_incident_recent")]  # the list's order

    def __str__(self):
        return f"{self.integration} — {self.get_severity_display()} ({self.get_state_display()})"

    @property
    def is_open(self):
        return self.resolved_at is None

    @property
    def duration(self):
        return (self.resolved_at or timezone.now()) - self.started_at

    def acknowledge(self, user):
        """Compare-and-set: only an open, unacknowledged incident is acknowledged (once)."""
        now = timezone.now()
        done = (
            type(self)
            .objects.filter(pk=self.pk, state=self.State.OPEN)
            .update(state=self.State.ACKNOWLEDGED, acknowledged_by=user, acknowledged_at=now)
        )
        if done:
            self.state, self.acknowledged_by, self.acknowledged_at = self.State.ACKNOWLEDGED, user, now
        return bool(done)


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    LOG = "log", _("Database log")
    TICKET = "ticket", _("Support ticket")


class AlertRoute(models.Model):
    """Which channel receives which severities (the lowest severity it receives). Editable in the admin."""

    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices, unique=True)
    min_severity = models.CharField(
        _("lowest severity"), max_length=20, choices=Severity.choices, default=Severity.MEDIUM
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    recipients = models.TextField(
        _("recipients"),
        blank=True,
        help_text=_("E-mail addresses or phone numbers, comma separated. Empty: OPERATIONS_EMAILS for e-mail."),
    )

    class Meta:
        verbose_name = _("alert route")
        verbose_name_plural = _("alert routes")
        ordering = ["channel"]

    def __str__(self):
        return f"{self.get_channel_display()} ≥ {self.get_min_severity_display()}"

    @property
    def recipient_list(self):
        return [r.strip() for r in self.recipients.replace("\n", ",").split(",") if r.strip()]

    def accepts(self, severity):
        return self.enabled and SEVERITY_ORDER[severity] >= SEVERITY_ORDER[self.min_severity]


class AlertDelivery(models.Model):
    """One alert through one channel for one status change: the database log of every alert."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("Sent")
        LOGGED = "logged", _("Logged")
        FAILED = "failed", _("Failed")
        NOT_CONFIGURED = "not_configured", _("Channel not configured")

    change = models.ForeignKey(
        StatusChange, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("status change")
    )
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts", verbose_name=_("incident")
    )
    channel = models.CharField(_("channel"), max_length=20, choices=Channel.choices)
    severity = models.CharField(_("severity"), max_length=20, choices=Severity.choices)
    subject = models.CharField(_("subject"), max_length=300)
    message = models.TextField(_("message"), blank=True)
    recipients = models.TextField(_("recipients"), blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=1)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("alert")
        verbose_name_plural = _("alerts")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["change", "channel"], name="one_alert_per_change_channel")]

    def __str__(self):
        return f"{self.get_channel_display()}: {self.subject} ({self.get_outcome_display()})"


class SupportTicket(models.Model):
    class State(models.TextChoices):
        OPEN = "open", _("Open")
        IN_PROGRESS = "in_progress", _("In progress")
        CLOSED = "closed", _("Closed")

    incident = models.OneToOneField(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="ticket", verbose_name=_("incident")
    )
    subject = models.CharField(_("subject"), max_length=300)
    body = models.TextField(_("body"), blank=True)
    priority = models.CharField(_("priority"), max_length=20, choices=Severity.choices)
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("assignee"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("support ticket")
        verbose_name_plural = _("support tickets")
        ordering = ["-created_at"]

    def __str__(self):
        return f"#{self.pk} {self.subject}"


class FallbackActivation(models.Model):
    """A provider is down: domain services skip it and use its alternatives until it is deactivated."""

    integration = models.ForeignKey(
        ExternalIntegration, on_delete=models.CASCADE, related_name="fallback_activations", verbose_name=_("provider")
    )
    code = models.CharField(_("provider code"), max_length=50, db_index=True)
    alternatives = models.JSONField(_("alternatives"), default=list, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    activated_at = models.DateTimeField(_("activated"), default=timezone.now)
    deactivated_at = models.DateTimeField(_("deactivated"), null=True, blank=True)

    class Meta:
        verbose_name = _("fallback activation")
        verbose_name_plural = _("fallback activations")
        ordering = ["-activated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["integration"], condition=Q(deactivated_at=None), name="one_active_fallback_per_provider"
            )
        ]

    def __str__(self):
        return f"{self.code} → {', '.join(self.alternatives) or '—'}"

    @property
    def is_active(self):
        return self.deactivated_at is None


class Notification(models.Model):
    """A merchant whose open orders use a provider that went down is told once per incident."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="monitoring_notifications",
        verbose_name=_("merchant"),
    )
    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="notifications", verbose_name=_("incident")
    )
    integration = models.ForeignKey(
        ExternalIntegration, on_delete=models.CASCADE, related_name="+", verbose_name=_("provider")
    )
    title = models.CharField(_("title"), max_length=300)
    body = models.TextField(_("body"), blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    emailed_at = models.DateTimeField(_("e-mailed"), null=True, blank=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("merchant notification")
        verbose_name_plural = _("merchant notifications")
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "incident"], name="notify_merchant_once_per_incident")]
        indexes = [models.Index(fields=["user", "-created_at", "-id"], name="idx_notification_user_recent")]

    def __str__(self):
        return self.title
