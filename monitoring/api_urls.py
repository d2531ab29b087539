from django.urls import include, path
from rest_framework.routers import DefaultRouter

from . import views

router = DefaultRouter()
router.register("health", views.HealthViewSet, basename="monitoring-health")
router.register("incidents", views.IncidentViewSet, basename="monitoring-incident")
router.register("notifications", views.NotificationViewSet, basename="monitoring-notification")

urlpatterns = [path("", include(router.urls))]
