"""Fuzzing the API against its own schema (issue 11, point 15).

Schemathesis reads the schema the hub serves (/api/schema/, with a token: it is not public in
production) and generates requests for every operation, valid ones and invalid ones, with a
merchant's token and with the token of a staff user holding every model permission. Each answer must
not be a server error, must have a documented status code and content type, and must match the
documented body. An operation on an object is also tried with the merchant's real ids (random ids
mostly answer 404), so that the actions behind an object (sync, cancel, refill…) run too.

Providers are answered by the panel simulator in-process (smm.sandbox.handle behind `responses`),
whatever their URL: a provider call never leaves the machine, and a 5xx can only be the hub's own.

Bounded for CI: FUZZ_MAX_EXAMPLES (default 5) requests per operation, per generation mode, per caller;
Hypothesis is derandomized (the same cases every run) and shrinks nothing: every failure is collected
with the request that reproduces it, and the test fails with the whole list."""

import json
import os
import re
import time

import hypothesis
import pytest
import responses
import schemathesis
from django.contrib.auth.models import Permission
from django.core.handlers.wsgi import WSGIHandler
from django.core.serializers.json import DjangoJSONEncoder
from django.http import QueryDict
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from smm import catalogue
from smm.models import SandboxPanel, SMMOrder, SMMService
from smm.sandbox import catalogue as sandbox_catalogue
from smm.sandbox import handle, panel_for

from .world import PATH_OBJECTS, build_world

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "5"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
_PARAM = re.compile(r"\{(\w+)\}")


def _panel(request):
    """Any provider URL: the simulated panel `jap`, whatever the key (a fuzzed key or URL must not turn
    into a provider error here: those are the panel's 502/503, not the hub's)."""
    body = request.body.decode() if isinstance(request.body, bytes) else request.body or ""
    payload = handle(panel_for("jap"), QueryDict(body))
    return 200, {}, json.dumps(payload, cls=DjangoJSONEncoder)


@pytest.fixture
def panel():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, re.compile(r".*"), callback=_panel, content_type="application/json")
        mock.add_callback(responses.GET, re.compile(r".*"), callback=_panel, content_type="application/json")
        yield mock


@pytest.fixture
def fuzz_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Provider URLs are not resolved at save (the fuzz must not query DNS for the names it invents);
    # the address checks have their own suite.
    settings.PROVIDER_URL_ALLOW_PRIVATE = True
    # The write budget is not what is fuzzed: without this, every write after the 120th is a 429.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"writes": "100000/min"}}
    return settings


@pytest.fixture
def callers(fuzz_settings, panel, merchant, django_user_model):
    # A small catalogue and a fast clock: orders move along while the fuzz runs.
    SandboxPanel.objects.update_or_create(code="jap", defaults={
        "api_key": "sandbox-jap-key", "catalogue_size": 30, "step_seconds": 0.05, "balance": "100000"})
    world = build_world(merchant)
    catalogue.sync_services(world.provider)
    # The merchant's order really placed at the panel (an order the panel does not know is a provider
    # error, a 502, which is not what this suite looks for).
    spec = next(s for s in sandbox_catalogue("jap", 30).values() if s["type"] == "Default" and s["refill"]
                and s["cancel"])
    placed = handle(panel_for("jap"), {"action": "add", "service": str(spec["service"]), "quantity": str(spec["min"]),
                                       "link": world.order.link})
    SMMOrder.objects.filter(pk=world.order.pk).update(
        service=SMMService.objects.get(provider=world.provider, service_id=str(spec["service"])),
        external_order_id=str(placed["order"]), quantity=spec["min"])
    operator = django_user_model.objects.create_user("operator", "operator@example.ly", "pw-operator",
                                                     is_staff=True)
    operator.user_permissions.set(Permission.objects.all())
    return world, {
        "merchant": Token.objects.get(user=merchant).key,
        "staff with every permission": Token.objects.get_or_create(user=operator)[0].key,
    }


def _strategies(operation, world):
    ids = {}
    for match in _PARAM.finditer(operation.path):
        prefix = operation.path[: match.end()]
        if prefix in PATH_OBJECTS:
            ids[match[1]] = PATH_OBJECTS[prefix](world)
    strategies = [operation.as_strategy(generation_mode=mode) for mode in MODES]
    if ids:
        strategies.append(operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE,
                                                path_parameters=ids))
    return strategies


def _explore(strategy, attempt):
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(strategy)
    def run(case):
        attempt(case)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        pass  # negative mode for an operation with nothing to get wrong (no parameter, no body)


@pytest.mark.parametrize("who", ["merchant", "staff with every permission"])
def test_fuzzed_requests_get_documented_answers_and_no_server_error(who, callers, capsys):
    world, tokens = callers
    app = WSGIHandler()
    headers = {"Authorization": f"Token {tokens[who]}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app, headers=headers)
    failures = {}
    cases = 0
    server_errors = 0
    started = time.monotonic()

    def attempt(case):
        nonlocal cases, server_errors
        cases += 1
        response = case.call(app=app, headers=headers)
        if response.status_code >= 500:
            server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = (case.method, case.operation.path, response.status_code, failure.title)
                failures.setdefault(key, f"{failure.title}: {failure.message[:1500]}\n"
                                         f"    {case.as_curl_command(headers=headers)}")

    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        for strategy in _strategies(operation, world):
            _explore(strategy, attempt)

    with capsys.disabled():
        print(f"\nfuzz as {who}: {len(operations)} operations, {cases} cases, {server_errors} answers 5xx, "
              f"{len(failures)} distinct failures, {time.monotonic() - started:.1f} s")
    assert not failures, "\n".join(
        [f"{len(failures)} distinct failures as {who}:"]
        + [f"- {method} {path} -> {code}: {detail}" for (method, path, code, _), detail in sorted(failures.items(),
                                                                                              key=str)]
    )
