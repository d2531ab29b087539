from importlib import import_module, util

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from integrations import webhooks

DOMAIN_APPS = ("integrations", "payments", "shipping", "messaging", "smm", "monitoring")


def _app_urls(module_name):
    """Each domain app may bring `<app>/api_urls.py` (under /api/) and `<app>/sandbox.py`."""
    found = []
    for app in DOMAIN_APPS:
        dotted = f"{app}.{module_name}"
        if util.find_spec(dotted) is not None and hasattr(import_module(dotted), "urlpatterns"):
            found.append(dotted)
    return found


urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("integrations.api.urls")),
    *[path(f"api/{m.split('.')[0]}/", include(m)) for m in _app_urls("api_urls")],
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("webhooks/<str:kind>/<str:code>/", webhooks.receive, name="webhook"),
    path("webhooks/<str:kind>/<str:code>/<uuid:integration_id>/", webhooks.receive, name="webhook-for"),
]

if settings.SANDBOX_ENABLED:
    urlpatterns += [path("sandbox/", include(m)) for m in _app_urls("sandbox")]
