from django.utils.translation import gettext_lazy as _
from rest_framework.pagination import PageNumberPagination


class ApiPagination(PageNumberPagination):
    """``?page=`` (from 1) and ``?page_size=`` (up to 200, 50 by default)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    invalid_page_message = _("This page does not exist.")
