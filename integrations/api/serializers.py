from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from integrations.models import ExternalIntegration, Health, IntegrationLog


class IntegrationSerializer(serializers.ModelSerializer):
    """A provider row as merchants and staff see it. Credentials are never part of any output."""

    # Null before the first call.
    success_rate = serializers.FloatField(read_only=True, allow_null=True, help_text=_("Percent of successful calls."))
    # Blank until the provider's first health check.
    health_status = serializers.ChoiceField(choices=Health.choices, allow_blank=True, read_only=True,
                                            label=_("health"))

    class Meta:
        model = ExternalIntegration
        fields = [
            "id",
            "kind",
            "code",
            "name",
            "display_name",
            "base_url",
            "priority",
            "status",
            "health_status",
            "last_health_check",
            "total_requests",
            "successful_requests",
            "failed_requests",
            "average_response_time",
            "success_rate",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class IntegrationLogSerializer(serializers.ModelSerializer):
    class Meta:
        model = IntegrationLog
        fields = [
            "id",
            "integration",
            "request_id",
            "transport",
            "operation",
            "endpoint",
            "method",
            "response_status",
            "request_duration",
            "started_at",
            "status",
            "error_message",
            "error_code",
        ]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    is_staff = serializers.BooleanField()
