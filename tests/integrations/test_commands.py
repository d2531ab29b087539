"""Management commands of the foundation: demo data and merchants.

(`rotate_credentials_key` is covered in test_crypto.py, `manage_log_partitions` in test_partitions.py.)"""

import io

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpRequest
from django.test import Client
from django.utils import translation
from rest_framework.authtoken.models import Token

from integrations.models import ExternalIntegration

from ..conftest import client_for

# Rows a command run may legitimately leave behind (task results of eager tasks, sessions, admin log).
VOLATILE = {"django_celery_results", "sessions", "admin"}


def run(name, *args, **options):
    out = io.StringIO()
    with translation.override("en"):
        call_command(name, *args, stdout=out, **options)
    return out.getvalue()


def snapshot():
    User = get_user_model()
    integrations = []
    for row in ExternalIntegration.objects.order_by("pk"):
        values = {f.attname: getattr(row, f.attname) for f in ExternalIntegration._meta.concrete_fields}
        integrations.append(values)  # credentials decrypted: the same secrets, whatever the ciphertext
    return {
        "users": list(User.objects.order_by("pk").values()),
        "tokens": list(Token.objects.order_by("pk").values()),
        "integrations": integrations,
        "counts": {
            model._meta.label: model._default_manager.count()
            for model in apps.get_models()
            if model._meta.app_label not in VOLATILE and model._meta.managed
        },
    }


# --- load_demo_data -----------------------------------------------------------------------------------

def test_load_demo_data_twice_changes_nothing(db):
    first_output = run("load_demo_data")
    first = snapshot()
    assert first["counts"]["auth.User"] == 2 and first["counts"]["authtoken.Token"] == 1
    assert first["integrations"], "the demo has providers"
    second_output = run("load_demo_data")
    assert snapshot() == first
    token = Token.objects.get(user__username="demo-merchant").key
    for output in (first_output, second_output):
        assert "user admin  password admin" in output
        assert f"merchant: demo-merchant  API token {token}" in output


def test_the_printed_logins_work(db):
    output = run("load_demo_data")
    token = output.split("API token ", 1)[1].split()[0]
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    client = Client()
    # django-axes counts sign-ins per address, so authentication needs the request.
    assert client.login(request=HttpRequest(), username="admin", password="admin")
    assert client.get("/admin/").status_code == 200
    merchant = Token.objects.get(key=token).user
    assert merchant.username == "demo-merchant" and not merchant.is_staff
    me = client_for(merchant).get("/api/me/")
    assert me.json()["username"] == "demo-merchant"


def test_demo_providers_belong_to_the_demo_merchant_and_point_at_the_sandbox(db, settings):
    run("load_demo_data")
    merchant = get_user_model().objects.get(username="demo-merchant")
    providers = ExternalIntegration.objects.filter(owner=merchant)
    assert providers.exists()
    for provider in providers:
        assert provider.base_url.startswith(settings.SANDBOX_BASE_URL)
        provider.full_clean()  # a valid row: known adapter, the right kind, every required credential


def test_an_existing_admin_keeps_its_password_and_none_is_claimed(db):
    get_user_model().objects.create_superuser("admin", "root@example.ly", "a-real-password-42")
    output = run("load_demo_data")
    assert "password admin" not in output and "unchanged" in output
    assert get_user_model().objects.get(username="admin").check_password("a-real-password-42")


# --- create_merchant -------------------------------------------------------------------------------------

def test_create_merchant_creates_a_user_with_a_token(db):
    output = run("create_merchant", "shop-7", "--email", "owner@shop7.ly")
    user = get_user_model().objects.get(username="shop-7")
    token = Token.objects.get(user=user)
    assert output.splitlines() == ["Created merchant shop-7. Its API token is on the next line:", token.key]
    assert user.email == "owner@shop7.ly" and not user.is_staff and not user.has_usable_password()
    assert client_for(user).get("/api/me/").json()["username"] == "shop-7"


def test_a_duplicate_merchant_is_refused_and_nothing_changes(merchant):
    before = snapshot()
    with translation.override("en"), pytest.raises(CommandError) as info:
        call_command("create_merchant", "merchant-a", "--email", "new@example.ly", stdout=io.StringIO())
    assert str(info.value) == "A user named “merchant-a” already exists; nothing was changed."
    assert snapshot() == before


def test_a_staff_username_is_refused(staff):
    with translation.override("ar"), pytest.raises(CommandError, match="بالفعل"):
        call_command("create_merchant", "ops", stdout=io.StringIO())
    assert not Token.objects.filter(user=staff).exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["   "], "cannot be blank"),
        (["bad name!"], "Enter a valid username"),
        (["x" * 151], "at most 150 characters"),
        (["shop-8", "--email", "not-an-address"], "Enter a valid email address"),
    ],
)
def test_bad_input_is_refused_with_a_readable_error(db, args, fragment):
    with translation.override("en"), pytest.raises(CommandError) as info:
        call_command("create_merchant", *args, stdout=io.StringIO())
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert not get_user_model().objects.exists() and not Token.objects.exists()
