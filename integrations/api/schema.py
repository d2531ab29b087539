"""The error answers of the API, in its OpenAPI schema.

Merchants generate clients from /api/schema/: an answer the schema does not list is one their client
cannot read. The answers every view can give (no or a wrong token, no permission, throttled, a bad
request, an unknown id) come from DRF's machinery rather than from the views, so a postprocessing hook
adds them to every operation they apply to; the ones only some views give (409, 502/503, 202) are
declared on those views with the responses below. Tests in tests/api/test_schema_contract.py check
real answers against the result."""

from drf_spectacular.utils import OpenApiResponse

ERROR = "Error"
VALIDATION_ERROR = "ValidationError"
PROVIDER_ERROR = "ProviderError"

_MESSAGE = {"type": "string", "description": "What went wrong, for a person to read (in the caller's language)."}
_MESSAGES = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}

COMPONENTS = {
    ERROR: {
        "type": "object",
        "properties": {"detail": _MESSAGE},
        "required": ["detail"],
    },
    VALIDATION_ERROR: {
        "type": "object",
        "description": "Each refused field with its messages (the API's field names); `detail` or "
                       "`nonFieldErrors` for what concerns the request as a whole (a body that is not JSON, "
                       "an action the object's state does not allow).",
        "properties": {"detail": _MESSAGES, "nonFieldErrors": {"type": "array", "items": {"type": "string"}}},
        # A nested field (a list's item) answers an object of its own messages.
        "additionalProperties": {"anyOf": [*_MESSAGES["anyOf"], {"type": "object"}]},
    },
    PROVIDER_ERROR: {
        "type": "object",
        "properties": {
            "detail": {**_MESSAGE, "description": "The provider's refusal or failure, its secrets masked."},
            "providerError": {"type": "string", "description": "The kind of failure (ProviderAuthError, "
                                                                "ProviderUnavailable, …) for programs to branch on."},
        },
        "required": ["detail", "providerError"],
    },
}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def error(description):
    """A response of the common error shape, for extend_schema(responses={409: error("…")})."""
    return OpenApiResponse(_ref(ERROR), description=description)


# For views that call the provider while the merchant waits.
PROVIDER_FAILURES = {
    502: OpenApiResponse(_ref(PROVIDER_ERROR), description="The provider refused the call (a wrong API key, "
                         "an unknown order) or answered something unusable. Retrying will not help."),
    503: OpenApiResponse(_ref(PROVIDER_ERROR), description="The provider could not be reached, timed out or "
                         "is busy. Retry later."),
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before the next attempt.",
                                "schema": {"type": "integer"}}}


def _response(name, description, headers=None):
    answer = {"description": description, "content": {"application/json": {"schema": _ref(name)}}}
    if headers:
        answer["headers"] = headers
    return answer


def add_error_responses(result, generator, request, public):
    """POSTPROCESSING_HOOKS: the error answers DRF's machinery gives, added where they apply."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in COMPONENTS.items():
        schemas.setdefault(name, schema)
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            parameters = operation.get("parameters", [])
            in_path = any(p.get("in") == "path" for p in parameters)
            in_query = {p["name"] for p in parameters if p.get("in") == "query"}
            common = {}
            if method in ("post", "put", "patch") or in_query - {"page", "limit"}:
                common["400"] = _response(VALIDATION_ERROR, "The request was refused: see each field's messages.")
            common["401"] = _response(ERROR, "Not authenticated: no token, or a wrong one.",
                                      {"WWW-Authenticate": {"description": "`Token`: the scheme to use.",
                                                            "schema": {"type": "string"}}})
            common["403"] = _response(ERROR, "The caller may not do this.")
            if in_path or "page" in in_query:
                common["404"] = _response(ERROR, "No such object for this caller (another merchant's is not "
                                                 "found either), or no such page.")
            common["429"] = _response(ERROR, "Too many writes, or too many failed authentications from this "
                                             "address: wait as long as Retry-After says.", _RETRY_AFTER)
            responses = operation["responses"]
            for code, answer in common.items():
                responses.setdefault(code, answer)
            operation["responses"] = dict(sorted(responses.items()))
    return result
