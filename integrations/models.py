import uuid

from django.conf import settings
from django.db import connections, models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .crypto import EncryptedJSONField, EncryptedTextField
from .permissions import scoped
from .validators import validate_provider_url


class Kind(models.TextChoices):
    PAYMENT = "payment", _("Payment")
    SHIPPING = "shipping", _("Shipping")
    TELECOM = "telecom", _("Telecom (SMS)")
    EMAIL = "email", _("E-mail")
    MAPS = "maps", _("Maps")
    ADDRESS = "address", _("Address verification")
    IDENTITY = "identity", _("Identity verification")
    ANALYTICS = "analytics", _("Analytics")
    STORAGE = "storage", _("Storage")
    SMM = "smm", _("SMM panel")


class Status(models.TextChoices):
    ACTIVE = "active", _("Active")
    INACTIVE = "inactive", _("Inactive")
    ERROR = "error", _("Error")
    MAINTENANCE = "maintenance", _("Maintenance")


class Health(models.TextChoices):
    HEALTHY = "healthy", _("Healthy")
    DEGRADED = "degraded", _("Degraded")
    UNHEALTHY = "unhealthy", _("Unhealthy")


class ExternalIntegrationQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=Status.ACTIVE)

    def platform(self):
        return self.filter(owner__isnull=True)

    def visible_to(self, user, perm="view"):
        """The rows `user` may `perm`: all with the model permission (staff), else their own
        (integrations.permissions)."""
        return scoped(self, user, "owner", perm)


class ExternalIntegration(models.Model):
    """The one row of every provider connection (the seed's `external_integrations`)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    code = models.CharField(_("adapter"), max_length=50, help_text=_("Which adapter speaks to this provider."))
    name = models.SlugField(_("name"), max_length=100, help_text=_("Unique per owner."))
    display_name = models.CharField(_("display name"), max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="integrations",
        help_text=_("Empty for the platform's own connections."),
    )
    base_url = models.CharField(_("base URL"), max_length=500, validators=[validate_provider_url])
    configuration = models.JSONField(_("configuration"), default=dict, blank=True)
    credentials = EncryptedJSONField(_("credentials"), blank=True)
    priority = models.PositiveSmallIntegerField(_("priority"), default=1, help_text=_("Lower is tried first."))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.ACTIVE)
    health_status = models.CharField(_("health"), max_length=20, choices=Health.choices, blank=True)
    last_health_check = models.DateTimeField(_("last health check"), null=True, blank=True)
    total_requests = models.PositiveBigIntegerField(_("total requests"), default=0)
    successful_requests = models.PositiveBigIntegerField(_("successful requests"), default=0)
    failed_requests = models.PositiveBigIntegerField(_("failed requests"), default=0)
    average_response_time = models.DecimalField(
        _("average response time (ms)"), max_digits=10, decimal_places=2, default=0
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )

    objects = ExternalIntegrationQuerySet.as_manager()

    class Meta:
        db_table = "external_integrations"
        verbose_name = _("provider")
        verbose_name_plural = _("providers")
        ordering = ["kind", "priority", "display_name"]
        # Stored, like Django's own permission names, untranslated (see integrations.permissions).
        permissions = [
            ("change_provider_url_keep_key", "Can change a provider's URL and keep its stored credentials"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], condition=Q(owner__isnull=False), name="integration_name_unique_per_owner"
            ),
            models.UniqueConstraint(
                fields=["name"], condition=Q(owner__isnull=True), name="integration_name_unique_platform"
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "status"], name="idx_integrations_type"),
            models.Index(fields=["status", "last_health_check"], name="idx_integrations_status"),
            models.Index(fields=["health_status", "-updated_at"], name="idx_integrations_health"),
        ]

    def __str__(self):
        return self.display_name

    def clean(self):
        from django.core.exceptions import ValidationError

        from .adapters import UnknownAdapter, adapter_class

        try:
            meta = adapter_class(self.code).meta
        except UnknownAdapter:
            raise ValidationError({"code": _("No adapter is registered under this code.")}) from None
        scheme = (self.base_url or "").split(":", 1)[0].lower()
        if self.base_url and meta.schemes and scheme not in meta.schemes:
            raise ValidationError({"base_url": _("This adapter's URL must start with %s.")
                                   % " / ".join(f"{s}://" for s in meta.schemes)})
        if meta.kind and self.kind and meta.kind != self.kind:
            raise ValidationError({"kind": _("This adapter is for providers of kind “%s”.") % meta.kind})
        missing = [f.name for f in meta.credentials if f.required and not (self.credentials or {}).get(f.name)]
        # A row that is not active is never called: it may wait for its credentials (a merchant's default
        # panels are created before the merchant has their keys).
        if missing and self.status == Status.ACTIVE:
            raise ValidationError({"credentials": _("Missing credentials: %s") % ", ".join(missing)})

    @property
    def adapter(self):
        from .adapters import adapter_for

        return adapter_for(self)

    @property
    def secret_values(self):
        """Every secret credential value of this row, for redaction by value."""
        from .adapters import UnknownAdapter, adapter_class

        try:
            names = adapter_class(self.code).meta.secret_fields
        except UnknownAdapter:
            names = ()
        creds = self.credentials or {}
        return tuple(str(v) for k, v in creds.items() if (k in names or "secret" in k or "key" in k) and v)

    @property
    def is_usable(self):
        return self.status == Status.ACTIVE and self.health_status != Health.UNHEALTHY

    def record_calls(self, calls, successful, total_duration_ms):
        """Count `calls` calls (`successful` of them successful, taking `total_duration_ms` together)
        in one atomic UPDATE: concurrent workers never lose an increment, and the average response
        time stays the mean over every call."""
        total = F("total_requests")
        type(self).objects.filter(pk=self.pk).update(
            total_requests=total + calls,
            successful_requests=F("successful_requests") + successful,
            failed_requests=F("failed_requests") + (calls - successful),
            average_response_time=(F("average_response_time") * total + total_duration_ms) / (total + calls),
        )

    def set_status(self, status):
        type(self).objects.filter(pk=self.pk).update(status=status, updated_at=timezone.now())
        self.status = status

    @property
    def success_rate(self):
        return round(100 * self.successful_requests / self.total_requests, 1) if self.total_requests else None


class Transport(models.TextChoices):
    HTTP = "http", "HTTP"
    SOAP = "soap", "SOAP"
    FTP = "ftp", "FTP"
    WEBSOCKET = "ws", "WebSocket"
    SMTP = "smtp", "SMTP"
    S3 = "s3", "S3"


class IntegrationLogManager(models.Manager):
    def insert_many(self, entries):
        """INSERT the rows (their ids are already set) with one `executemany`; returns how many.

        Not `bulk_create`: on PostgreSQL it sends each column as one array (UNNEST), and psycopg
        escapes every quote inside an array's texts in Python; for rows holding providers' JSON
        bodies that costs milliseconds a row, ten times the insert itself. `executemany` sends each
        row's values apart (pipelined by psycopg: still one round trip)."""
        if not entries:
            return 0
        connection = connections[self.db]
        fields = self.model._meta.concrete_fields
        quote = connection.ops.quote_name
        sql = (f"INSERT INTO {quote(self.model._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
               f"VALUES ({', '.join(['%s'] * len(fields))})")
        rows = [[f.get_db_prep_save(f.pre_save(entry, True), connection) for f in fields] for entry in entries]
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        return len(rows)


class IntegrationLog(models.Model):
    """One outbound call (the seed's `integration_logs`). Partitioned by month on PostgreSQL."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", _("Success")
        ERROR = "error", _("Error")
        TIMEOUT = "timeout", _("Timeout")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    integration = models.ForeignKey(
        ExternalIntegration, on_delete=models.CASCADE, related_name="logs", verbose_name=_("provider")
    )
    request_id = models.CharField(_("request id"), max_length=255, blank=True)
    transport = models.CharField(_("transport"), max_length=10, choices=Transport.choices, default=Transport.HTTP)
    operation = models.CharField(_("operation"), max_length=100, blank=True, help_text=_("What the call does."))
    endpoint = models.CharField(_("endpoint"), max_length=500)
    method = models.CharField(_("method"), max_length=10)
    request_headers = models.JSONField(_("request headers"), null=True, blank=True)
    request_body = models.TextField(_("request body"), blank=True)
    response_status = models.IntegerField(_("response status"), null=True, blank=True)
    response_headers = models.JSONField(_("response headers"), null=True, blank=True)
    response_body = models.TextField(_("response body"), blank=True)
    request_duration = models.DecimalField(_("duration (ms)"), max_digits=10, decimal_places=3, null=True)
    started_at = models.DateTimeField(_("started"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    status = models.CharField(_("outcome"), max_length=20, choices=Outcome.choices, default=Outcome.SUCCESS)
    error_message = models.TextField(_("error"), blank=True)
    error_code = models.CharField(_("error code"), max_length=50, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.TextField(_("user agent"), blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = IntegrationLogManager()

    class Meta:
        db_table = "integration_logs"
        verbose_name = _("integration log")
        verbose_name_plural = _("integration logs")
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["integration", "-started_at"], name="idx_integration_logs_integr"),
            models.Index(fields=["status", "-started_at"], name="idx_integration_logs_status"),
            # The lists' order (the API's and the admin's) across providers.
            models.Index(fields=["-started_at", "-id"], name="idx_integration_logs_recent"),
            models.Index(fields=["request_id"], name="idx_integration_logs_req", condition=~Q(request_id="")),
        ]

    def __str__(self):
        return f"{self.method} {self.endpoint} → {self.response_status or self.status}"


class WebhookEvent(models.Model):
    """A provider's call to us, stored before anything else happens (replayable, auditable).

    The body as received is kept only encrypted (`raw_body`, what handlers read through `payload`);
    `body` is a redacted copy, the only one shown. See integrations.webhooks for what is stored of a
    refused call."""

    class State(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSING = "processing", _("Processing")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")
        REJECTED = "rejected", _("Rejected")

    integration = models.ForeignKey(
        ExternalIntegration,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="webhook_events",
        verbose_name=_("provider"),
    )
    kind = models.CharField(_("kind"), max_length=20)
    code = models.CharField(_("adapter"), max_length=50)
    event_id = models.CharField(_("event id"), max_length=200, null=True, blank=True)
    state = models.CharField(_("state"), max_length=20, choices=State.choices, default=State.RECEIVED)
    headers = models.JSONField(_("headers"), default=dict)
    body = models.TextField(_("body (redacted)"), blank=True)
    raw_body = EncryptedTextField(_("body as received (encrypted)"), blank=True, default="")
    content_type = models.CharField(_("content type"), max_length=100, blank=True, default="")
    # A keyed hash of the raw body while this row guards its provider against a replay of the same
    # body (the tolerance window); a later copy that arrives after the window clears it.
    body_hash = models.CharField(_("body hash"), max_length=64, null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "event_id"], name="webhook_event_unique_per_provider"),
            models.UniqueConstraint(
                fields=["integration", "body_hash"],
                condition=Q(body_hash__isnull=False),
                name="webhook_body_unique_in_window",
            ),
        ]
        indexes = [
            models.Index(fields=["state"], name="webhook_pending", condition=Q(state__in=["received", "failed"])),
            models.Index(fields=["-received_at", "-id"], name="webhook_recent"),  # the admin's list
        ]

    def __str__(self):
        return f"{self.code}:{self.event_id or '-'} ({self.state})"

    @property
    def payload(self):
        import json
        from urllib.parse import parse_qsl

        from .redaction import body_kind

        text = self.raw_body or ""
        if body_kind(self.content_type) != "form":
            try:
                return json.loads(text)
            except ValueError:
                pass
        return dict(parse_qsl(text, keep_blank_values=True))

    def claim(self):
        """Compare-and-set: the worker that moves the row to PROCESSING owns it; a duplicate does nothing."""
        claimed = (
            type(self)
            .objects.filter(pk=self.pk, state__in=[self.State.RECEIVED, self.State.FAILED])
            .update(state=self.State.PROCESSING, attempts=F("attempts") + 1)
        )
        return claimed == 1

    def finish(self, error=""):
        state = self.State.FAILED if error else self.State.PROCESSED
        type(self).objects.filter(pk=self.pk).update(state=state, error=error, processed_at=timezone.now())
        self.state, self.error = state, error


class AppendOnlyError(Exception):
    """A saved history row was about to be changed or deleted."""


class StateTransitionQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(_("State history is append-only: rows cannot be changed."))

    def delete(self):
        raise AppendOnlyError(_("State history is append-only: rows cannot be deleted."))

    update.queryset_only = True
    delete.queryset_only = True

    def of(self, obj):
        from django.contrib.contenttypes.models import ContentType

        return self.filter(content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk))


class StateTransitionManager(models.Manager.from_queryset(StateTransitionQuerySet)):
    def record(self, instance, field, from_state, to_state, *, reason="", actor=None):
        """One history row for one move of `instance`'s `field`."""
        return self.record_many(type(instance), [(instance.pk, from_state, to_state)], field=field,
                                reason=reason, actor=actor)

    def record_many(self, model, moves, *, field="status", reason="", actor=None):
        """History rows for many moves of rows of `model` at once; returns how many. `moves` holds
        `(pk, from_state, to_state)` tuples, or `(pk, from_state, to_state, reason)`.

        One `executemany` INSERT of plain values, not `bulk_create`: a poll records thousands of
        moves, and building and preparing a model instance per row costs ten times the insert."""
        from django.contrib.contenttypes.models import ContentType

        if not moves:
            return 0
        connection = connections[self.db]
        content_type_id = ContentType.objects.db_manager(self.db).get_for_model(model).pk
        opts = self.model._meta
        created_at = opts.get_field("created_at").get_db_prep_save(timezone.now(), connection)
        actor_id = getattr(actor, "pk", actor)
        reason = str(reason or "")
        rows = [
            (content_type_id, str(pk), field, "" if old is None else str(old), str(new),
             str(rest[0] or "") if rest else reason, actor_id, created_at)
            for pk, old, new, *rest in moves
        ]
        names = ("content_type", "object_id", "field", "from_state", "to_state", "reason", "actor", "created_at")
        quote = connection.ops.quote_name
        columns = ", ".join(quote(opts.get_field(name).column) for name in names)
        sql = f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(names))})"
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)
        return len(rows)


class StateTransition(models.Model):
    """One move of one row's state field (append-only): who, when, from where to where, why."""

    content_type = models.ForeignKey(
        "contenttypes.ContentType", on_delete=models.PROTECT, related_name="+", verbose_name=_("object type")
    )
    object_id = models.CharField(_("object id"), max_length=64)
    field = models.CharField(_("field"), max_length=64, default="status")
    from_state = models.CharField(_("from"), max_length=32, blank=True)
    to_state = models.CharField(_("to"), max_length=32)
    reason = models.TextField(_("reason"), blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("at"), default=timezone.now, editable=False)

    objects = StateTransitionManager()

    class Meta:
        verbose_name = _("state transition")
        verbose_name_plural = _("state transitions")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["content_type", "object_id", "created_at"], name="idx_state_transition_object"),
            models.Index(fields=["-created_at", "-id"], name="idx_state_transition_recent"),  # the admin's list
        ]

    def __str__(self):
        return f"{self.content_type_id}:{self.object_id} {self.field} {self.from_state or '∅'} → {self.to_state}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(_("State history is append-only: rows cannot be changed."))
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(_("State history is append-only: rows cannot be deleted."))


class Fallback(models.Model):
    """The seed's fallback table: when `code` is down, `alternative` is offered instead (in order).
    Read through `integrations.selection`; installed by a migration, edited by operators."""

    code = models.CharField(_("provider"), max_length=50, help_text=_("Adapter code of the provider, e.g. moamalat."))
    alternative = models.CharField(
        _("alternative"), max_length=50, help_text=_("Adapter code or method offered instead, e.g. cash_on_delivery.")
    )
    position = models.PositiveSmallIntegerField(_("order"), default=1)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        db_table = "monitoring_fallback"  # created by the monitoring app, where this table began
        verbose_name = _("fallback")
        verbose_name_plural = _("fallbacks")
        ordering = ["code", "position", "alternative"]
        constraints = [models.UniqueConstraint(fields=["code", "alternative"], name="fallback_unique_pair")]

    def __str__(self):
        return f"{self.code} → {self.alternative}"
