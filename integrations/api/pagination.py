from rest_framework.pagination import PageNumberPagination


class PagePagination(PageNumberPagination):
    """`?page=&limit=` as in the SMM route table; `limit` is capped so nobody pages the whole table."""

    page_size_query_param = "limit"
    max_page_size = 100
