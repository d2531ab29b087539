from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView

from integrations import webhooks
from integrations.api.docs_views import ApiDocsView
from integrations.domain import api_url_modules, sandbox_url_modules

# The operators' back office under its own name, in their language: not "Django administration".
admin.site.site_header = _("EISHRO back office")
admin.site.site_title = _("EISHRO back office")
admin.site.index_title = _("Integrations hub")

# Each domain app declares its API and simulator URL modules on its config (integrations.domain).
urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("integrations.api.urls")),
    *[path(f"api/{label}/", include(module)) for label, module in api_url_modules().items()],
    # Public only when API_DOCS_PUBLIC (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    # The buyer's checkout page (payments.urls): not an API route, so not under /api/.
    path("pay/", include("payments.urls")),
    path("webhooks/<str:kind>/<str:code>/", webhooks.receive, name="webhook"),
    path("webhooks/<str:kind>/<str:code>/<uuid:integration_id>/", webhooks.receive, name="webhook-for"),
]

if settings.SANDBOX_ENABLED:
    urlpatterns += [path("sandbox/", include(module)) for module in sandbox_url_modules()]

# An unknown address under /api/ answers JSON like every other API error (integrations.api.errors).
handler404 = "integrations.api.errors.not_found"
