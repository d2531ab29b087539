from rest_framework.permissions import BasePermission


class IsOwnerOrStaff(BasePermission):
    """Object access for the row's owner; staff see everything."""

    owner_field = "owner"

    def has_object_permission(self, request, view, obj):
        owner_id = getattr(obj, f"{getattr(view, 'owner_field', self.owner_field)}_id", None)
        return request.user.is_staff or owner_id == request.user.pk


class ScopedQuerysetMixin:
    """Every queryset scoped to the caller: staff see all, merchants their own rows."""

    owner_field = "owner"

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.request.user.is_staff:
            return queryset
        return queryset.filter(**{self.owner_field: self.request.user})
