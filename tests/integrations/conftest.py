import pytest
from django.apps import apps

from integrations.models import ExternalIntegration, Kind


@pytest.fixture(autouse=True)
def echo_adapter():
    config = apps.get_app_config("integrations")
    config.adapters = {**config.adapters, "echo": "tests.integrations.fakes.EchoAdapter"}
    yield
    config.adapters = {k: v for k, v in config.adapters.items() if k != "echo"}


@pytest.fixture
def make_provider(db):
    def make(base_url="http://127.0.0.1:9/", **extra):
        defaults = dict(
            kind=Kind.ANALYTICS, code="echo", name=f"echo-{ExternalIntegration.objects.count() + 1}",
            display_name="Echo", base_url=base_url,
            credentials={"api_key": "sk_live_ABCDEF123456", "webhook_secret": "whsec_TOPSECRET99", "username": "ops"},
        )
        defaults.update(extra)
        return ExternalIntegration.objects.create(**defaults)

    return make


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs ~0.2 s per user created or logged in; these tests check
    # behaviour, not the hasher.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
