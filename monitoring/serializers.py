from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from integrations.api.serializers import CamelCaseModelSerializer
from integrations.models import ExternalIntegration, Health, Kind

from .models import CheckStatus, HealthCheck, Incident, Notification


class ServiceHealthSerializer(serializers.Serializer):
    """One provider in the seed's `getAllServicesHealth` shape (service, status, responseTime, …)."""

    id = serializers.UUIDField(source="provider.id")
    service = serializers.CharField(source="provider.code")
    name = serializers.CharField(source="provider.name")
    displayName = serializers.CharField(source="provider.display_name")
    kind = serializers.ChoiceField(source="provider.kind", choices=Kind.choices)
    owner = serializers.IntegerField(source="provider.owner_id", allow_null=True)
    status = serializers.SerializerMethodField()
    # Blank until the provider's first health check.
    healthStatus = serializers.ChoiceField(source="provider.health_status", choices=Health.choices, allow_blank=True)
    responseTime = serializers.FloatField(source="check.response_time", allow_null=True, default=None)
    lastChecked = serializers.DateTimeField(source="check.checked_at", allow_null=True, default=None)
    error = serializers.CharField(source="check.error", allow_null=True, default=None)
    successRate = serializers.FloatField(source="provider.success_rate", allow_null=True)
    totalRequests = serializers.IntegerField(source="provider.total_requests")

    @extend_schema_field({"type": "string", "enum": [*CheckStatus.values, "unknown"],
                          "description": "The last check's result; unknown before the first check."})
    def get_status(self, row):
        return row["check"].status if row["check"] else "unknown"


class HealthCheckSerializer(CamelCaseModelSerializer):
    class Meta:
        model = HealthCheck
        fields = ["id", "status", "responseTime", "error", "checkedAt"]
        read_only_fields = fields


class ProviderRefSerializer(CamelCaseModelSerializer):
    class Meta:
        model = ExternalIntegration
        fields = ["id", "code", "name", "displayName", "kind"]


class IncidentSerializer(CamelCaseModelSerializer):
    service = ProviderRefSerializer(source="integration", read_only=True)
    acknowledgedBy = serializers.CharField(source="acknowledged_by.get_username", allow_null=True, default=None)

    class Meta:
        model = Incident
        fields = [
            "id",
            "service",
            "severity",
            "state",
            "description",
            "notes",
            "startedAt",
            "acknowledgedBy",
            "acknowledgedAt",
            "resolvedAt",
        ]
        read_only_fields = fields


class NotificationSerializer(CamelCaseModelSerializer):
    provider = serializers.CharField(source="integration.display_name", read_only=True)
    incidentState = serializers.CharField(source="incident.state", read_only=True)

    class Meta:
        model = Notification
        fields = ["id", "title", "body", "provider", "incident", "incidentState", "createdAt", "readAt"]
        read_only_fields = fields
