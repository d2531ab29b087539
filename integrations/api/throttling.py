from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from integrations.cache_outage import CACHE_ERRORS, cache_down


class WriteRateThrottle(UserRateThrottle):
    """Throttle writes only: merchants may poll freely, but not create orders in a tight loop."""

    scope = "writes"

    def get_rate(self):
        # DRF copies DEFAULT_THROTTLE_RATES into a class attribute at import time, so a changed
        # setting (override_settings, a reloaded configuration) would be ignored; read it now instead.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(_("No default throttle rate set for '%s' scope") % self.scope) from None

    def allow_request(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS as exc:
            # The counters are in the cache: without it, writes go unthrottled rather than all refused
            # (orders are still exactly-once; the limit only spares the panels a merchant's tight loop).
            cache_down("the write throttle", exc, "lets writes through unthrottled")
            return True
