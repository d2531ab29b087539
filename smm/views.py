"""The seed's route table under /api/smm/, plus order detail, refill, cancel and refresh.

Every queryset is scoped to the caller: their own rows; staff holding the model's view permission
see every merchant's, and change them only with its change permission (integrations.permissions).
A row the caller may not read is a 404, never a 403 that would confirm it exists."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import ProtectedError, Q
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from integrations.api.filters import IdFilter
from integrations.api.lookups import ValidLookupMixin
from integrations.api.pagination import PagePagination
from integrations.api.permissions import OwnerOrModelPermission
from integrations.api.schema import PROVIDER_FAILURES, error
from integrations.cache_outage import RETRY_AFTER
from integrations.errors import ProviderError
from integrations.locks import LockUnavailable, provider_lock
from integrations.models import ExternalIntegration
from integrations.permissions import scoped

from . import catalogue, orders, providers, tasks
from .models import SMMOrder, SMMProvider, SMMService
from .serializers import (
    LABEL_TO_STATUS,
    OrderInputSerializer,
    OrderSerializer,
    ProviderInputSerializer,
    ProviderSerializer,
    QueuedSerializer,
    RefillSerializer,
    ServiceSerializer,
    SyncSerializer,
    api_errors,
)


def _raise_from_django(exc):
    if hasattr(exc, "message_dict"):
        raise ValidationError(api_errors(exc.message_dict)) from exc
    raise ValidationError({"detail": exc.messages}) from exc


class MaskProviderSecrets:
    """A provider's error may quote the key it was sent (an echo, over a transport that does not
    mask answers itself): masked with the secrets of the provider row the request acted on before
    the API shows it."""

    _integration = None

    def handle_exception(self, exc):
        if isinstance(exc, ProviderError) and self._integration is not None:
            exc.mask(self._integration.secret_values)
        return super().handle_exception(exc)


class ProviderViewSet(MaskProviderSecrets, ValidLookupMixin, viewsets.GenericViewSet):
    serializer_class = ProviderSerializer
    permission_classes = [IsAuthenticated, OwnerOrModelPermission]
    owner_field = "integration__owner"
    pagination_class = PagePagination
    queryset = SMMProvider.objects.none()

    def get_object(self):
        provider = super().get_object()
        self._integration = provider.integration
        return provider

    def get_queryset(self):
        return (
            SMMProvider.objects.select_related("integration")
            .visible_to(self.request.user)
            .order_by("integration__priority", "integration__display_name", "pk")
        )

    def _name_taken(self, owner, name, exclude_pk=None):
        qs = ExternalIntegration.objects.filter(owner=owner, name=name)
        if exclude_pk:
            qs = qs.exclude(pk=exclude_pk)
        return qs.exists()

    @extend_schema(summary="List the caller's SMM providers")
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ProviderSerializer(page, many=True).data)

    @extend_schema(summary="Add a provider", request=ProviderInputSerializer, responses={201: ProviderSerializer})
    def create(self, request):
        data = ProviderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if self._name_taken(request.user, v["name"]):
            raise ValidationError({"name": [_("You already have a provider with this name.")]})
        provider = providers.create_provider(
            owner=request.user, name=v["name"], display_name=v.get("displayName") or v["name"], api_url=v["apiUrl"],
            api_key=v["apiKey"], priority=v.get("priority", 1), code=v.get("code"),
            is_active=v.get("isActive", True), low_balance_threshold=v.get("lowBalanceThreshold"),
        )
        return Response(ProviderSerializer(provider).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="One provider")
    def retrieve(self, request, pk=None):
        return Response(ProviderSerializer(self.get_object()).data)

    @extend_schema(summary="Update a provider (fields left out keep their value; the API key too)",
                   request=ProviderInputSerializer, responses=ProviderSerializer)
    def update(self, request, pk=None, partial=True):
        provider = self.get_object()
        data = ProviderInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        if v.get("name") and self._name_taken(provider.integration.owner, v["name"], provider.integration_id):
            raise ValidationError({"name": [_("You already have a provider with this name.")]})
        try:
            providers.update_provider(
                provider, name=v.get("name"), display_name=v.get("displayName") or None, api_url=v.get("apiUrl"),
                api_key=v.get("apiKey"), priority=v.get("priority"), code=v.get("code"), is_active=v.get("isActive"),
                low_balance_threshold=v.get("lowBalanceThreshold"), actor=request.user,
            )
        except DjangoValidationError as exc:
            _raise_from_django(exc)
        provider.refresh_from_db()
        return Response(ProviderSerializer(provider).data)

    @extend_schema(summary="Update some of a provider's fields (the same as PUT)",
                   request=ProviderInputSerializer, responses=ProviderSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk)

    @extend_schema(summary="Delete a provider (refused while it has orders: deactivate it instead)",
                   responses={204: None, 409: error("The provider has orders.")})
    def destroy(self, request, pk=None):
        provider = self.get_object()
        try:
            with transaction.atomic():
                provider.integration.delete()
        except ProtectedError:
            return Response(
                {"detail": _("This provider has orders and cannot be deleted; deactivate it instead.")},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Activate or deactivate a provider", request=None, responses=ProviderSerializer)
    @action(detail=True, methods=["patch", "post"])
    def toggle(self, request, pk=None):
        try:
            provider = providers.toggle_provider(self.get_object())
        except DjangoValidationError as exc:  # a panel without its API key stays off
            _raise_from_django(exc)
        return Response(ProviderSerializer(provider).data)

    @extend_schema(
        summary="Sync the provider's services now (`?async=1` queues it)",
        request=None,
        responses={200: SyncSerializer, 202: QueuedSerializer, 409: error("A sync of this provider is running."),
                   **PROVIDER_FAILURES},
        parameters=[OpenApiParameter("async", bool, required=False)],
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        provider = self.get_object()
        if request.query_params.get("async") in ("1", "true"):
            tasks.sync_provider_services.delay(provider.pk)
            return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)
        try:
            with provider_lock(provider.pk, "sync") as acquired:
                if not acquired:
                    return Response({"detail": _("A sync of this provider is already running.")},
                                    status=status.HTTP_409_CONFLICT)
                result = catalogue.sync_services(provider)
        except LockUnavailable:
            # The 503 of an unavailable panel, in its shape: the client waits and tries again either way.
            return Response({"detail": _("A sync cannot be started right now; try again shortly."),
                             "providerError": "LockUnavailable"},
                            status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": str(RETRY_AFTER)})
        provider.refresh_from_db()
        return Response({"result": result, "provider": ProviderSerializer(provider).data})

    @extend_schema(summary="Refresh the provider's balance now", request=None,
                   responses={200: ProviderSerializer, **PROVIDER_FAILURES})
    @action(detail=True, methods=["post"])
    def balance(self, request, pk=None):
        provider = self.get_object()
        providers.refresh_balance(provider)
        return Response(ProviderSerializer(provider).data)

    @extend_schema(
        summary="The provider's services",
        responses=ServiceSerializer(many=True),
        parameters=[
            OpenApiParameter("category", str, required=False),
            OpenApiParameter("type", str, required=False),
            OpenApiParameter("search", str, required=False),
            OpenApiParameter("active", bool, required=False, description="default: true"),
        ],
    )
    @action(detail=True, methods=["get"])
    def services(self, request, pk=None):
        provider = self.get_object()
        qs = SMMService.objects.filter(provider=provider).order_by("category", "name", "pk")
        params = request.query_params
        if params.get("active", "true").lower() not in ("all", "false", "0"):
            qs = qs.filter(is_active=True)
        elif params.get("active", "").lower() in ("false", "0"):
            qs = qs.filter(is_active=False)
        if params.get("category"):
            qs = qs.filter(category__iexact=params["category"])
        if params.get("type"):
            qs = qs.filter(type__iexact=params["type"])
        if params.get("search"):
            term = params["search"]
            # A catalogue name is short; a longer term finds nothing and SQLite refuses a LIKE of 50 KB (a 500).
            if len(term) > MAX_SEARCH or not term.isprintable():
                raise ValidationError({"search": [_("Search for at most %(max)d printable characters.")
                                                  % {"max": MAX_SEARCH}]})
            qs = qs.filter(Q(name__icontains=term) | Q(category__icontains=term) | Q(service_id=term))
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(ServiceSerializer(page, many=True).data)


MAX_SEARCH = 200


class StatusLabelsField(forms.CharField):
    """Status labels or codes, comma-separated, as the status codes they name."""

    default_error_messages = {"unknown": _lazy("Unknown status.")}

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return []
        codes = [LABEL_TO_STATUS.get(s.strip().lower()) for s in value.split(",")]
        if None in codes:
            raise forms.ValidationError(self.error_messages["unknown"], code="unknown")
        return codes


@extend_schema_field(OpenApiTypes.STR)
class StatusFilter(django_filters.Filter):
    field_class = StatusLabelsField


class OrderFilter(django_filters.FilterSet):
    status = StatusFilter(field_name="status", lookup_expr="in",
                          help_text="Pending, In progress, Completed… (comma-separated for several)")
    provider = IdFilter(field_name="provider_id", help_text="A provider's id")

    class Meta:
        model = SMMOrder
        fields = ["status", "provider"]


class OrderViewSet(MaskProviderSecrets, ValidLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                   viewsets.GenericViewSet):
    serializer_class = OrderSerializer
    permission_classes = [IsAuthenticated, OwnerOrModelPermission]
    owner_field = "owner"
    pagination_class = PagePagination
    queryset = SMMOrder.objects.none()
    filterset_class = OrderFilter

    def get_queryset(self):
        qs = SMMOrder.objects.select_related("provider__integration", "service").prefetch_related("refills")
        return scoped(qs, self.request.user, self.owner_field).order_by("-created_at", "-id")

    @extend_schema(summary="The caller's orders")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="Create an order (send an `Idempotency-Key` header to make retries safe)",
        description=(
            "201: the order is written and queued (status Queued). A queued order is sent to the panel "
            "once: by its task at once, or, if that task could not be queued or was lost, by the retry "
            "sweep, which runs every minute while the workers and the broker are up (docs/operations.md). "
            "A repeat with the same key answers 200 with the order as it is now."
        ),
        request=OrderInputSerializer,
        responses={201: OrderSerializer, 200: OrderSerializer,
                   409: error("The idempotency key was already used for a different order.")},
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
    )
    def create(self, request):
        data = OrderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        provider = (
            SMMProvider.objects.select_related("integration")
            .filter(pk=v["providerId"], integration__owner=request.user)
            .first()
        )
        if provider is None:
            raise ValidationError({"providerId": [_("Unknown provider.")]})
        service = SMMService.objects.filter(provider=provider, service_id=v["serviceId"]).first()
        if service is None:
            raise ValidationError(
                {"serviceId": [_("Unknown service for this provider; sync the provider's services first.")]}
            )
        key = request.headers.get("Idempotency-Key") or v.get("idempotencyKey") or ""
        try:
            order, created = orders.place_order(
                request.user, provider=provider, service=service, data=data.service_data(), idempotency_key=key
            )
        except orders.IdempotencyConflict:
            return Response(
                {"detail": _("This idempotency key was already used for a different order.")},
                status=status.HTTP_409_CONFLICT,
            )
        except DjangoValidationError as exc:
            _raise_from_django(exc)
        if created or order.status == SMMOrder.Status.CREATED:
            # After the commit, so the worker finds the row. A repeat of a still-queued order queues
            # it again: its first message may be lost, and the claim lets only one of them send.
            transaction.on_commit(lambda: tasks.enqueue_submission(order.pk))
        order = self.get_queryset().get(pk=order.pk)
        return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    def _order(self, pk):
        order = get_object_or_404(self.get_queryset(), pk=pk)
        self._integration = order.provider.integration
        # Readable is not writable: another merchant's order moves only with the change permission.
        self.check_object_permissions(self.request, order)
        return order

    @extend_schema(summary="Ask the panel to refill the order", request=None,
                   responses={201: RefillSerializer, **PROVIDER_FAILURES})
    @action(detail=True, methods=["post"])
    def refill(self, request, pk=None):
        order = self._order(pk)
        try:
            refill = orders.refill_order(order)
        except DjangoValidationError as exc:
            _raise_from_django(exc)
        if refill.status == refill.Status.REJECTED:
            raise ValidationError({"detail": [refill.error]})
        return Response(RefillSerializer(refill).data, status=status.HTTP_201_CREATED)

    @extend_schema(summary="Ask the panel to cancel the order", request=None,
                   responses={202: OrderSerializer, **PROVIDER_FAILURES})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = self._order(pk)
        try:
            orders.cancel_order(order)
        except DjangoValidationError as exc:
            _raise_from_django(exc)
        return Response(OrderSerializer(self._order(pk)).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(summary="Ask the panel for the order's status now", request=None,
                   responses={200: OrderSerializer, **PROVIDER_FAILURES})
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        orders.refresh_order(self._order(pk))
        return Response(OrderSerializer(self._order(pk)).data)
