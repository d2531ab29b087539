import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response

from integrations.models import ExternalIntegration, IntegrationLog
from integrations.permissions import holds_model_permission, scoped

from .filters import FilterSet, IntegrationFilter, UtcDateTimeFilter
from .permissions import ScopedQuerysetMixin
from .serializers import IntegrationLogSerializer, IntegrationSerializer, MeSerializer


class IntegrationViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """Provider connections visible to the caller: their own; staff with the view permission: all."""

    queryset = ExternalIntegration.objects.all()
    serializer_class = IntegrationSerializer
    filterset_class = IntegrationFilter


def _visible_integrations(request):
    # Only providers whose logs the caller may read are valid choices: another merchant's id is
    # refused exactly like an unknown one, so the filter cannot be used to probe which ids exist.
    if request is None:
        return ExternalIntegration.objects.none()
    if holds_model_permission(request.user, IntegrationLog, "view"):
        return ExternalIntegration.objects.all()
    return ExternalIntegration.objects.filter(owner=request.user)


class LogFilter(FilterSet):
    integration = django_filters.ModelChoiceFilter(queryset=_visible_integrations)
    since = UtcDateTimeFilter(field_name="started_at", lookup_expr="gte")

    class Meta:
        model = IntegrationLog
        fields = ["integration", "status", "transport", "operation", "method", "since"]


class IntegrationLogViewSet(viewsets.ReadOnlyModelViewSet):
    """Calls made to the caller's providers; staff with the view permission on logs: every call.
    (Bodies and headers are for operators, in the admin.)"""

    serializer_class = IntegrationLogSerializer
    filterset_class = LogFilter

    def get_queryset(self):
        queryset = IntegrationLog.objects.order_by("-started_at")
        if getattr(self, "swagger_fake_view", False):  # schema generation: no caller to scope to
            return queryset.none()
        return scoped(queryset, self.request.user, "integration__owner")


@extend_schema(responses=MeSerializer)
@api_view(["GET"])
def me(request):
    return Response(MeSerializer(request.user).data)
