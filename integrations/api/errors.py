from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from integrations.errors import ProviderError, public_message


def exception_handler(exc, context):
    """DRF's handler, plus provider errors as 502/503 with the provider's message (never a traceback,
    never the raw fault or answer behind it: see `public_message`)."""
    if isinstance(exc, ProviderError):
        code = status.HTTP_503_SERVICE_UNAVAILABLE if exc.transient else status.HTTP_502_BAD_GATEWAY
        return Response({"detail": public_message(exc), "provider_error": type(exc).__name__}, status=code)
    return drf_exception_handler(exc, context)


def not_found(request, exception=None):
    """The site's 404 view. Under /api/ no route matched (`/orders/1.5`, a typo): a client there parses
    JSON, so it gets the API's error shape rather than an HTML page."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": _("Not found: no API endpoint has this address.")}, status=404)
    return defaults.page_not_found(request, exception)
