"""Isolation matrix (issue 11, point 14): every operation of the API's OpenAPI schema, tried against
merchant A's objects by

  (a) merchant B, who has objects of its own kind but none of A's;
  (b) a staff user holding no model permission at all;
  (c) an anonymous caller.

The operations are read from the schema drf-spectacular generates in-process, so an endpoint added
tomorrow is attacked without anyone writing a test for it; an operation whose path parameter names
an object this file cannot produce (PATH_OBJECTS) fails the test, which forces whoever adds it to say
which of A's objects it reaches.

Expected, the project's convention (smm/views.py, integrations/api/views.py): another merchant's
object answers exactly like an id that names nothing (404), never a 403 that would confirm it exists
and never any of its data; an operation the caller may not use at all answers 403 whatever the id.
Lists and filters show none of A's rows, creations cannot point at them, and after every attempt
every row A had is re-read from the database and must be unchanged, and no call may have left for
A's provider. Staff without permissions get what an ordinary merchant without objects gets. Without
authentication everything answers 401/403 except PUBLIC_OPERATIONS."""

import re

import pytest
import responses
from django.contrib.auth.models import Permission
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.conftest import client_for

from .world import PATH_OBJECTS, build_world, changes, missing_id, snapshot

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")

# Query parameters and body fields that point at one of A's objects.
REFERENCES = {
    "integration": lambda w: str(w.integration.pk),
    "provider": lambda w: w.provider.pk,
    "providerId": lambda w: w.provider.pk,
    "incident": lambda w: w.incident.pk,
    "order": lambda w: w.order.pk,
    "orderId": lambda w: w.order.pk,
    "serviceId": lambda w: w.service.service_id,
}
# Operations anyone may call without signing in: none. (The schema and the docs are not operations of
# the schema; they are checked below with API_DOCS_PUBLIC off, the production default. Webhooks are
# authenticated by their signature and have their own suite.)
PUBLIC_OPERATIONS = set()
NON_SCHEMA_PRIVATE = ["/api/schema/", "/api/docs/"]
# Where the hub would send A's key if an attacker could change A's provider URL.
ATTACKER_URL = "https://attacker.example/api/v2"

_PARAM = re.compile(r"\{(\w+)\}")


def operations(schema):
    return [(method, path, op) for path, item in schema["paths"].items() for method, op in item.items()
            if method in METHODS]


def _resolve(schema, node):
    while isinstance(node, dict) and "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def example(schema, node, world, name=""):
    """A value the schema accepts, where each reference names one of A's objects and each URL is the
    attacker's: the body an attacker would send."""
    node = _resolve(schema, node)
    if name in REFERENCES:
        return REFERENCES[name](world)
    for combinator in ("allOf", "oneOf", "anyOf"):
        if node.get(combinator):
            return example(schema, node[combinator][0], world, name)
    if "enum" in node:
        return next(v for v in node["enum"] if v is not None)
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        return {key: example(schema, sub, world, key) for key, sub in node.get("properties", {}).items()
                if not sub.get("readOnly")}
    if kind == "array":
        return [example(schema, node.get("items", {}), world)]
    if kind == "integer":
        return max(node.get("minimum", 100), 100)
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    lowered = name.lower()
    if node.get("format") == "uri" or lowered.endswith("url"):
        return ATTACKER_URL
    if node.get("format") == "decimal":
        return "1"
    if node.get("format") == "date-time":
        return "2030-01-01T00:00:00Z"
    if node.get("pattern") == r"^\d{2}/\d{2}/\d{4}$":
        return "01/01/2030"
    return "stolen-by-attacker"


def request_for(schema, method, path, op, world, ids):
    """(url, query, body) for one attempt: path parameters from `ids` (a function of the parameter's
    prefix and schema), references and URLs pointing at A's objects and the attacker."""
    url = path
    for match in _PARAM.finditer(path):
        prefix = path[: match.end()]
        spec = next((p["schema"] for p in op.get("parameters", []) if p["in"] == "path" and p["name"] == match[1]),
                    {})
        url = url.replace(match[0], str(ids(prefix, spec)), 1)
    query = {p["name"]: REFERENCES[p["name"]](world) for p in op.get("parameters", [])
             if p["in"] == "query" and p["name"] in REFERENCES}
    body = None
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = example(schema, content["application/json"]["schema"], world)
    return url, query, body


def send(client, method, url, query, body):
    if query:
        url = f"{url}?{'&'.join(f'{k}={v}' for k, v in query.items())}"
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


@pytest.fixture
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.fixture
def parties(django_user_model, merchant, other_merchant, settings):
    # PBKDF2 is slow on purpose and the hasher is not under test here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    before = snapshot()
    world = build_world(merchant)
    # A's rows: everything the world added, and A's account and token.
    world.rows = (snapshot().keys() - before.keys()) | {
        (django_user_model._meta.label, merchant.pk), ("authtoken.Token", merchant.auth_token.pk)}
    build_world(other_merchant, tag="bcanary22e1")
    staff = django_user_model.objects.create_user("bare-staff", "bare@example.ly", "pw-bare-staff", is_staff=True)
    assert not staff.user_permissions.exists() and not Permission.objects.filter(group__user=staff).exists()
    root = django_user_model.objects.create_superuser("root", "root@example.ly", "pw-root-123")
    attackers = {"merchant B": client_for(other_merchant), "staff without permissions": client_for(staff),
                 "anonymous": APIClient()}
    controls = {"owner": client_for(merchant), "superuser": client_for(root)}
    for client in [*attackers.values(), *controls.values()]:
        client.raise_request_exception = False  # a crash is an answer (500) to report with the others
    return world, attackers, controls


def _leaks(response, world, sent):
    text = response.content.decode(errors="replace")
    # An id the caller sent may come back in its own 400 ("not a valid choice"): that is not A's data.
    return sorted(m for m in world.markers if m in text and m not in sent)


def test_every_operation_keeps_merchants_apart(schema, parties, capsys):
    world, attackers, controls = parties
    ops = operations(schema)
    unmapped = sorted({path[: m.end()] for _, path, _ in ops for m in _PARAM.finditer(path)} - set(PATH_OBJECTS))
    assert not unmapped, (
        f"operations with a path parameter this matrix cannot fill: {unmapped}. Add to PATH_OBJECTS which of "
        "merchant A's objects the parameter names (and to world.build_world if it is a new kind of object)."
    )
    # The schema says which operations take no credentials (an empty security requirement): the same list.
    documented_public = {(path, method) for method, path, op in ops if {} in op.get("security", [{}])}
    assert documented_public == PUBLIC_OPERATIONS, f"operations the schema documents as public: {documented_public}"
    failures = []
    attempts = 0
    with responses.RequestsMock(assert_all_requests_are_fired=False) as outgoing:
        # Controls first: A's ids are right (the owner, or an operator for operator-only endpoints, reads them).
        for method, path, op in ops:
            if method != "get" or not _PARAM.search(path):
                continue
            url, query, _body = request_for(schema, method, path, op, world,
                                            lambda prefix, spec: PATH_OBJECTS[prefix](world))
            answers = [send(c, method, url, {}, None).status_code for c in controls.values()]
            if 200 not in answers:
                failures.append(f"control: {method.upper()} {url} answered {answers} to A and to a superuser")

        before = snapshot()
        for method, path, op in ops:
            has_object = bool(_PARAM.search(path))
            url, query, body = request_for(schema, method, path, op, world,
                                           lambda prefix, spec: PATH_OBJECTS[prefix](world))
            sent = {str(v) for v in query.values()} | {str(v) for v in (body or {}).values()} | {url}
            missing_url = request_for(schema, method, path, op, world, lambda prefix, spec: missing_id(spec))[0]
            merchant_code = None
            for who, client in attackers.items():
                attempts += 1
                where = f"{who}: {method.upper()} {url}"
                response = send(client, method, url, query, body)
                code = response.status_code
                leaked = _leaks(response, world, sent)
                if leaked:
                    failures.append(f"{where} -> {code} shows A's data {leaked}")
                if who == "merchant B":
                    merchant_code = code
                elif who == "staff without permissions" and code != merchant_code:
                    failures.append(f"{where} -> {code}, where a merchant without A's objects gets {merchant_code}")
                if who == "anonymous":
                    if (path, method) not in PUBLIC_OPERATIONS and code not in (401, 403):
                        failures.append(f"{where} -> {code} without authentication (expected 401/403)")
                elif has_object:
                    # The same answer as for an id that names nothing: 404, or 403 for every id alike.
                    baseline = send(client, method, missing_url, query, body).status_code
                    if code not in (403, 404) or code != baseline:
                        failures.append(f"{where} -> {code} (an unknown id answers {baseline}; expected 404 for both,"
                                        " or 403 for both when the operation is not theirs at all)")
                elif code >= 500:
                    failures.append(f"{where} -> {code}")
                if outgoing.calls:
                    failures.append(f"{where} -> {code} made the hub call {[c.request.url for c in outgoing.calls]}")
                    outgoing.calls.reset()
                after = snapshot()
                changed = changes(before, after, world.rows)
                if changed:
                    failures.append(f"{where} -> {code} touched A's rows: {changed}")
                before = after

        for url in NON_SCHEMA_PRIVATE:
            with override_settings(API_DOCS_PUBLIC=False):
                attempts += 1
                code = APIClient().get(url).status_code
            if code not in (401, 403):
                failures.append(f"anonymous: GET {url} -> {code} with API_DOCS_PUBLIC off (expected 401/403)")

    with capsys.disabled():
        print(f"\nisolation matrix: {len(ops)} operations x {len(attackers)} callers = {len(ops) * len(attackers)} "
              f"attempts on A's objects ({attempts} with the schema and docs)")
    assert not failures, "\n".join([f"{len(failures)} isolation failures:", *failures])
