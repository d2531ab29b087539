"""/api/payments/…: the ways to pay on offer, payments (create, read, list, refund, confirm a wallet's
code, ask the provider) and refunds.

Every queryset is scoped to the caller (integrations.permissions): their own payments; staff holding
the model's view permission see every merchant's and act on them only with its change permission. A
payment the caller may not read is a 404, never a 403. Every write honours `Idempotency-Key`
(payments.idempotency) and the write throttle (REST_FRAMEWORK's default throttle, writes only). Every
move goes through payments.services."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from integrations.api.lookups import ValidLookupMixin
from integrations.api.naming import camel
from integrations.api.pagination import PagePagination
from integrations.api.permissions import OwnerOrModelPermission
from integrations.api.schema import PROVIDER_FAILURES, error
from integrations.errors import ProviderError
from integrations.permissions import scoped

from . import services
from .checkout_views import CODE_WINDOW_S, code_tries_left
from .filters import PaymentFilter, RefundFilter
from .idempotency import HEADER, idempotent
from .models import Payment, PaymentStatus, Refund
from .serializers import (
    ConfirmInputSerializer,
    MethodSerializer,
    MethodsQuerySerializer,
    PaymentInputSerializer,
    PaymentSerializer,
    RefundInputSerializer,
    RefundSerializer,
)

# Whole-request refusals of the services (a payment in the wrong state) under the API's key for them.
WHOLE_REQUEST = {"payment", "refund", "__all__"}
IDEMPOTENCY = OpenApiParameter(
    HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Makes retries safe: the same key and body answer the first (successful) answer again, "
                "with the same status code and body; the same key with another request is a 409.",
)
IDEMPOTENCY_CONFLICT = error("The idempotency key was already used for a different request, or a request "
                             "with it is still being processed.")


def api_errors(exc):
    """A service's ValidationError as the API's 400 (camelCase keys)."""
    if not hasattr(exc, "message_dict"):
        return ValidationError({"nonFieldErrors": exc.messages})
    return ValidationError({"nonFieldErrors" if key in WHOLE_REQUEST else camel(key): messages
                            for key, messages in exc.message_dict.items()})


def _masked(payment, exc):
    # A provider's error may quote what it was sent: masked with the row's secrets before it is shown.
    if payment.integration_id:
        exc.mask(payment.integration.secret_values)
    return exc


@extend_schema(tags=["payments"])
class MethodViewSet(viewsets.ViewSet):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The ways to pay on offer now, with their limits and banks",
        description="While a provider is unavailable (Moamalat unhealthy), its methods are left out and "
                    "the seed's fallback (cash on delivery, bank transfer) is offered with `fallbackFor` "
                    "naming what it stands in for. Limits are in the currency asked for (`currency`).",
        parameters=[MethodsQuerySerializer], responses=MethodSerializer(many=True),
    )
    def list(self, request):
        query = MethodsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        currency = query.validated_data.get("currency")
        methods = services.available_methods(request.user, currency=currency)
        return Response(MethodSerializer(methods, many=True, context={"currency": currency}).data)


@extend_schema(tags=["payments"])
class PaymentViewSet(ValidLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PaymentSerializer
    permission_classes = [IsAuthenticated, OwnerOrModelPermission]
    owner_field = "owner"
    pagination_class = PagePagination
    filterset_class = PaymentFilter
    queryset = Payment.objects.none()

    def get_queryset(self):
        qs = Payment.objects.select_related("bank", "integration")
        return scoped(qs, self.request.user, self.owner_field).order_by("-created_at", "-id")

    def _answer(self, payment, code=status.HTTP_200_OK):
        payment = self.get_queryset().get(pk=payment.pk)
        return Response(PaymentSerializer(payment, context={"request": self.request}).data, status=code)

    @extend_schema(summary="The caller's payments (newest first)")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One payment")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="Create a payment and begin it",
        description="Checked against the method's limits, currency and banks (a 400 naming the limit). "
                    "The answer says what the buyer does next (`nextStep`): open `checkoutUrl` (cards), "
                    "transfer quoting `transfer.reference`, enter the wallet's code (`wallet.confirmUrl`), or "
                    "pay the carrier. A payment whose provider could not say whether it started is "
                    "`unknown` and is settled by reconciliation, never begun twice.",
        request=PaymentInputSerializer, parameters=[IDEMPOTENCY],
        responses={201: PaymentSerializer, 409: IDEMPOTENCY_CONFLICT},
    )
    def create(self, request):
        data = PaymentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.service_data()

        def run():
            try:
                payment, _created = services.create_payment(request.user, **fields,
                                                            idempotency_key=request.headers.get(HEADER, ""))
            except services.IdempotencyConflict:
                return Response({"detail": _("This idempotency key was already used for a different payment.")},
                                status=status.HTTP_409_CONFLICT)
            except DjangoValidationError as exc:
                raise api_errors(exc) from exc
            return self._answer(payment, status.HTTP_201_CREATED)

        return idempotent(request, "payments.create", fields, run)

    @extend_schema(
        summary="Refund an amount of a paid payment",
        description="At most what was paid minus what other refunds hold (a 400 saying how much is left). "
                    "The refund is sent to the provider once; cash and transfer refunds wait, `pending`, "
                    "for an operator to hand the money back.",
        request=RefundInputSerializer, parameters=[IDEMPOTENCY],
        responses={201: RefundSerializer, 409: IDEMPOTENCY_CONFLICT, **PROVIDER_FAILURES},
    )
    @action(detail=True, methods=["post"])
    def refund(self, request, pk=None):
        payment = self.get_object()
        data = RefundInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        amount, reason = data.validated_data["amount"], data.validated_data.get("reason", "")

        def run():
            try:
                refund = services.refund(payment, amount, reason=reason, actor=request.user,
                                         idempotency_key=request.headers.get(HEADER, ""))
            except services.IdempotencyConflict:
                return Response({"detail": _("This idempotency key was already used for a different refund.")},
                                status=status.HTTP_409_CONFLICT)
            except DjangoValidationError as exc:
                raise api_errors(exc) from exc
            except ProviderError as exc:
                raise _masked(payment, exc) from None
            refund = Refund.objects.select_related("payment").get(pk=refund.pk)
            return Response(RefundSerializer(refund).data, status=status.HTTP_201_CREATED)

        return idempotent(request, f"payments.{payment.pk}.refund", {"amount": amount, "reason": reason}, run)

    @extend_schema(
        summary="Confirm a wallet payment with the payer's one-time code",
        request=ConfirmInputSerializer, parameters=[IDEMPOTENCY],
        responses={200: PaymentSerializer, 409: IDEMPOTENCY_CONFLICT, **PROVIDER_FAILURES,
                   429: error("Five codes were tried on this payment in 15 minutes (the checkout page's "
                              "tries count too); see Retry-After.")},
    )
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        payment = self.get_object()
        data = ConfirmInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        code = data.validated_data["code"]

        def run():
            # The page's limit on codes, counted together with it: else a merchant could try
            # codes on a payer's wallet at the write rate (120 a minute).
            left = code_tries_left(payment) if payment.status == PaymentStatus.PENDING else 0
            if left is None or left < 0:
                response = Response({"detail": _("Too many codes were tried. Wait a few minutes, then try again.")},
                                    status=status.HTTP_429_TOO_MANY_REQUESTS)
                response["Retry-After"] = str(CODE_WINDOW_S)
                return response
            try:
                services.confirm_wallet(payment, code)
            except DjangoValidationError as exc:
                raise api_errors(exc) from exc
            except ProviderError as exc:
                raise _masked(payment, exc) from None
            return self._answer(payment)

        return idempotent(request, f"payments.{payment.pk}.confirm", {"code": code}, run)

    @extend_schema(
        summary="Ask the provider where the payment stands now, and apply its answer",
        request=None, parameters=[IDEMPOTENCY],
        responses={200: PaymentSerializer, 409: IDEMPOTENCY_CONFLICT, **PROVIDER_FAILURES},
    )
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        payment = self.get_object()

        def run():
            try:
                services.refresh_status(payment)
            except ProviderError as exc:
                raise _masked(payment, exc) from None
            return self._answer(payment)

        return idempotent(request, f"payments.{payment.pk}.refresh", {}, run)


@extend_schema(tags=["payments"])
class RefundViewSet(ValidLookupMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RefundSerializer
    permission_classes = [IsAuthenticated, OwnerOrModelPermission]
    owner_field = "payment__owner"
    pagination_class = PagePagination
    filterset_class = RefundFilter
    queryset = Refund.objects.none()

    def get_queryset(self):
        qs = Refund.objects.select_related("payment")
        return scoped(qs, self.request.user, self.owner_field).order_by("-created_at", "-id")

    @extend_schema(summary="Refunds of the caller's payments (newest first)")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(summary="One refund")
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)
