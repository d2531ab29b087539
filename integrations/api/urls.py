from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("integrations", views.IntegrationViewSet, basename="integration")
router.register("integration-logs", views.IntegrationLogViewSet, basename="integration-log")

urlpatterns = [
    path("me/", views.me, name="api-me"),
    path("", include(router.urls)),
]
