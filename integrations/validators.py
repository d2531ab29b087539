import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _


def validate_provider_url(value):
    """A provider's base URL: http(s), well formed, and (outside sandbox mode) not a private address."""
    URLValidator(schemes=["http", "https"])(value)
    if getattr(settings, "PROVIDER_URL_ALLOW_PRIVATE", False):
        return
    host = urlsplit(value).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return  # unresolvable now; the health check will say so
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved:
            raise ValidationError(_("The provider URL points at a private or local address."), code="private")
