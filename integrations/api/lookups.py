"""Path ids checked before a view runs.

A view that looks an object up with Django's get_object_or_404 (an action reaching past DRF's
get_object, a ViewSet without a queryset) turns `/orders/abc/cancel` or a UUID key asked with `1`
into a ValueError or ValidationError, so a 500. Checking the id once, where every action of a viewset
passes, makes each of them answer 404 — the same answer as an id that names nothing — whatever the
action does next."""

from django.core.exceptions import ValidationError
from django.db import connection, models
from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound


# No docstring on the mixin: drf-spectacular would show it as the description of every operation of
# the viewsets that use it.
class ValidLookupMixin:
    # For viewsets: a path id that cannot be the key of `lookup_model` (or of the queryset's model) is
    # a 404 before any action runs.
    lookup_model = None

    def initial(self, request, *args, **kwargs):
        # Authentication, permissions and throttles first: an anonymous caller gets 401, not 404.
        super().initial(request, *args, **kwargs)
        field_name = getattr(self, "lookup_field", "pk")
        kwarg = getattr(self, "lookup_url_kwarg", None) or field_name
        if kwarg in self.kwargs:
            self._check_lookup(field_name, self.kwargs[kwarg])

    def _lookup_model(self):
        if self.lookup_model is not None:
            return self.lookup_model
        queryset = getattr(self, "queryset", None)
        return queryset.model if queryset is not None else self.get_queryset().model

    def _check_lookup(self, field_name, value):
        model = self._lookup_model()
        opts = model._meta
        field = opts.pk if field_name == "pk" else opts.get_field(field_name)
        try:
            python_value = field.to_python(value)
        except ValidationError:
            raise self._not_found(opts) from None
        if isinstance(field, models.IntegerField):  # AutoField and BigAutoField too
            low, high = connection.ops.integer_field_range(field.get_internal_type())
            if (low is not None and python_value < low) or (high is not None and python_value > high):
                raise self._not_found(opts)

    @staticmethod
    def _not_found(opts):
        return NotFound(_("No %(name)s has this id.") % {"name": opts.verbose_name})
