import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from integrations import crypto
from integrations.models import ExternalIntegration


def raw_credentials(pk):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT credentials FROM external_integrations WHERE id = %s",
            [pk.hex if connection.vendor == "sqlite" else pk],
        )
        return cur.fetchone()[0]


def test_credentials_are_not_stored_in_plaintext(make_provider):
    provider = make_provider()
    raw = raw_credentials(provider.pk)
    assert "sk_live_ABCDEF123456" not in raw and "whsec" not in raw and "api_key" not in raw
    assert crypto.decrypt(raw).startswith("{")
    assert ExternalIntegration.objects.get(pk=provider.pk).credentials["api_key"] == "sk_live_ABCDEF123456"


@pytest.mark.parametrize("value", [{}, {"pin": 0}, {"flag": False}, {"note": ""}])
def test_falsy_values_round_trip_as_themselves(make_provider, value):
    provider = make_provider(credentials=value)
    assert ExternalIntegration.objects.get(pk=provider.pk).credentials == value


def test_a_wrong_key_raises_instead_of_returning_ciphertext(make_provider, settings):
    provider = make_provider()
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError):
        ExternalIntegration.objects.get(pk=provider.pk)


def test_rotation_reencrypts_with_the_newest_key_and_the_old_key_can_go(make_provider, settings):
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    first, second = make_provider(), make_provider()
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_credentials_key")
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    for provider in (first, second):
        assert ExternalIntegration.objects.get(pk=provider.pk).credentials["api_key"] == "sk_live_ABCDEF123456"
        assert Fernet(new_key).decrypt(raw_credentials(provider.pk).encode())


def test_rotation_without_the_old_key_changes_nothing(make_provider, settings):
    provider = make_provider()
    before = raw_credentials(provider.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(CommandError, match="Nothing was changed"):
        call_command("rotate_credentials_key")
    assert raw_credentials(provider.pk) == before


def test_credentials_are_not_in_fixtures(make_provider):
    from django.core import serializers

    provider = make_provider()
    dumped = serializers.serialize("json", [provider])
    assert "sk_live" not in dumped and "<encrypted>" in dumped
