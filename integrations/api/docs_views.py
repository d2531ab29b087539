"""The Swagger UI page, with a way in for an anonymous visitor (see integrations.api.docs)."""

from urllib.parse import urlencode

from django.contrib import admin
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.exceptions import NotAuthenticated


class ApiDocsView(SpectacularSwaggerView):
    """When the docs are not public, an anonymous visitor gets a page that says how to get in rather
    than DRF's bare "401 Unauthorized"."""

    def handle_exception(self, exc):
        if not isinstance(exc, NotAuthenticated):
            return super().handle_exception(exc)
        request = self.request
        context = {
            **admin.site.each_context(request),
            "title": _("API documentation"),
            "login_url": f"{reverse('admin:login')}?{urlencode({'next': request.path})}",
            "schema_url": request.build_absolute_uri(reverse("schema")),
        }
        response = render(request, "api/docs_sign_in.html", context, status=401)
        response["WWW-Authenticate"] = "Token"
        return response
