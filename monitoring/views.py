import django_filters
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from integrations.api.permissions import ScopedQuerysetMixin
from integrations.models import ExternalIntegration

from .health import current_health
from .models import HealthCheck, Incident, Notification
from .serializers import HealthCheckSerializer, IncidentSerializer, NotificationSerializer, ServiceHealthSerializer

# A ViewSet without a queryset: tell the schema what the path's id is (a provider's primary key).
_PROVIDER_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Provider id")


@extend_schema_view(retrieve=extend_schema(parameters=[_PROVIDER_ID]), history=extend_schema(parameters=[_PROVIDER_ID]))
class HealthViewSet(viewsets.ViewSet):
    """Every provider's current health (the seed's getAllServicesHealth) and each one's history. Staff only."""

    permission_classes = [IsAdminUser]
    serializer_class = ServiceHealthSerializer

    def list(self, request):
        queryset = ExternalIntegration.objects.all()
        for field in ("kind", "code", "status", "health_status"):
            if request.query_params.get(field):
                queryset = queryset.filter(**{field: request.query_params[field]})
        rows = [{"provider": p, "check": c} for p, c in current_health(queryset)]
        return Response(ServiceHealthSerializer(rows, many=True).data)

    def retrieve(self, request, pk=None):
        provider = get_object_or_404(ExternalIntegration, pk=pk)
        (row,) = current_health(ExternalIntegration.objects.filter(pk=provider.pk))
        return Response(ServiceHealthSerializer({"provider": row[0], "check": row[1]}).data)

    @action(detail=True, methods=["get"], serializer_class=HealthCheckSerializer)
    def history(self, request, pk=None):
        provider = get_object_or_404(ExternalIntegration, pk=pk)
        queryset = HealthCheck.objects.filter(integration=provider).order_by("-checked_at")
        since = request.query_params.get("since")
        if since:
            parsed = django_filters.fields.IsoDateTimeField().clean(since)
            queryset = queryset.filter(checked_at__gte=parsed)
        paginator = self.paginator
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(HealthCheckSerializer(page, many=True).data)

    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            from integrations.api.pagination import PagePagination

            self._paginator = PagePagination()
        return self._paginator


class IncidentFilter(django_filters.FilterSet):
    open = django_filters.BooleanFilter(field_name="resolved_at", lookup_expr="isnull")

    class Meta:
        model = Incident
        fields = ["state", "severity", "integration", "open"]


class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    """Incidents, newest first. Staff only."""

    permission_classes = [IsAdminUser]
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    queryset = Incident.objects.select_related("integration", "acknowledged_by").order_by("-started_at")


class NotificationViewSet(ScopedQuerysetMixin, viewsets.ReadOnlyModelViewSet):
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
