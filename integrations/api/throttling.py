from rest_framework.throttling import UserRateThrottle


class WriteRateThrottle(UserRateThrottle):
    """Throttle writes only: merchants may poll freely, but not create orders in a tight loop."""

    scope = "writes"

    def allow_request(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return super().allow_request(request, view)
