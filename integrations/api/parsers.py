"""The API's JSON parser: DRF's, with a limit on nesting.

Python's json module recurses once per level: a body of 100 000 "[" exhausts the stack and DRF,
which only expects ValueError, answers 500. No body of this API nests more than a few levels (an
order's comments: an object holding a list of strings), so anything deeper than MAX_DEPTH is refused
with a 400 before a serializer walks it (OWASP ASVS 13.1: limits on structure, not only on size)."""

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32


class JSONParser(parsers.JSONParser):
    max_depth = MAX_DEPTH

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(self._too_deep()) from None
        if _deeper_than(data, self.max_depth):
            raise ParseError(self._too_deep())
        return data

    def _too_deep(self):
        return _("JSON parse error - the body is nested more than %(depth)d levels deep.") % {"depth": self.max_depth}


def _deeper_than(data, limit):
    """Whether `data` nests more than `limit` arrays/objects; iterative, so no depth can overflow it."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False
