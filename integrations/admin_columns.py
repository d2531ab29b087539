"""Short changelist columns: long values (URLs, panel ids, error texts, names) cut to a width, the
whole value in the cell's title (shown on hover), so that a list fits a 1,400 px screen without
scrolling sideways. Open a row for everything."""

from operator import attrgetter

from django.contrib import admin
from django.utils import formats, timezone
from django.utils.html import format_html

ELLIPSIS = "…"


def clip(value, length):
    """`value` as text of at most `length` characters; when cut, the whole of it in the title."""
    if value is None or value == "":
        return "—"
    text = str(value)
    if len(text) <= length:
        return text
    return format_html('<span title="{}">{}</span>', text, text[: length - 1].rstrip() + ELLIPSIS)


def clipped(path, description, length, ordering=None):
    """A ModelAdmin display method showing the attribute `path` (dotted: "service.name") clipped
    to `length` characters."""
    get = attrgetter(path)

    @admin.display(description=description, ordering=ordering)
    def column(modeladmin, obj):
        try:
            value = get(obj)
        except AttributeError:  # a null relation on the way
            value = None
        return clip(value, length)

    return column


def dated(path, description, ordering=None):
    """A ModelAdmin display method showing the datetime `path` as "2026-11-25 06:23" (local time),
    the full localized date in the title: Django's own column takes twice the width, unbroken."""
    get = attrgetter(path)

    @admin.display(description=description, ordering=ordering)
    def column(modeladmin, obj):
        value = get(obj)
        if value is None:
            return "—"
        local = timezone.localtime(value) if timezone.is_aware(value) else value
        return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(),
                           formats.date_format(local, "DATETIME_FORMAT"), local.strftime("%Y-%m-%d %H:%M"))

    return column
