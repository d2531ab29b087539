"""A provider's URL, checked when it is saved (the transports check the address again when they
connect: see `integrations.addresses`)."""

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext as _

from . import addresses, errors

# One scheme per transport of the core: HTTP(S) and SOAP, FTP(S), WebSocket, SMTP (S3 is HTTPS).
TRANSPORT_SCHEMES = ("http", "https", "ftp", "ftps", "ws", "wss", "smtp", "smtps")
DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ftps": 21, "ws": 80, "wss": 443, "smtp": 25, "smtps": 465}


@deconstructible
class ProviderURLValidator:
    """Well formed, of an allowed scheme, with nothing a URL parser could read two ways (a
    backslash, credentials before an `@`, control characters or spaces), and, unless private
    addresses are allowed, a host name that resolves to public addresses only."""

    def __init__(self, schemes=TRANSPORT_SCHEMES):
        self.schemes = tuple(schemes)

    def __call__(self, value):
        value = str(value)
        # urllib3 connects to the host before a backslash while urlsplit reads the host after an
        # "@": refuse anything two parsers could disagree about.
        if "\\" in value or any(ord(ch) < 33 or ord(ch) == 127 for ch in value):
            raise ValidationError(_("The provider URL may not contain backslashes, spaces or control characters."),
                                  code="invalid")
        URLValidator(schemes=list(self.schemes))(value)
        parts = urlsplit(value)
        if "@" in parts.netloc:
            raise ValidationError(_("Put the provider's credentials in its credentials, not in the URL."),
                                  code="userinfo")
        try:
            port = parts.port or DEFAULT_PORTS.get(parts.scheme, 443)
        except ValueError:  # out of range: a form error, not a crash
            raise ValidationError(_("The provider URL's port must be between 1 and 65535."), code="port") from None
        if addresses.private_allowed():
            return
        try:
            addresses.resolve(parts.hostname, port)
        except errors.ForbiddenDestination:
            raise ValidationError(_("The provider URL points at a private or local address."), code="private") from None
        except errors.ProviderError:
            raise ValidationError(_("The provider's host name could not be resolved."), code="unresolved") from None

    def __eq__(self, other):
        return isinstance(other, ProviderURLValidator) and self.schemes == other.schemes


validate_provider_url = ProviderURLValidator()
validate_http_provider_url = ProviderURLValidator(schemes=("http", "https"))
