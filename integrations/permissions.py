"""Who may read and change whose rows, outside the admin (the API, querysets).

Merchants read and change their own rows only. Staff follow Django's model permissions, as in the
admin: `is_staff` alone grants nothing. A staff user holding a model's view permission (or its change
permission, which implies view, as in the admin) reads every merchant's rows of that model; change,
add and delete likewise allow those writes on other merchants' rows. A staff user without the
model's permission is treated as an ordinary user: their own rows only, and another merchant's row is
a 404, as for anyone else (OWASP ASVS 4.1.3, least privilege; 4.2.1, access to other users' records).

Superusers hold every permission (Django's has_perm), so they keep seeing everything."""

from django.contrib.auth import get_permission_codename

# The one permission that lets a provider's URL change while its stored credentials stay: without
# it, whoever changes the URL re-enters the key in the same request, so that a changed URL can never
# carry someone else's key to a new address (see smm.providers.update_provider and the admin form).
KEEP_CREDENTIALS_ON_URL_CHANGE = "integrations.change_provider_url_keep_key"

# The model permission an HTTP method needs on a row the caller does not own.
ACTION_FOR_METHOD = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "change",
    "PUT": "change",
    "PATCH": "change",
    "DELETE": "delete",
}


def model_permission(model, action):
    opts = model._meta
    return f"{opts.app_label}.{get_permission_codename(action, opts)}"


def holds_model_permission(user, model, action):
    """Whether `user` may `action` ("view", "add", "change", "delete") every row of `model`, whoever
    owns it: staff (active) with the model's permission; "view" is also granted by "change"."""
    return holds_permission(user, model_permission(model, action))


def holds_permission(user, perm):
    """Whether `user` is active staff holding `perm` ("app_label.codename"); a model's view
    permission is also granted by its change permission, as in the admin."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if not (user.is_active and user.is_staff):
        return False
    app_label, _, codename = perm.partition(".")
    perms = [perm]
    if codename.startswith("view_"):
        perms.append(f"{app_label}.change_{codename.removeprefix('view_')}")
    return any(user.has_perm(p) for p in perms)


def scoped(queryset, user, owner_field, action="view"):
    """`queryset` as `user` may `action` it: all rows with the model permission, otherwise the rows
    whose `owner_field` (a lookup path, e.g. `integration__owner`) is the user."""
    if holds_model_permission(user, queryset.model, action):
        return queryset
    if user is None or not getattr(user, "is_authenticated", False):
        return queryset.none()
    return queryset.filter(**{owner_field: user})


def owner_id_of(obj, owner_field):
    """The owner's id of `obj` along `owner_field` (`owner`, `user`, `integration__owner`…)."""
    *path, last = owner_field.split("__")
    for name in path:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)
