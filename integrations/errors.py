"""The one exception family every adapter raises. The provider's own message is kept."""

from django.utils.translation import gettext_lazy as _


class ProviderError(Exception):
    """Something went wrong talking to a provider. `transient` errors may be retried later."""

    transient = False
    default_message = _("The provider reported an error.")

    def __init__(self, message=None, *, provider_message=None, status_code=None, payload=None):
        self.provider_message = provider_message
        self.status_code = status_code
        self.payload = payload
        super().__init__(str(message or provider_message or self.default_message))


class ProviderAuthError(ProviderError):
    default_message = _("The provider rejected our credentials.")


class ProviderValidationError(ProviderError):
    default_message = _("The provider rejected the request as invalid.")


class ProviderRateLimited(ProviderError):
    transient = True
    default_message = _("The provider is rate limiting us.")

    def __init__(self, *args, retry_after=None, **kwargs):
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class ProviderUnavailable(ProviderError):
    transient = True
    default_message = _("The provider is unavailable.")


class CircuitOpen(ProviderUnavailable):
    default_message = _("Calls to this provider are paused after repeated failures.")


class UnknownOutcome(ProviderError):
    """A write may or may not have reached the provider (timeout after sending). Never retry blindly."""

    transient = True
    default_message = _("The provider did not answer in time; the outcome is unknown.")


class ProviderProtocolError(ProviderError):
    """The provider answered something we cannot read (HTML instead of JSON, a missing field)."""

    transient = True
    default_message = _("The provider sent an answer we could not understand.")


class UnknownAdapter(LookupError):
    pass
