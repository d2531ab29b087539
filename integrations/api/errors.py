from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from integrations.errors import ProviderError, public_message

from .naming import camel


def exception_handler(exc, context):
    """DRF's handler, plus provider errors as 502/503 with the provider's message (never a traceback,
    never the raw fault or answer behind it: see `public_message`), and a 400's field errors under
    the API's camelCase names."""
    if isinstance(exc, ProviderError):
        code = status.HTTP_503_SERVICE_UNAVAILABLE if exc.transient else status.HTTP_502_BAD_GATEWAY
        return Response({"detail": public_message(exc), "providerError": type(exc).__name__}, status=code)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        response.data = field_errors(response.data)
    return response


def field_errors(errors):
    """A 400's top-level keys are the names of the refused fields or query parameters: each under its
    camelCase name, the one the API documents and reads (a snake_case spelling the client sent is
    read as it), and DRF's `non_field_errors` as `nonFieldErrors`. Deeper keys are left as they are:
    a nested serializer's are camelCase already, a dictionary field's are the client's own keys."""
    return {"nonFieldErrors" if key == api_settings.NON_FIELD_ERRORS_KEY else camel(key): messages
            for key, messages in errors.items()}


def not_found(request, exception=None):
    """The site's 404 view. Under /api/ no route matched (`/orders/1.5`, a typo): a client there parses
    JSON, so it gets the API's error shape rather than an HTML page."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": _("Not found: no API endpoint has this address.")}, status=404)
    return defaults.page_not_found(request, exception)
