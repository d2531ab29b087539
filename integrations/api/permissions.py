"""The API's access rules, on top of integrations.permissions (read its docstring for the policy:
merchants their own rows; staff per Django's model permissions; staff without the permission are
treated as ordinary users).

Lists and lookups are scoped with the view permission, so a row the caller may not read is a 404,
never a 403 that would confirm it exists. A row the caller may read but not change (staff with view
permission only) answers a write with 403 and says which permission is missing."""

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from integrations.permissions import ACTION_FOR_METHOD, holds_model_permission, owner_id_of, scoped


class OwnerOrModelPermission(BasePermission):
    """Object access: the row's owner may do what the view offers; anyone else needs the model
    permission of the request's method (view to read, change to write, delete to delete).

    The view names the owner with `owner_field` (a lookup path, default `owner`)."""

    owner_field = "owner"

    def has_object_permission(self, request, view, obj):
        owner_field = getattr(view, "owner_field", self.owner_field)
        if request.user.is_authenticated and owner_id_of(obj, owner_field) == request.user.pk:
            return True
        action = ACTION_FOR_METHOD.get(request.method, "change")
        if holds_model_permission(request.user, type(obj), action):
            return True
        self.message = _refusal(OBJECT_REFUSALS, action, type(obj))
        return False


class StaffModelPermission(BasePermission):
    """For views over rows that belong to no merchant (monitoring): staff holding the view permission
    of each model in the view's `permission_models` (default: the queryset's model). Everyone else,
    staff without the permission included, gets 403."""

    def has_permission(self, request, view):
        models = getattr(view, "permission_models", None) or [view.get_queryset().model]
        action = ACTION_FOR_METHOD.get(request.method, "change")
        missing = [m for m in models if not holds_model_permission(request.user, m, action)]
        if not missing:
            return True
        self.message = _refusal(MODEL_REFUSALS, action, missing[0])
        return False


OBJECT_REFUSALS = {
    "view": _("Reading this %(name)s needs the permission to view %(plural)s."),
    "change": _("Changing this %(name)s needs the permission to change %(plural)s."),
    "delete": _("Deleting this %(name)s needs the permission to delete %(plural)s."),
}
MODEL_REFUSALS = {
    "view": _("Reading %(plural)s needs staff access with the permission to view them."),
    "change": _("Changing %(plural)s needs staff access with the permission to change them."),
    "delete": _("Deleting %(plural)s needs staff access with the permission to delete them."),
}


def _refusal(messages, action, model):
    opts = model._meta
    return str(messages[action]) % {"name": opts.verbose_name, "plural": opts.verbose_name_plural}


class ScopedQuerysetMixin:
    """Every queryset scoped to the caller: with the model's view permission (staff) every row,
    otherwise the caller's own rows (`owner_field`). Object writes follow OwnerOrModelPermission."""

    owner_field = "owner"

    def get_queryset(self):
        return scoped(super().get_queryset(), self.request.user, self.owner_field)

    def get_permissions(self):
        return [*super().get_permissions(), OwnerOrModelPermission()]
