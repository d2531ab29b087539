"""Lists that cost the same at a thousand rows and at a million: a capped count and keyset positions.

A list page needs three things from the database: its rows, whether more follow, and how many rows
match. The first two are an index range scan when an index serves the ordering (each list's model
declares the index of its default ordering). The third is what made a merchant with a million
orders wait: `COUNT(*)` visits every matching row. Here it visits at most `cap + 1` of them and says
"more than `cap`" beyond.

Deep pages have the same problem: `OFFSET 500000` reads and throws away half a million rows. A
keyset position (the ordering values of the last row seen) starts the next page at its place in the
index instead, at the cost of the first. Used by the API's pagination (integrations.api.pagination)
and the admin's changelists (CappedCountPaginator)."""

import base64
import binascii
import datetime
import json

from django.core.paginator import Paginator
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import cached_property

COUNT_CAP = 10_000


def capped_count(queryset, cap=COUNT_CAP):
    """`(count, capped)`: the rows of `queryset` up to `cap`, and whether more than `cap` match.

    The database stops after `cap + 1` rows (a subquery with a LIMIT), reading only the key, so an
    index-only scan can do it."""
    if getattr(queryset, "_result_cache", None) is not None:
        count = len(queryset)
    else:
        count = queryset.order_by().values("pk")[: cap + 1].count()
    return min(count, cap), count > cap


class CappedCountPaginator(Paginator):
    """Django's paginator whose `count` stops at `cap` (the admin's changelists of big tables).

    `capped` says the real number is higher; pages past `cap` rows do not exist for it (filters and
    the date ranges narrow a list down instead)."""

    cap = COUNT_CAP

    @cached_property
    def _capped_count(self):
        return capped_count(self.object_list, self.cap)

    @cached_property
    def count(self):
        return self._capped_count[0]

    @property
    def capped(self):
        return self._capped_count[1]


class InvalidCursor(ValueError):
    pass


def _field_path(model, path):
    """The model field at the end of a lookup path (`integration__priority`)."""
    *relations, last = path.split("__")
    for name in relations:
        model = model._meta.get_field(name).related_model
    return model._meta.pk if last == "pk" else model._meta.get_field(last)


def _value_of(obj, path):
    *relations, last = path.split("__")
    for name in relations:
        obj = getattr(obj, name)
    return obj.pk if last == "pk" else getattr(obj, last)


class Keyset:
    """The total order of a queryset (its ordering plus the primary key when that is missing) and
    positions in it: `token(row)` names the place after a row, `after(queryset, token)` the rows that
    follow it.

    Only plain field orderings (`-created_at`, `integration__priority`) of non-null fields can be
    keyset orderings: a NULL compares with nothing."""

    def __init__(self, queryset):
        model = queryset.model
        ordering = list(queryset.query.order_by or model._meta.ordering or [])
        fields = [str(name) for name in ordering]
        pk_names = {"pk", "-pk", model._meta.pk.name, f"-{model._meta.pk.name}"}
        if not pk_names & set(fields):
            descending = bool(fields) and fields[-1].startswith("-")
            fields.append("-pk" if descending else "pk")
        self.ordering = fields
        self.paths = [name.lstrip("-") for name in fields]
        self.descending = [name.startswith("-") for name in fields]
        self.fields = [_field_path(model, path) for path in self.paths]
        for path, field in zip(self.paths, self.fields, strict=True):
            if field.null:
                raise ValueError(f"{model.__name__}.{path} may be NULL: it cannot order a keyset")

    def order(self, queryset):
        return queryset.order_by(*self.ordering)

    def token(self, obj):
        text = json.dumps([_json_value(_value_of(obj, path)) for path in self.paths], separators=(",", ":"))
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    def values(self, token):
        if len(token) > MAX_TOKEN:
            raise InvalidCursor(token[:MAX_TOKEN])
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            items = json.loads(raw)
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidCursor(token) from exc
        if not isinstance(items, list) or len(items) != len(self.fields):
            raise InvalidCursor(token)
        try:
            values = [_storable(field.to_python(item)) for field, item in zip(self.fields, items, strict=True)]
        except Exception as exc:
            raise InvalidCursor(token) from exc
        return values

    def after(self, queryset, token):
        """The rows after the position `token` names, in the keyset's order.

        `(a, b) < (x, y)` spelled as `a <= x AND (a < x OR (a = x AND b < y))`: the leading bound
        lets the database start its index scan at the position on PostgreSQL and SQLite alike."""
        values = self.values(token)
        beyond = Q(pk__in=[])
        for i, (path, value, descending) in enumerate(zip(self.paths, values, self.descending, strict=True)):
            step = Q(**{f"{path}__{'lt' if descending else 'gt'}": value})
            for prev_path, prev_value in zip(self.paths[:i], values[:i], strict=True):
                step &= Q(**{prev_path: prev_value})
            beyond |= step
        lead = Q(**{f"{self.paths[0]}__{'lte' if self.descending[0] else 'gte'}": values[0]})
        return self.order(queryset.filter(lead & beyond))


# A position is a few ordering values; anything longer was not made by token().
MAX_TOKEN = 2048


def _storable(value):
    """A cursor's value as the database can compare it, or ValueError: a forged one may hold what
    to_python accepts and the query cannot bind (an id past 64 bits, a lone surrogate, a NUL that
    PostgreSQL refuses in text, a naive time, or one of years 1 and 9999 that overflows in UTC)."""
    if value is None:
        raise ValueError("no position")
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise ValueError("out of range")
    if isinstance(value, str):
        value.encode()
        if "\x00" in value:
            raise ValueError("NUL")
    if isinstance(value, datetime.datetime):
        if timezone.is_naive(value):
            raise ValueError("naive")
        value = value.astimezone(datetime.UTC)
    return value


def _json_value(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, int | float | str | bool):
        return value
    return str(value)  # UUID, Decimal


# --- the admin's changelists --------------------------------------------------------------------


def _bound(queryset, field, descending):
    """The least or greatest non-null `field` of `queryset`: the first row of an index range scan
    (an aggregate MIN and MAX together is a full scan on SQLite)."""
    ordered = queryset.filter(**{f"{field}__isnull": False}).order_by(f"-{field}" if descending else field)
    return ordered.values_list(field, flat=True).first()


class _ProbedDates:
    """Mixed into a changelist's queryset: the date hierarchy's questions answered from the index.

    Django's date hierarchy asks for `MIN` and `MAX` of the field together and for the distinct years,
    months or days of the whole filtered list (`SELECT DISTINCT date_trunc(…)`), each a scan of a
    million rows. Here the bounds are the two ends of the index, and the periods that have rows are
    found by one index seek each: the first row at or after the end of the period before."""

    def aggregate(self, *args, **kwargs):
        from django.db.models import Max, Min

        plain = {
            name: agg for name, agg in kwargs.items()
            if type(agg) in (Min, Max) and len(agg.source_expressions) == 1 and not agg.filter
            and isinstance(getattr(agg.source_expressions[0], "name", None), str)
        }
        if args or not kwargs or len(plain) != len(kwargs):
            return super().aggregate(*args, **kwargs)
        return {name: _bound(self, agg.source_expressions[0].name, type(agg) is Max) for name, agg in plain.items()}

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        return self._probe(field_name, kind, order, aware=True)

    def dates(self, field_name, kind, order="ASC"):
        return self._probe(field_name, kind, order, aware=False)

    def _probe(self, field, kind, order, aware):
        import datetime

        from django.utils import timezone

        last = _bound(self, field, True)
        if last is None or kind not in ("year", "month", "day"):
            return [] if last is None else list(super().datetimes(field, kind, order) if aware
                                                 else super().dates(field, kind, order))

        def start_of(value):
            day = datetime.date(value.year, 1 if kind == "year" else value.month, value.day if kind == "day" else 1)
            if not aware:
                return day
            return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))

        def following(start):
            if kind == "year":
                day = datetime.date(start.year + 1, 1, 1)
            elif kind == "month":
                day = datetime.date(start.year + start.month // 12, start.month % 12 + 1, 1)
            else:
                day = datetime.date(start.year, start.month, start.day) + datetime.timedelta(days=1)
            return timezone.make_aware(datetime.datetime.combine(day, datetime.time())) if aware else day

        # A skip scan, newest first as the lists' indexes run: from each period found, the last row
        # before its start names the period before that has rows (one index seek each, none for the
        # empty periods between).
        periods, at = [], last
        while at is not None and len(periods) < 400:  # a bound in case of absurd dates
            start = start_of(timezone.localtime(at) if aware else at)
            periods.append(start)
            # The new bound first: SQLite seeks by one upper bound of a column and filters by the
            # others, and given the list's own (`< the month's end`) it would walk all the newer rows.
            at = _bound(self.model._base_manager.filter(**{f"{field}__lt": start}) & self, field, True)
        periods.reverse()
        return periods if order == "ASC" else periods[::-1]


_probed_classes = {}


def with_probed_dates(queryset):
    cls = queryset.__class__
    if not issubclass(cls, _ProbedDates):
        if cls not in _probed_classes:
            _probed_classes[cls] = type(f"Probed{cls.__name__}", (_ProbedDates, cls), {})
        queryset = queryset._chain()
        queryset.__class__ = _probed_classes[cls]
    return queryset


class FlatListAdminMixin:
    """A ModelAdmin whose changelist costs the same at a thousand rows and at a million: a capped
    count (CappedCountPaginator, never the unfiltered total), and a date hierarchy answered from the
    index. Its ordering and filters must be served by indexes too (the model's Meta.indexes)."""

    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_changelist(self, request, **kwargs):
        base = super().get_changelist(request, **kwargs)

        class FlatChangeList(base):
            def get_queryset(self, request, exclude_parameters=None):
                return with_probed_dates(super().get_queryset(request, exclude_parameters))

            def get_filters(self, request):
                # Django turns a forged date hierarchy into dates without checking their range (year
                # 9999's next year, a year past C's long, year 1 in UTC): "invalid parameters", not a 500.
                from django.contrib.admin.options import IncorrectLookupParameters

                try:
                    filters = super().get_filters(request)
                    for values in filters[2].values():  # the remaining lookups, the hierarchy's among them
                        for value in values if isinstance(values, list) else [values]:
                            if isinstance(value, datetime.datetime) and timezone.is_aware(value):
                                value.astimezone(datetime.UTC)  # year 1 east of UTC: SQLite's overflow
                except (OverflowError, ValueError) as exc:
                    raise IncorrectLookupParameters(exc) from exc
                return filters

            def get_ordering_field(self, field_name):
                # sortable_by only hides the headers' links; a forged `o=` would still sort a
                # million rows by an unindexed column.
                if self.sortable_by is not None and field_name not in self.sortable_by:
                    return None
                return super().get_ordering_field(field_name)

        return FlatChangeList


class RecentValuesFilter:
    """A list filter offering the values of a free-text column seen in the newest `sample` rows:
    Django's own (AllValuesFieldListFilter) reads DISTINCT over the whole table.
    `RecentValuesFilter.of("method", _("method"))` makes one."""

    sample = COUNT_CAP

    @classmethod
    def of(cls, field_name, title, sample=None):
        from django.contrib import admin

        def lookups(self, request, model_admin):
            recent = model_admin.get_queryset(request)[: sample or cls.sample].values_list(field_name, flat=True)
            return [(value, value) for value in sorted(set(recent)) if value]

        def queryset(self, request, queryset):
            return queryset.filter(**{field_name: self.value()}) if self.value() else queryset

        return type(f"Recent{field_name.title()}Filter", (admin.SimpleListFilter,), {
            "title": title,
            "parameter_name": field_name,
            "lookups": lookups,
            "queryset": queryset,
        })
