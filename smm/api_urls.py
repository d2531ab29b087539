"""/api/smm/…: the seed's route table (with or without a trailing slash)."""

from rest_framework.routers import SimpleRouter

from .views import OrderViewSet, ProviderViewSet

router = SimpleRouter()
router.trailing_slash = "/?"  # the seed's paths have no trailing slash; accept both
router.register("providers", ProviderViewSet, basename="smm-provider")
router.register("orders", OrderViewSet, basename="smm-order")

urlpatterns = router.urls
