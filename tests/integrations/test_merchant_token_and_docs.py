"""Issue 11, point 13: `create_merchant` prints a token a script can take as is, and the API's schema
and docs are public only when API_DOCS_PUBLIC says so (by default in development only)."""

import io
import re

import pytest
from django.core.management import call_command
from django.utils import translation
from rest_framework.test import APIClient

from ..conftest import client_for
from .test_settings import environment, manage, production  # noqa: F401 - `environment` is a fixture


def authenticates(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/me/").status_code == 200


@pytest.mark.parametrize("language", ["en", "ar"])
def test_the_last_line_of_create_merchant_is_the_token_alone(db, language):
    out = io.StringIO()
    with translation.override(language):
        call_command("create_merchant", f"shop-{language}", stdout=out)
    output = out.getvalue()
    last_line = output.splitlines()[-1]
    # Nothing around it: no bidirectional marks, no words, no spaces.
    assert re.fullmatch(r"[0-9a-f]{40}", last_line), repr(last_line)
    assert authenticates(last_line.strip())
    assert authenticates(output.split()[-1])  # the script that copies the last word


# --- schema and docs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_docs_need_an_authenticated_user_when_not_public(merchant, settings, path):
    settings.API_DOCS_PUBLIC = False
    anonymous = APIClient(HTTP_ACCEPT_LANGUAGE="en").get(path)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
    assert b"paths" not in anonymous.content and b"swagger" not in anonymous.content.lower()
    assert client_for(merchant).get(path).status_code == 200

    session = APIClient()
    session.force_login(merchant)
    assert session.get(path).status_code == 200


def test_the_docs_page_tells_an_anonymous_visitor_how_to_get_in(db, settings):
    settings.API_DOCS_PUBLIC = False
    page = APIClient(HTTP_ACCEPT_LANGUAGE="en").get("/api/docs/").content.decode()
    assert "The API documentation is for authenticated users." in page
    assert 'href="/admin/login/?next=%2Fapi%2Fdocs%2F"' in page
    assert 'Authorization: Token &lt;your API token&gt;" http://testserver/api/schema/' in page


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_docs_are_open_when_public(db, settings, path):
    settings.API_DOCS_PUBLIC = True
    assert APIClient().get(path).status_code == 200


PROBE = "from django.conf import settings; print(settings.API_DOCS_PUBLIC)"


@pytest.mark.parametrize(("debug", "expected"), [("off", "False"), ("on", "True")])
def test_docs_are_public_by_default_only_in_development(environment, debug, expected):  # noqa: F811
    result = manage({**production(environment), "DEBUG": debug}, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected
