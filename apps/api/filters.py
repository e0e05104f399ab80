"""Query-string filters of the list endpoints (django-filter). A value that does not parse answers
400 with the field's message, never a 500."""

from __future__ import annotations

import datetime
import re

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.allocations.models import AllocationRequest, AllocationRound
from apps.api.selectors import MEMBER_ROUND_STATUSES, month_bounds
from apps.providers.models import QuotaGrant, UsageRecord
from apps.providers.selectors import SyncState

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str) -> datetime.date:
    """``YYYY-MM`` as the first day of that month; ValidationError otherwise."""
    match = MONTH_RE.match((value or "").strip())
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 2000 <= year <= 2999 and 1 <= month <= 12:
            return datetime.date(year, month, 1)
    raise ValidationError(_("Enter a month as YYYY-MM, for example 2026-04."), code="invalid_month")


class MonthFormField(forms.CharField):
    def to_python(self, value):
        value = super().to_python(value)
        return parse_month(value) if value else None


class MonthFilter(django_filters.CharFilter):
    """Records that started in the month (in the portal's time zone)."""

    field_class = MonthFormField

    def filter(self, qs, value):
        if value is None:
            return qs
        start, end = month_bounds(value)
        return qs.filter(**{f"{self.field_name}__gte": start, f"{self.field_name}__lt": end})


class RoundFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=[(s.value, s.label) for s in MEMBER_ROUND_STATUSES], help_text="open, closed or published"
    )
    fiscal_year = django_filters.NumberFilter(help_text="The Japanese fiscal year, e.g. 2026.")

    class Meta:
        model = AllocationRound
        fields = ["status", "fiscal_year"]


class RequestFilter(django_filters.FilterSet):
    round = django_filters.NumberFilter(field_name="round_id", help_text="A round id.")
    gpu_class = django_filters.CharFilter(help_text="A GPU class, e.g. H200.")

    class Meta:
        model = AllocationRequest
        fields = ["round", "gpu_class"]


class GrantFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=QuotaGrant.State.choices)
    sync = django_filters.ChoiceFilter(
        field_name="sync_state", choices=SyncState.choices, help_text="failing, drifted, sending or in_sync"
    )
    pool = django_filters.CharFilter(field_name="pool__code", help_text="A pool code.")
    gpu_class = django_filters.CharFilter(field_name="pool__gpu_class", help_text="A GPU class, e.g. H200.")
    provider = django_filters.CharFilter(field_name="pool__provider__slug", help_text="A provider slug.")
    source = django_filters.ChoiceFilter(choices=QuotaGrant.Source.choices)
    valid_on = django_filters.DateFilter(
        method="filter_valid_on", help_text="Grants valid on this day (YYYY-MM-DD)."
    )

    class Meta:
        model = QuotaGrant
        fields = ["state", "sync", "pool", "gpu_class", "provider", "source", "valid_on"]

    def filter_valid_on(self, qs, name, value):
        return qs.filter(valid_from__lte=value, valid_until__gt=value)


class UsageFilter(django_filters.FilterSet):
    month = MonthFilter(field_name="started_at", help_text="Records that started in this month (YYYY-MM).")
    pool = django_filters.CharFilter(field_name="grant__pool__code", help_text="A pool code.")
    provider = django_filters.CharFilter(
        field_name="grant__pool__provider__slug", help_text="A provider slug."
    )
    grant = django_filters.UUIDFilter(field_name="grant__public_id", help_text="A grant id.")

    class Meta:
        model = UsageRecord
        fields = ["month", "pool", "provider", "grant"]
