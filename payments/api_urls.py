"""/api/payments/…: methods, payments (with refund, confirm, refresh) and refunds."""

from rest_framework.routers import SimpleRouter

from .views import MethodViewSet, PaymentViewSet, RefundViewSet

router = SimpleRouter()
router.trailing_slash = "/?"
router.register("methods", MethodViewSet, basename="payment-method")
router.register("payments", PaymentViewSet, basename="payment-payment")
router.register("refunds", RefundViewSet, basename="payment-refund")

urlpatterns = router.urls
