"""Encryption at rest for provider credentials.

A small field on `cryptography`'s MultiFernet instead of django-fernet-fields (dead since Django 4)
or django-fernet-encrypted-fields (derives keys from SECRET_KEY, returns ciphertext on a wrong key,
stores falsy values as NULL). Keys come from FIELD_ENCRYPTION_KEYS, newest first: the first key
encrypts, every key decrypts, so a key can be rotated in without downtime and retired after
`manage.py rotate_credentials_key` has re-encrypted every row.
"""

import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class DecryptionError(ImproperlyConfigured):
    """A stored value cannot be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet_for(keys):
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a key that is not a url-safe base64 32-byte Fernet key."
        ) from exc


def fernet():
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        # Never hand back the ciphertext as if it were the value.
        raise DecryptionError(
            "Stored credentials cannot be decrypted with FIELD_ENCRYPTION_KEYS: "
            "a key was removed before `rotate_credentials_key` re-encrypted the rows."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token with the newest key (raises DecryptionError if no key opens it)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError("A stored value cannot be decrypted with any configured key.") from exc


class EncryptedJSONField(models.TextField):
    """A JSON value stored as one Fernet token. `{}`, `0`, `False` and `""` round-trip as themselves."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", dict)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is dict:
            del kwargs["default"]
        return name, path, args, kwargs

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return json.loads(decrypt(value))

    def to_python(self, value):
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def get_prep_value(self, value):
        if value is None:
            return None
        return encrypt(json.dumps(value, sort_keys=True, ensure_ascii=False))

    def value_to_string(self, obj):
        # Fixtures and dumpdata never see plaintext credentials.
        return "<encrypted>"

    def get_lookup(self, lookup_name):
        # A ciphertext is randomised: comparing it with anything is meaningless.
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)


class EncryptedTextField(models.TextField):
    """A text stored as one Fernet token; "" is stored as "" (it hides nothing and saves a token)."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)

    def value_to_string(self, obj):
        return "<encrypted>"

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)
