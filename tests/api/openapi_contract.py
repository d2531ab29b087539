"""Checks real answers of the API against its OpenAPI schema (drf-spectacular's, OpenAPI 3.0).

The schema is turned into JSON Schema (2020-12) for `jsonschema`, which drf-spectacular depends on:
`nullable: true` becomes a union with null (so a null the schema does not allow is caught), and an
object that lists its properties gets `additionalProperties: false` unless it says otherwise (so a
field answered but not documented is caught too). Each answer is matched to its operation by method
and path; its status code must be documented, its body must validate, its path and query parameters
must be documented and valid, and a documented header (Retry-After) must be present."""

import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlsplit

import jsonschema

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def to_json_schema(node):
    """OpenAPI 3.0 schema objects -> JSON Schema, recursively (a copy)."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: to_json_schema(value) for key, value in node.items() if key not in ("example", "nullable")}
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable"):
        if "type" in out and "allOf" not in out and "oneOf" not in out and "anyOf" not in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _date_time(value):
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return False
    dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


def _uuid(value):
    if not isinstance(value, str):
        return True
    uuid.UUID(value)
    return True


def _decimal(value):
    if not isinstance(value, str):
        return True
    return Decimal(value).is_finite()


def _uri(value):
    return not isinstance(value, str) or bool(urlsplit(value).scheme)


FORMATS = jsonschema.FormatChecker(formats=())
FORMATS.checks("date-time", raises=ValueError)(_date_time)
FORMATS.checks("uuid", raises=ValueError)(_uuid)
FORMATS.checks("decimal", raises=InvalidOperation)(_decimal)
FORMATS.checks("uri")(_uri)


class Contract:
    def __init__(self, schema):
        self.schema = schema
        self.components = to_json_schema(schema.get("components", {}))
        self.routes = []
        for template, item in schema["paths"].items():
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template.rstrip("/")))
            self.routes.append((re.compile(pattern + "/?"), template, item))

    def validator(self, schema):
        return jsonschema.Draft202012Validator(
            {**to_json_schema(schema), "components": self.components}, format_checker=FORMATS
        )

    def errors(self, instance, schema):
        return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                for e in self.validator(schema).iter_errors(instance)]

    def find(self, method, path):
        for regex, template, item in self.routes:
            match = regex.fullmatch(path)
            if match and method in item:
                return template, item, item[method], match.groupdict()
        return None

    def check(self, method, url, response):
        """Every way `response` (to `method url`) departs from the schema, as readable lines."""
        method = method.lower()
        split = urlsplit(url)
        found = self.find(method, split.path)
        where = f"{method.upper()} {url} -> {response.status_code}"
        if found is None:
            return [f"{where}: no operation in the schema"]
        template, item, operation, path_values = found
        problems = []
        parameters = {(p["in"], p["name"]): p for p in [*item.get("parameters", []), *operation.get("parameters", [])]}
        for name, value in path_values.items():
            spec = parameters.get(("path", name))
            if spec is None:
                problems.append(f"path parameter {name} undocumented")
            elif response.status_code < 400:
                problems += [f"path parameter {name}={value!r}: {e}"
                             for e in self.errors(_typed(value, spec["schema"]), spec["schema"])]
        for name, value in parse_qsl(split.query, keep_blank_values=True):
            spec = parameters.get(("query", name))
            if spec is None:
                problems.append(f"query parameter {name} undocumented")
            elif response.status_code < 400:
                problems += [f"query parameter {name}={value!r}: {e}"
                             for e in self.errors(_typed(value, spec["schema"]), spec["schema"])]
        responses = operation.get("responses", {})
        documented = responses.get(str(response.status_code)) or responses.get("default")
        if documented is None:
            problems.append(f"status {response.status_code} undocumented (documented: {sorted(responses)})")
        else:
            problems += self._check_body(documented, response)
            for header in documented.get("headers", {}):
                if not response.has_header(header):
                    problems.append(f"documented header {header} missing")
        return [f"{where} [{template}]: {p}" for p in problems]

    def _check_body(self, documented, response):
        content = documented.get("content")
        body = response.content
        if not content:
            return [f"body {body[:80]!r} undocumented"] if body else []
        media = response.get("Content-Type", "").split(";")[0].strip()
        if media not in content:
            return [f"content type {media!r} undocumented (documented: {sorted(content)})"]
        return self.errors(response.json(), content[media].get("schema", {}))


def _typed(value, schema):
    """A path or query string as the JSON value its schema describes, for validation."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean":
        return {"true": True, "false": False}.get(value.lower(), value)
    return value
