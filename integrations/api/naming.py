"""The API's one naming convention: every field, query parameter and error key is camelCase, as the
seed's JSON (`responseTime`, `lastChecked`, `successRate`).

Serializers spell their fields in camelCase themselves (a declared field with `source=` naming the
model's attribute), filter sets likewise (`field_name=`): the schema, the answers and the error keys
then agree without any conversion at render time. `tests/api/test_api_convention.py` walks the
OpenAPI schema and fails on any other spelling, so a new app follows it too. snake_case is still
accepted on input (`camelize_keys`), as the SMM routes always did."""

import re

CAMEL_CASE = re.compile(r"[a-z][a-zA-Z0-9]*")


def camel(name):
    """`display_name` -> `displayName`; a camelCase name is returned unchanged."""
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


def snake(name):
    """`displayName` -> `display_name`: the model attribute a camelCase API name stands for."""
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def is_camel(name):
    return bool(CAMEL_CASE.fullmatch(name))


def camelize_keys(data):
    """Input under either spelling, as camelCase: `display_name` -> `displayName` (camelCase wins
    if both are sent). Keeps a QueryDict's repeated values as a list."""
    if not hasattr(data, "items"):
        return data
    getlist = getattr(data, "getlist", None)
    out = {}
    for key in data.keys():
        value = getlist(key) if getlist and len(getlist(key)) > 1 else data[key]
        name = camel(key)
        if name == key or name not in out:
            out[name] = value
    return out
