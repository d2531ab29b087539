"""The SMM API's shapes. Field names follow the seed's JavaScript API (camelCase); snake_case is
accepted on input too. The API key is write-only: no response ever contains it."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from integrations.api.naming import camel, camelize_keys
from integrations.models import Health, Status
from integrations.validators import validate_http_provider_url

from .models import OrderStatus, SMMOrder, SMMProvider, SMMRefill, SMMService
from .providers import SMM_CODES

STATUS_LABELS = {
    "created": "Queued",
    "submitting": "Submitting",
    "pending": "Pending",
    "in_progress": "In progress",
    "processing": "Processing",
    "completed": "Completed",
    "partial": "Partial",
    "canceled": "Canceled",
    "failed": "Failed",
    "unknown": "Under review",
}
# What `status` can answer (for the schema: SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] names it).
STATUS_LABEL_VALUES = [STATUS_LABELS.get(code, code) for code in OrderStatus.values]
LABEL_TO_STATUS = {label.lower(): code for code, label in STATUS_LABELS.items()} | {
    code: code for code in STATUS_LABELS
} | {"cancelled": "canceled", "inprogress": "in_progress", "in progress": "in_progress"}

# service-layer field name -> API field name, for error messages
API_FIELD = {"provider": "providerId", "service": "serviceId", "comments": "customComments",
             "answer_number": "answerNumber", "old_posts": "oldPosts", "external_order_id": "externalOrderId"}


def api_errors(message_dict):
    return {API_FIELD.get(k, camel(k)) if k != "__all__" else "nonFieldErrors": v for k, v in message_dict.items()}


@extend_schema_field({"type": "array", "items": {"type": "string"}})
class LinesField(serializers.Field):
    """A list of strings, or one string with one item per line."""

    default_error_messages = {"invalid": _("Send a list of strings or one string with one item per line.")}

    def to_internal_value(self, data):
        if isinstance(data, str):
            items = data.replace("\r\n", "\n").split("\n")
        elif isinstance(data, list | tuple) and all(isinstance(i, str | int) for i in data):
            items = [str(i) for i in data]
        else:
            self.fail("invalid")
        items = [i.strip() for i in items if i.strip()]
        if not items and not self.allow_null:
            raise serializers.ValidationError(_("This field may not be empty."))
        return items

    def to_representation(self, value):
        return value


# --- providers ----------------------------------------------------------------------------------
class ProviderInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    displayName = serializers.CharField(max_length=200, required=False, allow_blank=True)
    apiUrl = serializers.CharField(max_length=500, validators=[validate_http_provider_url], help_text=_(
        "The panel's API address. Changing it on an existing provider needs apiKey in the same request."))
    apiKey = serializers.CharField(max_length=500, write_only=True)
    priority = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    code = serializers.ChoiceField(choices=SMM_CODES, required=False,
                                   help_text=_("Adapter; guessed from the name when left out."))
    isActive = serializers.BooleanField(required=False)
    lowBalanceThreshold = serializers.DecimalField(
        max_digits=18, decimal_places=5, min_value=0, required=False
    )

    def to_internal_value(self, data):
        return super().to_internal_value(camelize_keys(data))


class ProviderStatsSerializer(serializers.Serializer):
    """The provider's figures (its `stats`), recomputed from its orders after each poll."""

    successRate = serializers.FloatField(allow_null=True, help_text=_(
        "Percent of submitted orders the panel accepted and did not fail; null before the first order."))
    averageResponseTime = serializers.DecimalField(max_digits=10, decimal_places=2)
    totalSpent = serializers.DecimalField(max_digits=18, decimal_places=5)
    completedOrders = serializers.IntegerField()
    totalOrders = serializers.IntegerField()
    failedOrders = serializers.IntegerField()
    totalRequests = serializers.IntegerField()


class ProviderSerializer(serializers.ModelSerializer):
    # The nulls below are real answers: a provider not yet synced or asked for its balance.
    name = serializers.CharField(source="integration.name")
    displayName = serializers.CharField(source="integration.display_name")
    code = serializers.CharField(source="integration.code")
    apiUrl = serializers.CharField(source="integration.base_url")
    hasApiKey = serializers.SerializerMethodField()
    priority = serializers.IntegerField(source="integration.priority")
    isActive = serializers.BooleanField(source="is_active")
    status = serializers.ChoiceField(source="integration.status", choices=Status.choices)
    # Blank until the provider's first health check.
    health = serializers.ChoiceField(source="integration.health_status", choices=Health.choices, allow_blank=True)
    lowBalance = serializers.BooleanField(source="low_balance")
    lowBalanceThreshold = serializers.DecimalField(
        source="low_balance_threshold", max_digits=18, decimal_places=5
    )
    balanceCheckedAt = serializers.DateTimeField(source="balance_checked_at", allow_null=True)
    supportedServices = serializers.IntegerField(source="services_count")
    lastSyncAt = serializers.DateTimeField(source="last_sync_at", allow_null=True)
    lastSyncError = serializers.CharField(source="last_sync_error")
    stats = serializers.SerializerMethodField()
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = SMMProvider
        fields = ["id", "name", "displayName", "code", "apiUrl", "hasApiKey", "priority", "isActive", "status",
                  "health", "balance", "currency", "lowBalance", "lowBalanceThreshold", "balanceCheckedAt",
                  "supportedServices", "lastSyncAt", "lastSyncError", "stats", "createdAt", "updatedAt"]
        read_only_fields = fields

    def get_hasApiKey(self, obj) -> bool:
        return bool((obj.integration.credentials or {}).get("api_key"))

    @extend_schema_field(ProviderStatsSerializer)
    def get_stats(self, obj):
        return {
            "successRate": obj.success_rate,
            "averageResponseTime": str(obj.integration.average_response_time),
            "totalSpent": str(obj.total_spent),
            "completedOrders": obj.completed_orders,
            "totalOrders": obj.total_orders,
            "failedOrders": obj.failed_orders,
            "totalRequests": obj.integration.total_requests,
        }


class ServiceSerializer(serializers.ModelSerializer):
    serviceId = serializers.CharField(source="service_id")
    min = serializers.IntegerField(source="min_quantity")
    max = serializers.IntegerField(source="max_quantity")
    isActive = serializers.BooleanField(source="is_active")
    lastSeenAt = serializers.DateTimeField(source="last_seen_at")

    class Meta:
        model = SMMService
        fields = ["id", "serviceId", "name", "type", "category", "rate", "min", "max", "refill", "cancel",
                  "dripfeed", "description", "isActive", "lastSeenAt"]
        read_only_fields = fields


# --- orders -------------------------------------------------------------------------------------
class OrderInputSerializer(serializers.Serializer):
    providerId = serializers.IntegerField()
    serviceId = serializers.CharField(
        max_length=64, help_text=_("The panel's service id (see the provider's services).")
    )
    link = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    quantity = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    runs = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    interval = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    customComments = LinesField(required=False)
    usernames = LinesField(required=False)
    hashtags = serializers.CharField(max_length=2000, required=False)
    hashtag = serializers.CharField(max_length=200, required=False)
    username = serializers.CharField(max_length=200, required=False)
    media = serializers.CharField(max_length=1000, required=False)
    keywords = serializers.CharField(max_length=2000, required=False)
    answerNumber = serializers.IntegerField(min_value=1, required=False)
    min = serializers.IntegerField(min_value=1, required=False)
    max = serializers.IntegerField(min_value=1, required=False)
    posts = serializers.IntegerField(min_value=0, required=False)
    oldPosts = serializers.IntegerField(min_value=0, required=False)
    delay = serializers.IntegerField(min_value=0, required=False)
    expiry = serializers.RegexField(r"^\d{2}/\d{2}/\d{4}$", required=False, help_text="d/m/Y")
    idempotencyKey = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def to_internal_value(self, data):
        data = camelize_keys(data)
        if "comments" in data and "customComments" not in data:
            data["customComments"] = data.pop("comments")
        return super().to_internal_value(data)

    def service_data(self):
        """The validated fields under the service layer's names."""
        v = self.validated_data
        mapping = {"link": "link", "quantity": "quantity", "runs": "runs", "interval": "interval",
                   "customComments": "comments", "usernames": "usernames", "hashtags": "hashtags",
                   "hashtag": "hashtag", "username": "username", "media": "media", "keywords": "keywords",
                   "answerNumber": "answer_number", "min": "min", "max": "max", "posts": "posts",
                   "oldPosts": "old_posts", "delay": "delay", "expiry": "expiry"}
        return {ours: v[theirs] for theirs, ours in mapping.items() if v.get(theirs) is not None}


class RefillSerializer(serializers.ModelSerializer):
    refillId = serializers.CharField(source="external_refill_id")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")

    class Meta:
        model = SMMRefill
        fields = ["id", "refillId", "status", "error", "createdAt", "updatedAt"]
        read_only_fields = fields


class OrderServiceSerializer(serializers.Serializer):
    """The ordered service (the order's `service`), as the panel's catalogue lists it."""

    id = serializers.IntegerField()
    serviceId = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    category = serializers.CharField()
    rate = serializers.DecimalField(max_digits=18, decimal_places=6)
    refill = serializers.BooleanField()
    cancel = serializers.BooleanField()


class OrderSerializer(serializers.ModelSerializer):
    # Nulls are real answers: no start count before the panel reports one, no quantity for the
    # service types that take none, no completion or cancel request yet.
    orderId = serializers.IntegerField(source="id")
    externalOrderId = serializers.CharField(source="external_order_id")
    providerId = serializers.IntegerField(source="provider_id")
    provider = serializers.CharField(source="provider.integration.display_name")
    serviceId = serializers.CharField(source="service.service_id")
    service = serializers.SerializerMethodField()
    fields = serializers.JSONField(source="extra")
    status = serializers.SerializerMethodField()
    statusCode = serializers.ChoiceField(source="status", choices=OrderStatus.choices)
    statusDisplay = serializers.CharField(source="get_status_display")
    startCount = serializers.IntegerField(source="start_count", allow_null=True)
    cancelRequestedAt = serializers.DateTimeField(source="cancel_requested_at", allow_null=True)
    refills = RefillSerializer(many=True)
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    completedAt = serializers.DateTimeField(source="completed_at", allow_null=True)

    class Meta:
        model = SMMOrder
        fields = ["id", "orderId", "reference", "externalOrderId", "providerId", "provider", "serviceId", "service",
                  "link", "quantity", "runs", "interval", "fields", "status", "statusCode", "statusDisplay", "charge",
                  "startCount", "remains", "currency", "error", "cancelRequestedAt", "refills", "createdAt",
                  "updatedAt", "completedAt"]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "enum": STATUS_LABEL_VALUES,
                          "description": "The seed's status label (statusCode: the same as a code)."})
    def get_status(self, obj):
        return STATUS_LABELS.get(obj.status, obj.status)

    @extend_schema_field(OrderServiceSerializer)
    def get_service(self, obj):
        s = obj.service
        return {"id": s.pk, "serviceId": s.service_id, "name": s.name, "type": s.type, "category": s.category,
                "rate": str(s.rate), "refill": s.refill, "cancel": s.cancel}


# --- answers of actions, for the schema -----------------------------------------------------------
class SyncResultSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text=_("Services in the panel's answer."))
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    deactivated = serializers.IntegerField(help_text=_("Services the panel no longer lists."))
    active = serializers.IntegerField()


class SyncSerializer(serializers.Serializer):
    result = SyncResultSerializer()
    provider = ProviderSerializer()


class QueuedSerializer(serializers.Serializer):
    queued = serializers.BooleanField()
