import django_filters
from django.utils import timezone
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from integrations.api.filters import FilterSet, IntegrationFilter, UtcDateTimeFilter
from integrations.api.lookups import ValidLookupMixin
from integrations.api.pagination import PagePagination
from integrations.api.permissions import ScopedQuerysetMixin, StaffModelPermission
from integrations.models import ExternalIntegration

from .health import current_health
from .models import HealthCheck, Incident, Notification
from .serializers import HealthCheckSerializer, IncidentSerializer, NotificationSerializer, ServiceHealthSerializer

# The path's id is a provider's primary key: a UUID (the schema once said integer).
_PROVIDER_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Provider id")


class HealthHistoryFilter(FilterSet):
    since = UtcDateTimeFilter(field_name="checked_at", lookup_expr="gte")

    class Meta:
        model = HealthCheck
        fields = ["since"]


@extend_schema_view(
    list=extend_schema(responses=ServiceHealthSerializer(many=True)),
    retrieve=extend_schema(parameters=[_PROVIDER_ID]),
    history=extend_schema(
        operation_id="monitoring_health_history_retrieve",  # its name before it was documented as a list
        parameters=[_PROVIDER_ID, OpenApiParameter("since", OpenApiTypes.DATETIME, description="ISO 8601; "
                                                   "checks at or after this time")],
        responses=HealthCheckSerializer(many=True),
    ),
)
class HealthViewSet(ValidLookupMixin, viewsets.GenericViewSet):
    """Every provider's current health (the seed's getAllServicesHealth) and each one's history. Staff
    with the permissions to view providers and health checks only."""

    permission_classes = [StaffModelPermission]
    permission_models = [ExternalIntegration, HealthCheck]
    serializer_class = ServiceHealthSerializer
    queryset = ExternalIntegration.objects.all()
    filterset_class = IntegrationFilter
    pagination_class = None  # the seed's shape: every provider in one list

    def list(self, request):
        rows = [{"provider": p, "check": c} for p, c in current_health(self.filter_queryset(self.get_queryset()))]
        return Response(ServiceHealthSerializer(rows, many=True).data)

    def retrieve(self, request, pk=None):
        provider = self.get_object()
        (row,) = current_health(ExternalIntegration.objects.filter(pk=provider.pk))
        return Response(ServiceHealthSerializer({"provider": row[0], "check": row[1]}).data)

    # The provider's filters do not apply to its checks; `since` is the history's own (HealthHistoryFilter).
    @action(detail=True, methods=["get"], serializer_class=HealthCheckSerializer, filter_backends=[],
            pagination_class=PagePagination)
    def history(self, request, pk=None):
        provider = self.get_object()
        checks = HealthHistoryFilter(
            request.query_params,
            queryset=HealthCheck.objects.filter(integration=provider).order_by("-checked_at"),
            request=request,
        )
        if not checks.is_valid():
            raise translate_validation(checks.errors)
        page = self.paginate_queryset(checks.qs)
        return self.get_paginated_response(HealthCheckSerializer(page, many=True).data)


class IncidentFilter(FilterSet):
    open = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull")

    class Meta:
        model = Incident
        fields = ["state", "severity", "integration", "open"]


class IncidentViewSet(ValidLookupMixin, viewsets.ReadOnlyModelViewSet):
    """Incidents, newest first. Staff with the permission to view incidents only."""

    permission_classes = [StaffModelPermission]
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    queryset = Incident.objects.select_related("integration", "acknowledged_by").order_by("-started_at")


class NotificationViewSet(ValidLookupMixin, ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
    """A merchant's notices about provider outages that affect their open orders."""

    owner_field = "user"
    serializer_class = NotificationSerializer
    queryset = Notification.objects.select_related("integration", "incident").order_by("-created_at")

    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        notice = self.get_object()
        Notification.objects.filter(pk=notice.pk, read_at=None).update(read_at=timezone.now())
        notice.refresh_from_db()
        return Response(self.get_serializer(notice).data)
