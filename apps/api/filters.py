"""Query-string filters of the list endpoints (django-filter). A value that does not parse answers
400 with the field's message, never a 500, and never silently matches nothing or everything: ids and
years are whole numbers in range, codes and slugs match their pattern, free text has no control
characters. Each filter class carries its OpenAPI schema (``extend_schema_field``), so the schema
says exactly what the filter accepts (tests/api/test_schemathesis.py holds them to it). An empty
value means "no filter"."""

from __future__ import annotations

import datetime
import re
import uuid

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from apps.allocations.models import AllocationRequest, AllocationRound
from apps.api.selectors import MEMBER_ROUND_STATUSES, month_bounds
from apps.providers.models import QuotaGrant, UsageRecord
from apps.providers.selectors import SyncState

MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")  # fullmatch: no trailing newline, ASCII digits
MONTH_PATTERN = r"^2[0-9]{3}-(0[1-9]|1[0-2])$"
SLUG_PATTERN = r"^[-a-zA-Z0-9_]+$"
# Single-line text as every text field accepts it (apps.core.text): no C0/C1 controls, line or
# paragraph separators, bidi controls or non-characters (ECMA and Python syntax). A lone surrogate
# cannot be sent in a URL's UTF-8 at all.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufdd0-\ufdef\ufffe\uffff]+$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
INTEGER_PATTERN = r"^[0-9]{1,18}$"
MAX_ID = 10**18 - 1  # the URL converter's 18 digits


def parse_month(value: str) -> datetime.date:
    """``YYYY-MM`` as the first day of that month; ValidationError otherwise."""
    match = MONTH_RE.fullmatch(value or "")
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 2000 <= year <= 2999 and 1 <= month <= 12:
            return datetime.date(year, month, 1)
    raise ValidationError(_("Enter a month as YYYY-MM, for example 2026-04."), code="invalid_month")


class _PatternField(forms.CharField):
    """The raw value (not stripped) must match ``pattern``, as the OpenAPI schema says."""

    pattern = ""
    message = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)
        self._compiled = re.compile(self.pattern)

    def validate(self, value):
        super().validate(value)
        # fullmatch: with search(), "$" would also match before a trailing newline ("h200\n").
        if value not in self.empty_values and not self._compiled.fullmatch(value):
            raise ValidationError(self.message, code="invalid")


class StrictIntegerField(_PatternField):
    """ASCII digits only (forms.IntegerField takes " 5", "5.0", "+5" and other scripts' digits
    too), within bounds."""

    pattern = INTEGER_PATTERN
    message = _("Enter a whole number.")

    def __init__(self, *args, min_value: int, max_value: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.min_value, self.max_value = min_value, max_value

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return None
        number = int(value)
        if not self.min_value <= number <= self.max_value:
            raise ValidationError(
                _("Enter a whole number from %(min)s to %(max)s.")
                % {"min": self.min_value, "max": self.max_value},
                code="invalid",
            )
        return number


class StrictDateField(_PatternField):
    pattern = DATE_PATTERN
    message = _("Enter a date as YYYY-MM-DD.")

    def clean(self, value):
        value = super().clean(value)
        if value in self.empty_values:
            return None
        try:
            return datetime.date.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError(self.message, code="invalid") from exc


class StrictUUIDField(_PatternField):
    pattern = UUID_PATTERN
    message = _("Enter a valid UUID.")

    def clean(self, value):
        value = super().clean(value)
        return uuid.UUID(value) if value not in self.empty_values else None


class SlugFormField(_PatternField):
    pattern = SLUG_PATTERN
    message = _("Enter letters, digits, hyphens or underscores only.")


class TextFormField(_PatternField):
    pattern = TEXT_PATTERN
    message = _("Control characters are not allowed.")


@extend_schema_field({"type": "string", "pattern": SLUG_PATTERN, "maxLength": 80})
class SlugFilter(django_filters.CharFilter):
    field_class = SlugFormField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 80)
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "string", "pattern": TEXT_PATTERN, "maxLength": 40})
class GpuClassFilter(django_filters.CharFilter):
    field_class = TextFormField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 40)
        super().__init__(*args, **kwargs)


class IntegerFilter(django_filters.Filter):
    """A whole number (not 1.5, not 1e3) between ``min_value`` and ``max_value``."""

    field_class = StrictIntegerField


@extend_schema_field({"type": "string", "format": "date", "pattern": DATE_PATTERN})
class StrictDateFilter(django_filters.DateFilter):
    field_class = StrictDateField


@extend_schema_field({"type": "string", "format": "uuid", "pattern": UUID_PATTERN})
class StrictUUIDFilter(django_filters.UUIDFilter):
    field_class = StrictUUIDField


class StrictFilterSet(django_filters.FilterSet):
    """A parameter given with an empty value is refused (400) rather than silently ignored: the
    schema's enums and patterns do not include the empty string either."""

    def is_valid(self):
        valid = super().is_valid()
        for name in self.filters:
            if name in self.data and not self.data.get(name):
                self.form.add_error(
                    name, ValidationError(_("Give a value, or leave the parameter out."), code="empty")
                )
                valid = False
        return valid


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(IntegerFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=1, max_value=MAX_ID, **kwargs)


@extend_schema_field({"type": "integer", "minimum": 2000, "maximum": 2999})
class FiscalYearFilter(IntegerFilter):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=2000, max_value=2999, **kwargs)


class MonthFormField(forms.CharField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("strip", False)
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        value = super().to_python(value)
        return parse_month(value) if value else None


@extend_schema_field({"type": "string", "pattern": MONTH_PATTERN})
class MonthFilter(django_filters.CharFilter):
    """Records that started in the month (in the portal's time zone)."""

    field_class = MonthFormField

    def filter(self, qs, value):
        if value is None:
            return qs
        start, end = month_bounds(value)
        return qs.filter(**{f"{self.field_name}__gte": start, f"{self.field_name}__lt": end})


class RoundFilter(StrictFilterSet):
    status = django_filters.ChoiceFilter(
        choices=[(s.value, s.label) for s in MEMBER_ROUND_STATUSES], help_text="open, closed or published"
    )
    fiscal_year = FiscalYearFilter(help_text="The Japanese fiscal year, e.g. 2026.")

    class Meta:
        model = AllocationRound
        fields = ["status", "fiscal_year"]


class RequestFilter(StrictFilterSet):
    round = IdFilter(field_name="round_id", help_text="A round id.")
    gpu_class = GpuClassFilter(help_text="A GPU class, e.g. H200.")

    class Meta:
        model = AllocationRequest
        fields = ["round", "gpu_class"]


class GrantFilter(StrictFilterSet):
    state = django_filters.ChoiceFilter(choices=QuotaGrant.State.choices)
    sync = django_filters.ChoiceFilter(
        field_name="sync_state", choices=SyncState.choices, help_text="failing, drifted, sending or in_sync"
    )
    pool = SlugFilter(field_name="pool__code", help_text="A pool code.")
    gpu_class = GpuClassFilter(field_name="pool__gpu_class", help_text="A GPU class, e.g. H200.")
    provider = SlugFilter(field_name="pool__provider__slug", help_text="A provider slug.")
    source = django_filters.ChoiceFilter(choices=QuotaGrant.Source.choices)
    valid_on = StrictDateFilter(method="filter_valid_on", help_text="Grants valid on this day (YYYY-MM-DD).")

    class Meta:
        model = QuotaGrant
        fields = ["state", "sync", "pool", "gpu_class", "provider", "source", "valid_on"]

    def filter_valid_on(self, qs, name, value):
        return qs.filter(valid_from__lte=value, valid_until__gt=value)


class UsageFilter(StrictFilterSet):
    month = MonthFilter(field_name="started_at", help_text="Records that started in this month (YYYY-MM).")
    pool = SlugFilter(field_name="grant__pool__code", help_text="A pool code.")
    provider = SlugFilter(field_name="grant__pool__provider__slug", help_text="A provider slug.")
    grant = StrictUUIDFilter(field_name="grant__public_id", help_text="A grant id.")

    class Meta:
        model = UsageRecord
        fields = ["month", "pool", "provider", "grant"]
