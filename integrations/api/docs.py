"""Who may read the API's schema and docs (drf-spectacular's SERVE_PERMISSIONS, so every schema view,
present and future, asks it).

The schema lists every route, parameter and error of the hub: a map worth keeping from anonymous
visitors in production. Merchants read it with their token (or a signed-in session); development
keeps it open. API_DOCS_PUBLIC (default: DEBUG) decides, read at each request.

(No import of drf_spectacular.views here: that module imports this one while it is being defined.)"""

from django.conf import settings
from rest_framework.permissions import BasePermission, IsAuthenticated


class ApiDocsAccess(BasePermission):
    def has_permission(self, request, view):
        return settings.API_DOCS_PUBLIC or IsAuthenticated().has_permission(request, view)
