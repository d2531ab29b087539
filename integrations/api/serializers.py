from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from integrations.models import ExternalIntegration, IntegrationLog


class IntegrationSerializer(serializers.ModelSerializer):
    """A provider row as merchants and staff see it. Credentials are never part of any output."""

    success_rate = serializers.FloatField(read_only=True, help_text=_("Percent of successful calls."))

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
