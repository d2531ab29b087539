from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from integrations.models import ExternalIntegration, Health, IntegrationLog

from .naming import snake


# No docstring on the base: drf-spectacular would show it as the description of every serializer
# built on it that has none of its own.
class CamelCaseModelSerializer(serializers.ModelSerializer):
    # `Meta.fields` are the API's camelCase names (integrations.api.naming): each one not declared on
    # the class reads the model field of its snake_case spelling (`displayName` ->
    # `source="display_name"`), built by DRF from the model as usual (type, label, help text,
    # choices). The same as declaring `displayName = …(source="display_name")`, without repeating
    # what the model already says.

    def get_extra_kwargs(self):
        extra_kwargs = super().get_extra_kwargs()
        for name in self.Meta.fields:
            if name not in self._declared_fields and snake(name) != name:
                extra_kwargs.setdefault(name, {}).setdefault("source", snake(name))
        return extra_kwargs


class IntegrationSerializer(CamelCaseModelSerializer):
    """A provider row as merchants and staff see it. Credentials are never part of any output."""

    # Null before the first call.
    successRate = serializers.FloatField(source="success_rate", read_only=True, allow_null=True,
                                         help_text=_("Percent of successful calls."))
    # Blank until the provider's first health check.
    healthStatus = serializers.ChoiceField(source="health_status", choices=Health.choices, allow_blank=True,
                                           read_only=True, label=_("health"))

    class Meta:
        model = ExternalIntegration
        fields = [
            "id",
            "kind",
            "code",
            "name",
            "displayName",
            "baseUrl",
            "priority",
            "status",
            "healthStatus",
            "lastHealthCheck",
            "totalRequests",
            "successfulRequests",
            "failedRequests",
            "averageResponseTime",
            "successRate",
            "createdAt",
            "updatedAt",
        ]
        read_only_fields = fields


class IntegrationLogSerializer(CamelCaseModelSerializer):
    class Meta:
        model = IntegrationLog
        fields = [
            "id",
            "integration",
            "requestId",
            "transport",
            "operation",
            "endpoint",
            "method",
            "responseStatus",
            "requestDuration",
            "startedAt",
            "status",
            "errorMessage",
            "errorCode",
        ]
        read_only_fields = fields


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    isStaff = serializers.BooleanField(source="is_staff")
