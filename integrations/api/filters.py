"""Filters shared by the API's views."""

import datetime as dt

import django_filters
from django import forms
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from integrations.models import ExternalIntegration, Health

from .naming import camel

# Every id in the hub is a 64-bit signed integer (or a UUID); a larger number cannot name a row, and on
# SQLite a foreign-key lookup with it raises OverflowError (a 500) instead of finding nothing.
MAX_ID = 2**63 - 1


class IdField(forms.IntegerField):
    # One message for both bounds (Django's validators would name one bound only).
    default_error_messages = {
        "min_value": _("An id is a whole number from 1 to 9223372036854775807."),
        "max_value": _("An id is a whole number from 1 to 9223372036854775807."),
    }

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID})
class IdFilter(django_filters.Filter):
    """An integer id (of the row itself or of a foreign key), refused with a 400 when out of range."""

    field_class = IdField


class UtcDateTimeField(IsoDateTimeField):
    """ISO 8601, handed to the database as the same instant in UTC. Python accepts offsets up to
    ±23:59 and PostgreSQL only up to ±15:59 (a DataError), and SQLite's adapter converts to UTC, which
    overflows for the first and last hours of years 1 and 9999: both were 500s (found by fuzzing)."""

    default_error_messages = {"range": _("Enter a date and time between the years 1 and 9999 in UTC.")}

    def to_python(self, value):
        value = super().to_python(value)
        if value is None or timezone.is_naive(value):
            return value
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise forms.ValidationError(self.error_messages["range"], code="range") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    """`IsoDateTimeFilter` whose value reaches the database in UTC, or is a 400 (UtcDateTimeField)."""

    field_class = UtcDateTimeField


class FilterSet(django_filters.FilterSet):
    """The API's filter sets. Parameters are camelCase like every API name (integrations.api.naming):
    a multiword one is declared under its camelCase name with `field_name=` naming the model field.
    Its snake_case spelling is read too (the camelCase one wins when both are sent), as the SMM
    bodies accept snake_case: a client of the older names is not silently handed an unfiltered list."""

    def __init__(self, data=None, *args, **kwargs):
        if isinstance(data, QueryDict):
            data = _camel_query(data)
        super().__init__(data, *args, **kwargs)


def _camel_query(data):
    out = QueryDict(mutable=True)
    for key in data:
        name = camel(key)
        if name == key or name not in data:
            out.setlist(name, data.getlist(key))
    return out


class IntegrationFilter(FilterSet):
    """The provider registry's filters (`/api/integrations/`, `/api/monitoring/health/`)."""

    healthStatus = django_filters.ChoiceFilter(field_name="health_status", choices=Health.choices)

    class Meta:
        model = ExternalIntegration
        fields = ["kind", "code", "status", "healthStatus"]
