"""Staff users holding exactly the permissions a test names (issue 11, points 7 and 8)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import client_for


def staff_with(username, *perms):
    """A staff user (not a superuser) holding the permissions `perms` ("app_label.codename")."""
    user_model = get_user_model()
    user = user_model.objects.create_user(username, f"{username}@example.ly", None, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return user_model.objects.get(pk=user.pk)  # fresh: no permission cache from before the grants


def admin_client_for(user):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")  # messages asserted in English whatever the catalogues hold
    client.force_login(user)
    return client


def api_client_for(user) -> APIClient:
    client = client_for(user)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # messages asserted in English
    return client
