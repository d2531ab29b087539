"""Brute force (issue 11, point 9): failed API token authentications are limited per source address,
admin sign-ins per account and address (django-axes); both refuse with 429, say why, and log it."""

import datetime as dt
import logging
import time

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

WRONG = "Token 0123456789abcdef0123456789abcdef01234567"
ATTACKER, OTHER = "203.0.113.7", "198.51.100.9"


def token_client(address, header, **extra):
    client = APIClient(REMOTE_ADDR=address, **extra)
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def right(user):
    return f"Token {user.auth_token.key}"


# --- API tokens -------------------------------------------------------------------------------------

def test_wrong_tokens_from_one_address_end_in_429_with_retry_after(merchant, settings, caplog):
    limit, cooloff = settings.API_TOKEN_FAILURE_LIMIT, settings.API_TOKEN_FAILURE_COOLOFF_SECONDS
    assert 3 <= limit <= 50 and cooloff >= 60  # the defaults: a typo is forgiven, a guessing loop is not
    attacker = token_client(ATTACKER, WRONG, HTTP_ACCEPT_LANGUAGE="en")
    assert [attacker.get("/api/me/").status_code for _ in range(limit - 1)] == [401] * (limit - 1)
    with caplog.at_level(logging.INFO):
        locked = attacker.get("/api/me/")
    assert locked.status_code == 429
    assert 0 < int(locked["Retry-After"]) <= cooloff
    assert "failed" in locked.json()["detail"]
    assert any(r.levelno == logging.WARNING and ATTACKER in r.getMessage() for r in caplog.records), caplog.text
    assert WRONG.split()[1] not in caplog.text  # the guessed token itself is never logged

    # Once locked, a token from that address is not even checked: a right one is refused too, or the
    # difference between 429 and 200 would tell the attacker which guess was right.
    again = token_client(ATTACKER, right(merchant)).get("/api/me/")
    assert again.status_code == 429 and int(again["Retry-After"]) <= cooloff
    # Another address is unaffected, with a right token and with a wrong one.
    assert token_client(OTHER, right(merchant)).get("/api/me/").status_code == 200
    assert token_client(OTHER, WRONG).get("/api/me/").status_code == 401


def test_a_right_token_in_between_does_not_reset_the_count(merchant, settings):
    # Otherwise a merchant's own valid token would buy unlimited guesses at others'.
    settings.API_TOKEN_FAILURE_LIMIT = 3
    wrong, good = token_client(ATTACKER, WRONG), token_client(ATTACKER, right(merchant))
    assert [wrong.get("/api/me/").status_code for _ in range(2)] == [401, 401]
    assert [good.get("/api/me/").status_code for _ in range(5)] == [200] * 5  # successes are not limited
    assert wrong.get("/api/me/").status_code == 429


def test_requests_without_a_token_are_not_counted(merchant, settings):
    settings.API_TOKEN_FAILURE_LIMIT = 3
    anonymous = APIClient(REMOTE_ADDR=ATTACKER)
    assert {anonymous.get("/api/me/").status_code for _ in range(6)} == {401}
    assert token_client(ATTACKER, right(merchant)).get("/api/me/").status_code == 200


def test_the_lock_lifts_after_the_cool_off(merchant, settings):
    settings.API_TOKEN_FAILURE_LIMIT, settings.API_TOKEN_FAILURE_COOLOFF_SECONDS = 2, 1
    attacker = token_client(ATTACKER, WRONG)
    # Failures are counted per window of the cool-off's length: start at the beginning of one, so
    # that a slow machine does not spread the two failures over two windows.
    time.sleep(1 - time.time() % 1 + 0.01)
    assert [attacker.get("/api/me/").status_code for _ in range(2)] == [401, 429]
    time.sleep(1.2)
    assert token_client(ATTACKER, right(merchant)).get("/api/me/").status_code == 200


def test_behind_trusted_proxies_the_forwarded_client_address_counts(merchant, settings):
    settings.API_TOKEN_FAILURE_LIMIT, settings.TRUSTED_PROXY_COUNT = 2, 1
    proxy = "10.0.0.2"  # every request arrives from the TLS proxy
    attacker = token_client(proxy, WRONG, HTTP_X_FORWARDED_FOR=f"1.2.3.4, {ATTACKER}")
    assert [attacker.get("/api/me/").status_code for _ in range(2)] == [401, 429]
    # A merchant behind the same proxy is not locked out by the attacker; the spoofable left part of
    # X-Forwarded-For is not what counts.
    merchant_client = token_client(proxy, right(merchant), HTTP_X_FORWARDED_FOR=f"{ATTACKER}, {OTHER}")
    assert merchant_client.get("/api/me/").status_code == 200


def test_without_trusted_proxies_x_forwarded_for_is_ignored(merchant, settings):
    settings.API_TOKEN_FAILURE_LIMIT = 2
    assert settings.TRUSTED_PROXY_COUNT == 0
    codes = [token_client(ATTACKER, WRONG, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}").get("/api/me/").status_code
             for n in range(2)]
    assert codes == [401, 429]


def test_with_the_cache_down_token_authentication_still_answers(merchant, settings, caplog):
    # A real Redis client against a port where nothing listens: the cache is down, not mocked.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0"}}
    with caplog.at_level(logging.WARNING):
        assert token_client(ATTACKER, right(merchant)).get("/api/me/").status_code == 200
        assert token_client(ATTACKER, WRONG).get("/api/me/").status_code == 401
    assert "cache" in caplog.text


# --- admin sign-in ------------------------------------------------------------------------------------

def sign_in(address, username, password, language="en"):
    client = Client(REMOTE_ADDR=address, HTTP_ACCEPT_LANGUAGE=language)
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password, "next": "/admin/"})


@pytest.fixture
def second_staff(django_user_model):
    return django_user_model.objects.create_superuser("ops2", "ops2@example.ly", "pw-ops2-456")


def test_admin_sign_in_locks_after_the_limit_with_a_message(staff, second_staff, settings, caplog):
    limit = settings.AXES_FAILURE_LIMIT
    assert 3 <= limit <= 10 and settings.AXES_COOLOFF_TIME  # a cool-off, never a lock an attacker can make permanent
    for _ in range(limit - 1):
        response = sign_in(ATTACKER, "ops", "wrong-password")
        assert response.status_code == 200 and "correct username and password" in response.content.decode()
    with caplog.at_level(logging.WARNING):
        locked = sign_in(ATTACKER, "ops", "wrong-password")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Sign-in locked" in page and "Too many failed sign-ins" in page and "minutes" in page
    assert 0 < int(locked["Retry-After"]) <= settings.AXES_COOLOFF_TIME.total_seconds()
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("ops" in line and ATTACKER in line and "Locking out" in line for line in lines), lines
    assert "wrong-password" not in caplog.text

    # The right password from that address is refused while locked.
    assert sign_in(ATTACKER, "ops", "pw-ops-123").status_code == 429
    # Another user from another address signs in; so does the locked account from elsewhere (the lock
    # is per account and address, so an attacker cannot lock the real operators out).
    assert sign_in(OTHER, "ops2", "pw-ops2-456").status_code == 302
    assert sign_in(OTHER, "ops", "pw-ops-123").status_code == 302


def test_the_lockout_page_is_arabic_and_right_to_left(staff, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        locked = sign_in(ATTACKER, "ops", "wrong-password", language="ar")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert 'dir="rtl"' in page and 'lang="ar"' in page


def test_the_admin_lock_lifts_after_the_cool_off(staff, settings):
    from axes.models import AccessAttempt

    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(ATTACKER, "ops", "wrong-password")
    assert sign_in(ATTACKER, "ops", "pw-ops-123").status_code == 429
    # The attempts age past the cool-off (as time would pass) and the right password works again.
    past = timezone.now() - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    AccessAttempt.objects.update(attempt_time=past)
    assert sign_in(ATTACKER, "ops", "pw-ops-123").status_code == 302


def test_a_successful_sign_in_resets_the_count(staff, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        sign_in(ATTACKER, "ops", "wrong-password")
    assert sign_in(ATTACKER, "ops", "pw-ops-123").status_code == 302
    assert sign_in(ATTACKER, "ops", "wrong-password").status_code == 200  # counting starts again
