"""Adapters: one class per provider, behind one interface per domain.

The registry is data: each domain app's config (`integrations.domain.DomainConfig`) declares
`adapters = {code: "dotted.path.Class"}` and the classes are imported only when a row needs one. A
class carries its metadata (label, kind, credential fields and which of them are secret, health
check, timeout), and the admin, the redaction and the health checks read it from there.
"""

from dataclasses import dataclass, field, replace
from functools import cached_property

from django.core.exceptions import ValidationError
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from .domain import domain_configs
from .errors import UnknownAdapter


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str = ""
    secret: bool = True
    required: bool = True


@dataclass(frozen=True)
class HealthCheck:
    """How a provider is checked: an HTTP GET of `path` (relative to base URL, or an absolute URL)
    expecting `status`."""

    path: str = "health"
    timeout: float = 5.0
    expected_status: int = 200
    degraded_after: float | None = None  # seconds; None means 60% of the timeout


# A row's configuration may override its adapter's check: the seed's probes are not always under the
# API's base URL (Almadar's SMS API is sms.almadar.ly, its health URL api.almadar.ly/health), and each
# provider has its own timeout (Moamalat 5000 ms, Amyal 3000 ms, Almadar 2000 ms).
HEALTH_URL = "health_url"  # an absolute http(s) URL, checked like a provider URL
HEALTH_TIMEOUT_MS = "health_timeout_ms"
LEGACY_HEALTH_TIMEOUT = "health_timeout"  # seconds: read when health_timeout_ms is not set
MAX_HEALTH_TIMEOUT_MS = 120_000


def row_health(spec, configuration):
    """`spec` (an adapter's `meta.health`) with the overrides of a row's `configuration`. Raises
    ValidationError when an override is unusable."""
    from .validators import validate_http_provider_url

    config = configuration or {}
    changes = {}
    url = config.get(HEALTH_URL)
    if url not in (None, ""):
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise ValidationError(_("%(key)s must be an absolute http:// or https:// URL.") % {"key": HEALTH_URL},
                                  code="health_url")
        try:
            validate_http_provider_url(url)
        except ValidationError as exc:
            raise ValidationError(f"{HEALTH_URL}: {'; '.join(exc.messages)}", code="health_url") from None
        changes["path"] = url
    key, scale = (HEALTH_TIMEOUT_MS, 1000) if config.get(HEALTH_TIMEOUT_MS) not in (None, "") else (
        LEGACY_HEALTH_TIMEOUT, 1)
    raw = config.get(key)
    if raw not in (None, ""):
        try:
            ms = float(raw) * 1000 / scale
        except (TypeError, ValueError):
            ms = None
        if isinstance(raw, bool) or ms is None or not 0 < ms <= MAX_HEALTH_TIMEOUT_MS:
            raise ValidationError(
                _("%(key)s must be a number of milliseconds between 1 and %(max)d.")
                % {"key": HEALTH_TIMEOUT_MS, "max": MAX_HEALTH_TIMEOUT_MS},
                code="health_timeout",
            )
        changes["timeout"] = ms / 1000
    return replace(spec, **changes) if changes else spec


@dataclass(frozen=True)
class ProviderMeta:
    label: str
    kind: str
    credentials: tuple[CredentialField, ...] = ()
    health: HealthCheck = field(default_factory=HealthCheck)
    timeout: float = 10.0
    sandbox_path: str = ""  # path under SANDBOX_BASE_URL that the demo data points this code at
    schemes: tuple[str, ...] = ("http", "https")  # what its base URL may start with: its transport's

    @property
    def secret_fields(self):
        return tuple(f.name for f in self.credentials if f.secret)


class Adapter:
    """Base of every adapter. Subclasses set `meta` and implement their domain's interface."""

    meta: ProviderMeta = ProviderMeta(label="", kind="")

    def __init__(self, integration):
        self.integration = integration

    @cached_property
    def client(self):
        from .http import ProviderClient

        return ProviderClient(self.integration)

    @property
    def credentials(self):
        return self.integration.credentials or {}

    @property
    def config(self):
        return self.integration.configuration or {}

    probe_timeout = None  # set by `probe_health`: what the health round leaves this probe

    @property
    def health(self):
        """This row's health check: `meta.health` with the row's overrides (see `row_health`)."""
        return row_health(self.meta.health, self.config)

    def probe_health(self, timeout):
        """The health round's probe: `check_health()` with every call bounded by `timeout` seconds
        and none retried. A row's `health_url` is probed with a GET whatever the adapter's own check.

        The round gives each probe the least of its own timeout and the time left in the round: an
        adapter's check made of ordinary calls (an SMM panel's `balance`, 30 s and retried) would
        otherwise keep its thread running long after the round has recorded it as an error."""
        from .http import ProviderClient

        self.probe_timeout = timeout
        self.client = ProviderClient(self.integration, timeout=timeout, retries=0)  # instead of the cached one
        if self.config.get(HEALTH_URL):
            return Adapter.check_health(self)
        return self.check_health()

    def check_health(self):
        """Probe the provider once: return normally when it answers as expected, raise a ProviderError
        when not. The caller measures the time. Adapters whose provider has no health URL override this
        (an SMM panel is checked with a `balance` call)."""
        from .errors import ProviderUnavailable

        try:
            spec = self.health
        except ValidationError as exc:
            # A misconfigured row is an error of its check, never a crash of the round.
            raise ProviderUnavailable(
                _("The health check is misconfigured: %s") % "; ".join(exc.messages), sent=False
            ) from None
        timeout = min(spec.timeout, self.probe_timeout) if self.probe_timeout else spec.timeout
        response = self.client.request(
            "GET", spec.path, timeout=timeout, retries=0, raise_for_status=False, breaker=False
        )
        if response.status_code != spec.expected_status:
            raise ProviderUnavailable(f"HTTP {response.status_code}", status_code=response.status_code)

    def handle_webhook(self, event):
        """Move domain state forward from a verified, stored WebhookEvent. Domain adapters override."""
        raise NotImplementedError(f"{type(self).__name__} does not accept webhooks")

    def verify_webhook(self, request):
        """Return None to use the standard HMAC scheme, or True/False to decide here."""
        return None


def registered_codes():
    codes = {}
    for config in domain_configs():
        codes.update(config.adapters)
    return codes


def adapter_class(code):
    try:
        path = registered_codes()[code]
    except KeyError:
        raise UnknownAdapter(f"No adapter is registered under the code {code!r}.") from None
    return import_string(path)


def adapter_for(integration):
    return adapter_class(integration.code)(integration)


def code_choices():
    return sorted((code, adapter_class(code).meta.label or code) for code in registered_codes())
