"""Adapters: one class per provider, behind one interface per domain.

The registry is data: each domain app's config (`integrations.domain.DomainConfig`) declares
`adapters = {code: "dotted.path.Class"}` and the classes are imported only when a row needs one. A
class carries its metadata (label, kind, credential fields and which of them are secret, health
check, timeout), and the admin, the redaction and the health checks read it from there.
"""

from dataclasses import dataclass, field
from functools import cached_property

from django.utils.module_loading import import_string

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
    """How a provider is checked: an HTTP GET of `path` (relative to base URL) expecting `status`."""

    path: str = "health"
    timeout: float = 5.0
    expected_status: int = 200
    degraded_after: float | None = None  # seconds; None means 60% of the timeout


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

    def check_health(self):
        """Probe the provider once: return normally when it answers as expected, raise a ProviderError
        when not. The caller measures the time. Adapters whose provider has no health URL override this
        (an SMM panel is checked with a `balance` call)."""
        from .errors import ProviderUnavailable

        spec = self.meta.health
        response = self.client.request(
            "GET", spec.path, timeout=spec.timeout, retries=0, raise_for_status=False, breaker=False
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
