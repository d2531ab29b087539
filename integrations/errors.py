"""The one exception family every adapter raises. The provider's own message is kept."""

from django.utils.translation import gettext_lazy as _

from .redaction import redact_text


class ProviderError(Exception):
    """Something went wrong talking to a provider. `transient` errors may be retried later.

    `sent` says whether the request left us: False when it certainly did not (connection refused,
    name not resolved, circuit open, destination refused), so a write may be queued and tried again
    without risk of doing it twice; None when we cannot tell; True when the provider received it.
    `outage` says whether the error speaks of the provider's availability, and so counts towards
    opening its circuit breaker: a refusal or a SOAP fault is an answer, not an outage."""

    transient = False
    outage = False
    sent = None
    default_message = _("The provider reported an error.")

    def __init__(self, message=None, *, provider_message=None, status_code=None, payload=None, sent=None):
        self.provider_message = provider_message
        self.status_code = status_code
        self.payload = payload
        if sent is not None:
            self.sent = sent
        super().__init__(str(message or provider_message or self.default_message))

    def mask(self, secrets):
        """Mask `secrets` (a row's `secret_values`) in what this error says, in place; returns it.
        A provider may quote the key it was sent, and not every transport masks answers itself."""
        if secrets:
            if self.provider_message:
                self.provider_message = redact_text(str(self.provider_message), secrets)
            self.args = tuple(redact_text(a, secrets) if isinstance(a, str) else a for a in self.args)
        return self


class ProviderAuthError(ProviderError):
    default_message = _("The provider rejected our credentials.")


class ProviderValidationError(ProviderError):
    default_message = _("The provider rejected the request as invalid.")


class ProviderRateLimited(ProviderError):
    transient = True
    outage = True
    default_message = _("The provider is rate limiting us.")

    def __init__(self, *args, retry_after=None, **kwargs):
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class ProviderUnavailable(ProviderError):
    transient = True
    outage = True
    default_message = _("The provider is unavailable.")


class CircuitOpen(ProviderUnavailable):
    sent = False
    default_message = _("Calls to this provider are paused after repeated failures.")


class ForbiddenDestination(ProviderError):
    """The provider's address (or one its name resolves to, or a redirect's) is not a public one.
    Checked when connecting, so a name that resolved to a public address at save time and to an
    internal one later (DNS rebinding) is still refused."""

    sent = False
    default_message = _("The provider's address is not a public internet address; the call was not made.")


class UnknownOutcome(ProviderError):
    """A write may or may not have reached the provider (timeout after sending). Never retry blindly."""

    transient = True
    outage = True
    default_message = _("The provider did not answer in time; the outcome is unknown.")


class ProviderProtocolError(ProviderError):
    """The provider answered something we cannot read (HTML instead of JSON, a missing field)."""

    transient = True
    default_message = _("The provider sent an answer we could not understand.")


class UnknownAdapter(LookupError):
    pass


def public_message(error):
    """What a merchant may read of a provider error (the API's 502/503 `detail`, a stored sync error).

    The provider's own message where it sent one (its JSON `error`, an SMTP or FTP reply), else the
    hub's sentence for what happened, without what the exception quotes besides: the text of a
    socket or HTTP library fault (addresses, ports, library classes), an HTML page's title or the
    start of an answer we could not read. Those would let a URL typed by a merchant scan ports or
    read what the hub can reach; they stay in the exception, for the call's log row and operators."""
    if error.provider_message:
        return redact_text(str(error.provider_message))[:1000]
    text = str(error)
    cause = error.__cause__
    if isinstance(cause, ProviderError):
        # A wrapper (an unknown outcome of an idempotent call, reported as unavailable).
        return public_message(cause) if text == str(cause) else text
    if cause is not None:
        fault = str(cause).strip()
        at = text.find(": " + fault[:20]) if fault else -1
        return text[:at] + "." if at > 0 else text
    if error.status_code is not None:
        # Composed from an answer that carried no message of its own (a page, a redirect, bytes).
        return str(error.default_message)
    return text
