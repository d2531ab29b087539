"""One naming convention across the whole API (issue 12, defect 6): camelCase, as the seed's JSON.

The OpenAPI schema is generated here from every route the project mounts (each domain app's
`api_urls` under /api/<label>/: an app that declares its routes is checked without being named), and
every name a client reads or sends is checked: each property of each component schema, at any depth
(nested objects, list items, allOf/anyOf/oneOf, additionalProperties), every inline request body and
answer, and every query, path and cookie parameter, the django-filter ones included. A header keeps
HTTP's own spelling (`Idempotency-Key`). A failure names each offender and where it is."""

import django_filters
import pytest
from django.urls import include, path
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, viewsets
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from integrations.api.errors import exception_handler
from integrations.api.naming import is_camel
from integrations.domain import api_url_modules
from integrations.errors import ProviderUnavailable
from integrations.models import ExternalIntegration, Kind

METHODS = ("get", "put", "post", "patch", "delete", "options", "head", "trace")
# Headers are named by HTTP's convention (Idempotency-Key, Retry-After), not the JSON one.
NAMED_PARAMETERS = ("query", "path", "cookie")


def _walk(schema, label, problems, trail=()):
    """Every property name under `schema` (an OpenAPI schema object), however deeply nested; `trail`
    is the path to it inside `label`. A $ref is not followed: the component it names is checked as
    a component."""
    if not isinstance(schema, dict):
        return
    for name, sub in (schema.get("properties") or {}).items():
        if not is_camel(name):
            problems.append(f"{label}: property {'.'.join([*trail, name])!r} is not camelCase")
        _walk(sub, label, problems, (*trail, name))
    for key, mark in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), dict):
            _walk(schema[key], label, problems, (*trail[:-1], (trail[-1] if trail else "") + mark))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or ():
            _walk(sub, label, problems, trail)
    if isinstance(schema.get("not"), dict):
        _walk(schema["not"], label, problems, trail)


def offenders(schema):
    """Each name in `schema` (an OpenAPI document) that is not camelCase, with where it is."""
    problems = []
    for name, component in sorted(schema.get("components", {}).get("schemas", {}).items()):
        _walk(component, f"schema {name}", problems)
    for route, item in sorted(schema.get("paths", {}).items()):
        for method in METHODS:
            operation = item.get(method)
            if not operation:
                continue
            label = f"{method.upper()} {route}"
            for parameter in [*item.get("parameters", ()), *operation.get("parameters", ())]:
                if parameter.get("in") in NAMED_PARAMETERS and not is_camel(parameter["name"]):
                    problems.append(f"{label}: {parameter['in']} parameter {parameter['name']!r} is not camelCase")
                _walk(parameter.get("schema"), f"{label} {parameter['in']} parameter {parameter['name']}", problems)
            for media, content in sorted(operation.get("requestBody", {}).get("content", {}).items()):
                _walk(content.get("schema"), f"{label} request body ({media})", problems)
            for code, answer in sorted(operation.get("responses", {}).items()):
                for media, content in sorted((answer.get("content") or {}).items()):
                    _walk(content.get("schema"), f"{label} answer {code} ({media})", problems)
    return problems


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_every_name_in_the_api_is_camel_case(schema):
    problems = offenders(schema)
    assert not problems, "Names that break the API's camelCase convention:\n" + "\n".join(problems)


def test_the_schema_checked_holds_every_apps_routes(schema):
    # The check above reads the schema: an app whose routes were missing from it would pass unseen.
    mounted = {route.split("/")[2] for route in schema["paths"]}
    assert set(api_url_modules()) <= mounted, (set(api_url_modules()) - mounted, sorted(mounted))
    assert {"smm", "monitoring", "integrations", "me"} <= mounted


def test_the_names_that_were_snake_case_are_camel_case_now(schema):
    components = schema["components"]["schemas"]
    assert {"responseTime", "lastChecked", "successRate", "healthStatus", "displayName", "totalRequests"} <= set(
        components["ServiceHealth"]["properties"])
    assert {"successRate", "healthStatus", "baseUrl", "averageResponseTime", "lastHealthCheck"} <= set(
        components["Integration"]["properties"])
    assert "providerError" in components["ProviderError"]["required"]
    health_filters = {p["name"] for p in schema["paths"]["/api/monitoring/health/"]["get"]["parameters"]}
    assert "healthStatus" in health_filters and "health_status" not in health_filters


# --- the check itself fails, and names the offender --------------------------------------------
def test_the_walker_finds_a_snake_case_name_wherever_it_is():
    document = {
        "components": {"schemas": {
            "Order": {"type": "object", "properties": {
                "orderId": {"type": "integer"},
                "refills": {"type": "array", "items": {"type": "object", "properties": {
                    "refill_id": {"type": "string"}}}},
                "provider": {"allOf": [{"type": "object", "properties": {"Display": {"type": "string"}}}]},
                "extra": {"type": "object", "additionalProperties": {
                    "oneOf": [{"type": "object", "properties": {"total-spent": {"type": "string"}}}]}},
            }},
        }},
        "paths": {"/api/things/{thing_id}/": {
            "parameters": [{"in": "path", "name": "thing_id", "schema": {"type": "integer"}}],
            "post": {
                "parameters": [{"in": "query", "name": "created_after", "schema": {"type": "string"}},
                               {"in": "header", "name": "Idempotency-Key", "schema": {"type": "string"}},
                               {"in": "query", "name": "sortBy", "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {"callback_url": {"type": "string"}}}}}},
                "responses": {"200": {"content": {"application/json": {"schema": {
                    "type": "object", "properties": {"queued_at": {"type": "string"}}}}}}},
            },
        }},
    }
    assert offenders(document) == [
        "schema Order: property 'refills[].refill_id' is not camelCase",
        "schema Order: property 'provider.Display' is not camelCase",
        "schema Order: property 'extra{}.total-spent' is not camelCase",
        "POST /api/things/{thing_id}/: path parameter 'thing_id' is not camelCase",
        "POST /api/things/{thing_id}/: query parameter 'created_after' is not camelCase",
        "POST /api/things/{thing_id}/ request body (application/json): property 'callback_url' is not camelCase",
        "POST /api/things/{thing_id}/ answer 200 (application/json): property 'queued_at' is not camelCase",
    ]


class _WidgetPart(serializers.Serializer):
    partNumber = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=12, decimal_places=3)


class _Widget(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    widget_name = serializers.CharField()
    parts = _WidgetPart(many=True)


class _WidgetFilter(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = ExternalIntegration
        fields = ["kind", "display_name", "created_after"]


class _WidgetViewSet(viewsets.GenericViewSet):
    serializer_class = _Widget
    filterset_class = _WidgetFilter
    queryset = ExternalIntegration.objects.none()

    def list(self, request):
        return Response([])

    def create(self, request):
        return Response({})

    @extend_schema(request={"application/json": {"type": "object", "properties": {"dry_run": {"type": "boolean"}}}},
                   responses=_Widget)
    def partial_update(self, request, pk=None):
        return Response({})


def test_a_new_apps_snake_case_names_fail_the_check():
    # What a new app mounted under /api/ would bring: a serializer field, a nested one, a request's
    # inline body and two django-filter parameters in snake_case.
    router = SimpleRouter()
    router.register("widgets", _WidgetViewSet, basename="widget")
    patterns = [path("api/widgets-app/", include(router.urls))]
    found = offenders(SchemaGenerator(patterns=patterns).get_schema(request=None, public=True))
    assert set(found) >= {
        "schema _Widget: property 'widget_name' is not camelCase",
        "schema _WidgetRequest: property 'widget_name' is not camelCase",
        "schema _WidgetPart: property 'unit_price' is not camelCase",
        "GET /api/widgets-app/widgets/: query parameter 'display_name' is not camelCase",
        "GET /api/widgets-app/widgets/: query parameter 'created_after' is not camelCase",
        "PATCH /api/widgets-app/widgets/{id}/ request body (application/json): property 'dry_run' is not camelCase",
    }, found
    assert not [line for line in found if "'kind'" in line or "partNumber" in line]


# --- error bodies --------------------------------------------------------------------------------
def test_field_errors_answer_under_camel_case_keys():
    exc = exceptions.ValidationError({"display_name": ["Too long."], "non_field_errors": ["Not both."],
                                      "apiKey": ["Required."], "detail": ["Bad body."]})
    assert exception_handler(exc, {}).data == {"displayName": ["Too long."], "nonFieldErrors": ["Not both."],
                                                "apiKey": ["Required."], "detail": ["Bad body."]}


def test_a_nested_fields_own_keys_are_left_as_the_client_sent_them():
    # A dictionary field's errors are keyed by the client's own keys: those are not ours to rename.
    exc = exceptions.ValidationError({"extra_fields": {"my_key": ["Not a number."]}})
    assert exception_handler(exc, {}).data == {"extraFields": {"my_key": ["Not a number."]}}


def test_a_provider_failure_names_its_kind_in_camel_case():
    answer = exception_handler(ProviderUnavailable("The panel is down."), {})
    assert answer.status_code == 503 and answer.data["providerError"] == "ProviderUnavailable"
    assert "provider_error" not in answer.data


@pytest.mark.django_db
def test_filter_errors_name_the_parameter_in_camel_case(staff_api):
    staff_api.raise_request_exception = False
    for route in ("/api/monitoring/health/", "/api/integrations/"):
        for spelling in ("healthStatus", "health_status"):
            r = staff_api.get(f"{route}?{spelling}=splendid")
            assert r.status_code == 400, (route, spelling, r.content[:300])
            assert list(r.json()) == ["healthStatus"], r.json()


@pytest.mark.django_db
def test_the_health_filter_reads_camel_case_and_the_older_snake_case(staff_api):
    for name, health in (("almadar", "unhealthy"), ("moamalat", "healthy")):
        ExternalIntegration.objects.create(kind=Kind.TELECOM, code="scripted", name=name, display_name=name.title(),
                                           base_url="http://127.0.0.1:9/", health_status=health)
    for query in ("healthStatus=unhealthy", "health_status=unhealthy", "healthStatus=unhealthy&health_status=healthy"):
        rows = staff_api.get(f"/api/monitoring/health/?{query}").json()
        assert [row["name"] for row in rows] == ["almadar"], query
        assert rows[0]["healthStatus"] == "unhealthy" and "health_status" not in rows[0]
        listed = staff_api.get(f"/api/integrations/?{query}").json()["results"]
        assert [row["name"] for row in listed] == ["almadar"], query
