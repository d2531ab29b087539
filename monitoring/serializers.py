from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from integrations.models import ExternalIntegration, Health, Kind

from .models import CheckStatus, HealthCheck, Incident, Notification


class ServiceHealthSerializer(serializers.Serializer):
    """One provider in the seed's `getAllServicesHealth` shape (service, status, responseTime, …)."""

    id = serializers.UUIDField(source="provider.id")
    service = serializers.CharField(source="provider.code")
    name = serializers.CharField(source="provider.name")
    display_name = serializers.CharField(source="provider.display_name")
    kind = serializers.ChoiceField(source="provider.kind", choices=Kind.choices)
    owner = serializers.IntegerField(source="provider.owner_id", allow_null=True)
    status = serializers.SerializerMethodField()
    # Blank until the provider's first health check.
    health_status = serializers.ChoiceField(source="provider.health_status", choices=Health.choices, allow_blank=True)
    response_time = serializers.FloatField(source="check.response_time", allow_null=True, default=None)
    last_checked = serializers.DateTimeField(source="check.checked_at", allow_null=True, default=None)
    error = serializers.CharField(source="check.error", allow_null=True, default=None)
    success_rate = serializers.FloatField(source="provider.success_rate", allow_null=True)
    total_requests = serializers.IntegerField(source="provider.total_requests")

    @extend_schema_field({"type": "string", "enum": [*CheckStatus.values, "unknown"],
                          "description": "The last check's result; unknown before the first check."})
    def get_status(self, row):
        return row["check"].status if row["check"] else "unknown"


class HealthCheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthCheck
        fields = ["id", "status", "response_time", "error", "checked_at"]
        read_only_fields = fields


class ProviderRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExternalIntegration
        fields = ["id", "code", "name", "display_name", "kind"]


class IncidentSerializer(serializers.ModelSerializer):
    service = ProviderRefSerializer(source="integration", read_only=True)
    acknowledged_by = serializers.CharField(source="acknowledged_by.get_username", allow_null=True, default=None)

    class Meta:
        model = Incident
        fields = [
            "id",
            "service",
            "severity",
            "state",
            "description",
            "notes",
            "started_at",
            "acknowledged_by",
            "acknowledged_at",
            "resolved_at",
        ]
        read_only_fields = fields


class NotificationSerializer(serializers.ModelSerializer):
    provider = serializers.CharField(source="integration.display_name", read_only=True)
    incident_state = serializers.CharField(source="incident.state", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "title", "body", "provider", "incident", "incident_state", "created_at", "read_at"]
        read_only_fields = fields
