"""Read models of the reporting side: member statements, inter-provider settlement, transparency.

Usage comes from the monthly rollup (``providers.UsageMonth``: a record counts in the Asia/Tokyo
month its interval starts), so these read thousands of rows whatever the number of usage records.

Granted GPU-hours in a window (a month, a fiscal year) are pro-rated: a grant valid for D days of
which d fall in the window counts ``gpu_hours * d / D`` there (a quarterly grant of 900 GPU-hours
counts 300 in each of its months, give or take the months' lengths). Only live grants count as
granted; usage under any grant counts as used.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F, Q, Sum
from django.utils.translation import gettext_lazy as _

from apps.allocations.models import fiscal_year_bounds
from apps.providers.models import QuotaGrant, UsageMonth

ZERO = Decimal("0")
CENT = Decimal("0.01")


def month_start(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def next_month(day: datetime.date) -> datetime.date:
    return datetime.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def fiscal_year_of(day: datetime.date) -> int:
    return day.year if day.month >= 4 else day.year - 1


def months(start: datetime.date, end: datetime.date) -> list[datetime.date]:
    out, day = [], month_start(start)
    while day < end:
        out.append(day)
        day = next_month(day)
    return out


@dataclass(frozen=True)
class Window:
    """A reporting period: a month or a Japanese fiscal year (end exclusive)."""

    start: datetime.date
    end: datetime.date
    kind: str  # "month" or "fy"

    @classmethod
    def fiscal_year(cls, year: int) -> Window:
        start, end = fiscal_year_bounds(year)
        return cls(start, end, "fy")

    @classmethod
    def month(cls, year: int, month: int) -> Window:
        start = datetime.date(year, month, 1)
        return cls(start, next_month(start), "month")

    @property
    def fiscal_year_number(self) -> int:
        return fiscal_year_of(self.start)

    @property
    def key(self) -> str:
        return f"{self.start:%Y-%m}" if self.kind == "month" else f"FY{self.start.year}"


def prorated(grant, window: Window) -> Decimal:
    """The share of ``grant``'s GPU-hours that falls in ``window`` (see the module docstring)."""
    total_days = (grant.valid_until - grant.valid_from).days
    overlap = (min(grant.valid_until, window.end) - max(grant.valid_from, window.start)).days
    if total_days <= 0 or overlap <= 0:
        return ZERO
    return (grant.gpu_hours * overlap / total_days).quantize(CENT, rounding=ROUND_HALF_UP)


# --- member statements ---------------------------------------------------------------------------


@dataclass
class StatementLine:
    section: str  # "allocation" or "award"
    provider: str
    pool: str
    gpu_class: str
    granted: Decimal = ZERO
    used: Decimal = ZERO

    @property
    def section_label(self) -> str:
        return str(SECTIONS[self.section])

    @property
    def used_pct(self) -> int:
        return round(100 * self.used / self.granted) if self.granted else 0

    @property
    def over(self) -> bool:
        return self.used > self.granted


SECTIONS = {"allocation": _("Allocations"), "award": _("Program awards")}


@dataclass
class Statement:
    organization: object
    window: Window
    lines: list[StatementLine] = field(default_factory=list)
    by_month: list[tuple[datetime.date, Decimal, Decimal]] = field(default_factory=list)

    def section(self, name: str) -> list[StatementLine]:
        return [line for line in self.lines if line.section == name]

    @property
    def allocations(self) -> list[StatementLine]:
        return self.section("allocation")

    @property
    def awards(self) -> list[StatementLine]:
        return self.section("award")

    def _total(self, lines, attr) -> Decimal:
        return sum((getattr(line, attr) for line in lines), ZERO)

    @property
    def totals(self) -> dict:
        return {
            name: {
                "granted": self._total(self.section(name), "granted"),
                "used": self._total(self.section(name), "used"),
            }
            for name in SECTIONS
        } | {"all": {"granted": self._total(self.lines, "granted"), "used": self._total(self.lines, "used")}}


def statement(*, organization, window: Window) -> Statement:
    """Per pool and provider, GPU-hours granted (pro-rated) and used in the window, program awards
    apart; and month by month for the chart. Two queries."""
    grants = list(
        QuotaGrant.objects.filter(
            organization=organization, valid_from__lt=window.end, valid_until__gt=window.start
        ).select_related("pool__provider")
    )
    used = defaultdict(lambda: ZERO)
    used_by_month = defaultdict(lambda: ZERO)
    for row in (
        UsageMonth.objects.filter(
            grant__organization=organization, month__gte=window.start, month__lt=window.end
        )
        .values("grant_id", "month")
        .annotate(hours=Sum("gpu_hours"))
        .order_by()
    ):
        used[row["grant_id"]] += row["hours"]
        used_by_month[row["month"]] += row["hours"]
    lines: dict[tuple, StatementLine] = {}
    granted_by_month = defaultdict(lambda: ZERO)
    for grant in grants:
        section = "award" if grant.source == QuotaGrant.Source.AWARD else "allocation"
        key = (section, grant.pool.provider.display_name, grant.pool.code)
        line = lines.setdefault(
            key,
            StatementLine(section, grant.pool.provider.display_name, grant.pool.code, grant.pool.gpu_class),
        )
        if grant.state in QuotaGrant.LIVE_STATES:
            line.granted += prorated(grant, window)
            for month in months(window.start, window.end):
                granted_by_month[month] += prorated(grant, Window(month, next_month(month), "month"))
        line.used += used.get(grant.pk, ZERO)
    ordered = sorted(
        lines.values(), key=lambda line: (line.section != "allocation", line.provider, line.pool)
    )
    series = [
        (month, granted_by_month[month], used_by_month[month]) for month in months(window.start, window.end)
    ]
    return Statement(organization, window, ordered, series)


def statement_years(*, organization) -> list[int]:
    """The fiscal years in which the organization had grants (newest first), at least the current one."""
    from django.utils import timezone

    years = {fiscal_year_of(timezone.localdate())}
    for start, end in QuotaGrant.objects.filter(organization=organization).values_list(
        "valid_from", "valid_until"
    ):
        years.add(fiscal_year_of(start))
        years.add(fiscal_year_of(end - datetime.timedelta(days=1)))
    return sorted(years, reverse=True)


# --- inter-provider settlement ---------------------------------------------------------------------


@dataclass
class SettlementRow:
    home_provider: object
    serving_provider: object
    gpu_hours: Decimal
    amount: Decimal

    @property
    def is_resale(self) -> bool:
        return self.home_provider.pk != self.serving_provider.pk


def settlement(*, window: Window, provider=None) -> list[SettlementRow]:
    """For each (home provider of the member, serving provider) pair: GPU-hours used in the window
    and their amount at the serving pool's wholesale rate (JPY). ``provider`` keeps the rows where
    it is the home or the serving provider. One query, plus the providers."""
    from apps.providers.models import Provider

    qs = UsageMonth.objects.filter(month__gte=window.start, month__lt=window.end)
    if provider is not None:
        qs = qs.filter(Q(grant__organization__home_provider=provider) | Q(grant__pool__provider=provider))
    rows = (
        qs.values(home=F("grant__organization__home_provider"), serving=F("grant__pool__provider"))
        .annotate(hours=Sum("gpu_hours"), amount=Sum(F("gpu_hours") * F("grant__pool__wholesale_rate")))
        .order_by()
    )
    rows = list(rows)
    providers = Provider.objects.in_bulk({r["home"] for r in rows} | {r["serving"] for r in rows})
    out = [
        SettlementRow(
            providers[r["home"]],
            providers[r["serving"]],
            r["hours"] or ZERO,
            (r["amount"] or ZERO).quantize(Decimal("1"), rounding=ROUND_HALF_UP),
        )
        for r in rows
    ]
    return sorted(out, key=lambda r: (r.home_provider.slug, r.serving_provider.slug))


def parse_window(value: str, *, default_year: int | None = None) -> Window | None:
    """``FY2026`` (a fiscal year) or ``2026-05`` (a month); None when it is neither."""
    import re

    value = (value or "").strip()
    if match := re.fullmatch(r"FY(\d{4})", value):
        year = int(match.group(1))
        return Window.fiscal_year(year) if 2000 <= year <= 2999 else None
    if match := re.fullmatch(r"(\d{4})-(\d{2})", value):
        year, month = int(match.group(1)), int(match.group(2))
        return Window.month(year, month) if 2000 <= year <= 2999 and 1 <= month <= 12 else None
    return None


def window_choices(years: list[int]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Grouped choices for a period <select>: each fiscal year, then its twelve months."""
    groups = []
    for year in years:
        start, end = fiscal_year_bounds(year)
        options = [(f"FY{year}", str(_("Fiscal year %(year)s (whole year)") % {"year": year}))]
        options += [(f"{m:%Y-%m}", f"{m:%Y-%m}") for m in months(start, end)]
        groups.append((str(_("Fiscal year %(year)s") % {"year": year}), options))
    return groups
