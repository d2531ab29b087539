"""Every list of the API: `?page=&limit=` as in the SMM route table, a capped count, and a cursor for
the pages beyond what page numbers reach (see integrations.paging for why).

The answer keeps DRF's shape (`count`, `next`, `previous`, `results`) and adds `countCapped` and
`nextCursor`:

- `count` is exact up to `count_cap` rows; beyond, it is `count_cap` and `countCapped` is true ("more
  than 10,000").
- `page` reaches the first `max_depth` rows; a page starting deeper is a 400 on `page`.
- `cursor` (a page's `nextCursor`) continues after that page's last row, at any depth, in the same
  order, unaffected by rows added meanwhile. `next` follows page numbers while they reach and turns
  into a cursor link at the depth limit, so a client that follows `next` never meets the 400.
"""

from django.utils.translation import gettext as _
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from integrations.paging import COUNT_CAP, InvalidCursor, Keyset, capped_count


class PagePagination(PageNumberPagination):
    page_size_query_param = "limit"
    max_page_size = 100  # nobody pages the whole table in one answer
    cursor_query_param = "cursor"
    count_cap = COUNT_CAP
    max_depth = COUNT_CAP  # rows reachable with page numbers (== count_cap: every counted page exists)

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = self.get_page_size(request)
        keyset = Keyset(queryset)
        queryset = keyset.order(queryset)
        cursor = request.query_params.get(self.cursor_query_param)
        if cursor is not None:
            if self.page_query_param in request.query_params:
                raise ValidationError({self.cursor_query_param: [_("Give either page or cursor, not both.")]})
            try:
                rows_from = keyset.after(queryset, cursor)
            except InvalidCursor:
                raise ValidationError({self.cursor_query_param: [
                    _("This cursor does not belong to this list; start again from the first page.")]}) from None
            self.number, offset = None, 0
        else:
            self.number = self._page_number(request)
            offset = (self.number - 1) * self.limit
            if offset >= self.max_depth:
                raise ValidationError({self.page_query_param: [
                    _("Page numbers reach the first %(depth)d rows. To go further, follow next, or pass "
                      "cursor=<the nextCursor of the page before>.") % {"depth": self.max_depth}]})
            rows_from = queryset
        rows = list(rows_from[offset:offset + self.limit + 1])
        self.has_next = len(rows) > self.limit
        self.rows = rows[:self.limit]
        if self.number and self.number > 1 and not self.rows:
            raise NotFound(self.invalid_page_message.format(page_number=self.number, message=_("That page is empty.")))
        self.count, self.capped = capped_count(queryset, self.count_cap)
        self.next_cursor = keyset.token(self.rows[-1]) if self.has_next else None
        return self.rows

    def _page_number(self, request):
        raw = request.query_params.get(self.page_query_param) or 1
        try:
            number = int(raw)
        except (TypeError, ValueError):
            number = 0
        if number < 1:
            raise NotFound(self.invalid_page_message.format(page_number=raw, message=_("That is not a page number.")))
        return number

    def get_next_link(self):
        if not self.has_next:
            return None
        url = self.request.build_absolute_uri()
        if self.number is not None and self.number * self.limit < self.max_depth:
            return replace_query_param(url, self.page_query_param, self.number + 1)
        return replace_query_param(remove_query_param(url, self.page_query_param),
                                   self.cursor_query_param, self.next_cursor)

    def get_previous_link(self):
        if not self.number or self.number == 1:
            return None
        url = self.request.build_absolute_uri()
        if self.number == 2:
            return remove_query_param(url, self.page_query_param)
        return replace_query_param(url, self.page_query_param, self.number - 1)

    def get_paginated_response(self, data):
        return Response({
            "count": self.count,
            "countCapped": self.capped,
            "next": self.get_next_link(),
            "previous": self.get_previous_link(),
            "nextCursor": self.next_cursor,
            "results": data,
        })

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["count", "countCapped", "next", "previous", "nextCursor", "results"],
            "properties": {
                "count": {"type": "integer", "example": 123, "description": (
                    f"Matching rows, exact up to {self.count_cap}; when countCapped is true there are more "
                    f"than this (the count stops at {self.count_cap} so that a list costs the same at any size).")},
                "countCapped": {"type": "boolean", "description": f"True: more than {self.count_cap} rows match."},
                "next": {**link, "description": (
                    "The next page: by page number while page numbers reach (the first "
                    f"{self.max_depth} rows), then by cursor. Null on the last page.")},
                "previous": {**link, "description": "The previous page by number (null on the first page and "
                                                    "on pages reached by cursor)."},
                "nextCursor": {"type": "string", "nullable": True, "description": (
                    "Pass it as cursor to get the rows after this page at any depth, in the same order, "
                    "unaffected by rows added meanwhile. Null on the last page.")},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.page_query_param, "required": False, "in": "query",
             "description": (f"Page number, from 1. Pages reach the first {self.max_depth} rows; a page starting "
                             "deeper is a 400 (use cursor). A page past the last row is a 404."),
             "schema": {"type": "integer", "minimum": 1}},
            {"name": self.page_size_query_param, "required": False, "in": "query",
             "description": f"Rows per page, 1 to {self.max_page_size} (default {self.page_size}).",
             "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size}},
            {"name": self.cursor_query_param, "required": False, "in": "query",
             "description": ("A page's nextCursor: the rows after that page, at any depth (not with page). "
                             "A cursor of another list, or altered, is a 400."),
             "schema": {"type": "string"}},
        ]
