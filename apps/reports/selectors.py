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

from django.db.models import Count, F, Q, Sum
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


def prorate(hours: Decimal, valid_from: datetime.date, valid_until: datetime.date, window: Window) -> Decimal:
    """The share of ``hours`` spread over [valid_from, valid_until) that falls in ``window``."""
    total_days = (valid_until - valid_from).days
    overlap = (min(valid_until, window.end) - max(valid_from, window.start)).days
    if total_days <= 0 or overlap <= 0:
        return ZERO
    return (hours * overlap / total_days).quantize(CENT, rounding=ROUND_HALF_UP)


def prorated(grant, window: Window) -> Decimal:
    """The share of ``grant``'s GPU-hours that falls in ``window`` (see the module docstring)."""
    return prorate(grant.gpu_hours, grant.valid_from, grant.valid_until, window)


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
    [result] = statements_for(organizations=[organization], window=window)
    return result


def statements_for(*, organizations: list, window: Window) -> list[Statement]:
    """``statement`` for several organizations at once, still in two queries."""
    if not organizations:
        return []
    grants = QuotaGrant.objects.filter(
        organization__in=organizations, valid_from__lt=window.end, valid_until__gt=window.start
    ).select_related("pool__provider")
    used = defaultdict(lambda: ZERO)
    used_by_month: dict[int, dict] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for row in (
        UsageMonth.objects.filter(
            grant__organization__in=organizations, month__gte=window.start, month__lt=window.end
        )
        .values("grant_id", "grant__organization_id", "month")
        .annotate(hours=Sum("gpu_hours"))
        .order_by()
    ):
        used[row["grant_id"]] += row["hours"]
        used_by_month[row["grant__organization_id"]][row["month"]] += row["hours"]
    window_months = months(window.start, window.end)
    lines: dict[int, dict[tuple, StatementLine]] = defaultdict(dict)
    granted_by_month: dict[int, dict] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for grant in grants:
        section = "award" if grant.source == QuotaGrant.Source.AWARD else "allocation"
        provider = grant.pool.provider.display_name
        line = lines[grant.organization_id].setdefault(
            (section, provider, grant.pool.code),
            StatementLine(section, provider, grant.pool.code, grant.pool.gpu_class),
        )
        if grant.state in QuotaGrant.LIVE_STATES:
            line.granted += prorated(grant, window)
            for month in window_months:
                granted_by_month[grant.organization_id][month] += prorated(
                    grant, Window(month, next_month(month), "month")
                )
        line.used += used.get(grant.pk, ZERO)
    out = []
    for organization in organizations:
        ordered = sorted(
            lines[organization.pk].values(),
            key=lambda line: (line.section != "allocation", line.provider, line.pool),
        )
        series = [
            (month, granted_by_month[organization.pk][month], used_by_month[organization.pk][month])
            for month in window_months
        ]
        out.append(Statement(organization, window, ordered, series))
    return out


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


# --- transparency ------------------------------------------------------------------------------------


def jain_index(values: list[float]) -> float | None:
    """Jain's fairness index (sum x)^2 / (n * sum x^2): 1 when all are equal, 1/n at worst."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    squares = sum(v * v for v in values)
    return (sum(values) ** 2) / (len(values) * squares) if squares else 1.0


@dataclass
class Figures:
    """Capacity, demand, granted and used GPU-hours of a class, a provider or a kind of org."""

    key: str
    label: str
    capacity: Decimal = ZERO
    requested: Decimal = ZERO
    granted: Decimal = ZERO
    used: Decimal = ZERO
    organizations: int = 0
    level: float | None = None
    jain: float | None = None
    unmet: int = 0
    share: float = 0.0

    @property
    def granted_pct(self) -> int:
        return round(100 * self.granted / self.capacity) if self.capacity else 0

    @property
    def used_pct(self) -> int:
        return round(100 * self.used / self.granted) if self.granted else 0


def _kind_label(kind: str) -> str:
    from apps.organizations.models import OrganizationKind

    return str(OrganizationKind(kind).label) if kind in OrganizationKind.values else kind


def _shares(by_kind: dict[str, Figures]) -> list[Figures]:
    from apps.organizations.models import OrganizationKind

    total = sum((f.granted for f in by_kind.values()), ZERO)
    rows = []
    for kind in OrganizationKind.values:
        figures = by_kind.get(kind) or Figures(kind, _kind_label(kind))
        figures.share = float(100 * figures.granted / total) if total else 0.0
        rows.append(figures)
    return rows


@dataclass
class RoundReport:
    round: object
    classes: list[Figures]
    providers: list[Figures]
    kinds: list[Figures]
    reserved_for_awards: Decimal

    @property
    def totals(self) -> Figures:
        total = Figures("all", str(_("All classes")))
        for figures in self.classes:
            total.capacity += figures.capacity
            total.requested += figures.requested
            total.granted += figures.granted
            total.used += figures.used
        return total


def round_report(*, allocation_round) -> RoundReport:
    """The public figures of a published round: per GPU class, per provider and per kind of
    organization; the max-min level and the Jain index of granted/entitlement among the
    organizations whose demand was not met (entitlement = weight x the class's level). Numbers only:
    no organization is named. A fixed number of aggregate queries (no model instance per org)."""
    from django.db.models import Max
    from django.db.models.functions import Coalesce

    from apps.allocations.models import AllocationRequest, RoundPool, RoundResult, RoundWeight

    final = Coalesce("adjusted_amount", "amount")
    results = RoundResult.objects.filter(round=allocation_round).order_by()
    classes: dict[str, Figures] = {}
    providers: dict[int, Figures] = {}
    reserved = ZERO
    for rp in RoundPool.objects.filter(round=allocation_round).select_related("pool__provider"):
        cls = classes.setdefault(rp.pool.gpu_class, Figures(rp.pool.gpu_class, rp.pool.gpu_class))
        cls.capacity += rp.capacity
        prov = providers.setdefault(
            rp.pool.provider_id, Figures(rp.pool.provider.slug, rp.pool.provider.display_name)
        )
        prov.capacity += rp.capacity
        reserved += Decimal(str((rp.derivation or {}).get("reserved_for_awards", "0")))
    for row in (
        AllocationRequest.objects.filter(round=allocation_round)
        .values("gpu_class")
        .annotate(total=Sum("demand_gpu_hours"))
        .order_by()
    ):
        classes.setdefault(row["gpu_class"], Figures(row["gpu_class"], row["gpu_class"])).requested += row[
            "total"
        ]
    for row in results.values("gpu_class").annotate(
        granted=Sum(final), level=Max("level"), orgs=Count("organization", distinct=True)
    ):
        cls = classes.setdefault(row["gpu_class"], Figures(row["gpu_class"], row["gpu_class"]))
        cls.granted, cls.level, cls.organizations = Decimal(row["granted"] or 0), row["level"], row["orgs"]
    for row in results.filter(pool__isnull=False).values("pool__provider").annotate(granted=Sum(final)):
        if row["pool__provider"] in providers:
            providers[row["pool__provider"]].granted = Decimal(row["granted"] or 0)
    by_kind: dict[str, Figures] = {}
    for row in results.values("organization__kind").annotate(
        granted=Sum(final), orgs=Count("organization", distinct=True)
    ):
        kind = row["organization__kind"]
        by_kind[kind] = Figures(
            kind, _kind_label(kind), granted=Decimal(row["granted"] or 0), organizations=row["orgs"]
        )
    # Jain's index among the organizations whose demand was not met, per class.
    weights = dict(
        RoundWeight.objects.filter(round=allocation_round).values_list("organization_id", "weight")
    )
    ratios: dict[str, list[float]] = defaultdict(list)
    for row in (
        results.filter(stopped_reason=RoundResult.Stopped.POOLS_EXHAUSTED)
        .values("organization_id", "gpu_class")
        .annotate(granted=Sum(final))
    ):
        level = classes[row["gpu_class"]].level
        weight = weights.get(row["organization_id"])
        if level and weight:
            ratios[row["gpu_class"]].append(float(row["granted"] or 0) / (float(weight) * level))
    for gpu_class, figures in classes.items():
        figures.unmet = len(ratios[gpu_class])
        figures.jain = jain_index(ratios[gpu_class])
    # Used: usage under the round's grants, in the round's months.
    for row in (
        UsageMonth.objects.filter(
            grant__source_ref=f"round-{allocation_round.pk}",
            month__gte=allocation_round.period_start,
            month__lt=allocation_round.period_end,
        )
        .values("grant__pool__gpu_class", "grant__pool__provider")
        .annotate(hours=Sum("gpu_hours"))
        .order_by()
    ):
        if row["grant__pool__gpu_class"] in classes:
            classes[row["grant__pool__gpu_class"]].used += row["hours"]
        if row["grant__pool__provider"] in providers:
            providers[row["grant__pool__provider"]].used += row["hours"]
    return RoundReport(
        allocation_round,
        [classes[k] for k in sorted(classes)],
        sorted(providers.values(), key=lambda f: f.label),
        _shares(by_kind),
        reserved,
    )


@dataclass
class YearReport:
    year: int
    rounds: list[RoundReport]
    classes: list[Figures]
    providers: list[Figures]
    kinds: list[Figures]
    programs: list[dict]


def fiscal_year_report(*, year: int) -> YearReport:
    """The public figures of a fiscal year: its published rounds; per class and provider what was
    granted (all sources, pro-rated to the year) and used; the share by kind of organization; and
    the program calls opened in the year with their budgets and awards."""
    from apps.allocations.models import AllocationRound

    window = Window.fiscal_year(year)
    rounds = [
        round_report(allocation_round=r)
        for r in AllocationRound.objects.filter(
            status=AllocationRound.Status.PUBLISHED, fiscal_year=year
        ).order_by("period_start", "pk")
    ]
    classes: dict[str, Figures] = {}
    providers: dict[int, Figures] = {}
    by_kind: dict[str, Figures] = {}
    orgs_by_kind: dict[str, set] = defaultdict(set)
    from apps.providers.models import Provider

    provider_names = {p.pk: p for p in Provider.objects.all()}
    grants = QuotaGrant.objects.filter(
        valid_from__lt=window.end, valid_until__gt=window.start, state__in=QuotaGrant.LIVE_STATES
    ).values_list(
        "gpu_hours",
        "valid_from",
        "valid_until",
        "pool__gpu_class",
        "pool__provider_id",
        "organization__kind",
        "organization_id",
    )
    for hours, valid_from, valid_until, gpu_class, provider_id, kind, org_id in grants.iterator(
        chunk_size=5000
    ):
        amount = prorate(hours, valid_from, valid_until, window)
        classes.setdefault(gpu_class, Figures(gpu_class, gpu_class)).granted += amount
        if provider_id not in providers:
            provider = provider_names[provider_id]
            providers[provider_id] = Figures(provider.slug, provider.display_name)
        providers[provider_id].granted += amount
        by_kind.setdefault(kind, Figures(kind, _kind_label(kind))).granted += amount
        orgs_by_kind[kind].add(org_id)
    from apps.providers.models import PoolPeriod

    for period in PoolPeriod.objects.filter(
        starts_on__lt=window.end, ends_on__gt=window.start
    ).select_related("pool__provider"):
        share = prorate(period.capacity_gpu_hours, period.starts_on, period.ends_on, window)
        classes.setdefault(
            period.pool.gpu_class, Figures(period.pool.gpu_class, period.pool.gpu_class)
        ).capacity += share
        providers.setdefault(
            period.pool.provider_id, Figures(period.pool.provider.slug, period.pool.provider.display_name)
        ).capacity += share
    for row in (
        UsageMonth.objects.filter(month__gte=window.start, month__lt=window.end)
        .values("grant__pool__gpu_class", "grant__pool__provider")
        .annotate(hours=Sum("gpu_hours"))
        .order_by()
    ):
        if row["grant__pool__gpu_class"] in classes:
            classes[row["grant__pool__gpu_class"]].used += row["hours"]
        if row["grant__pool__provider"] in providers:
            providers[row["grant__pool__provider"]].used += row["hours"]
    for kind, figures in by_kind.items():
        figures.organizations = len(orgs_by_kind[kind])
    return YearReport(
        year,
        rounds,
        [classes[k] for k in sorted(classes)],
        sorted(providers.values(), key=lambda f: f.label),
        _shares(by_kind),
        _programs(window),
    )


def _programs(window: Window) -> list[dict]:
    """Calls opened in the window: budget and awarded GPU-hours per class (live awards)."""
    from django.db.models.functions import TruncDate

    from apps.grants.models import Award, AwardLine, Call

    calls = list(
        Call.objects.annotate(opened=TruncDate("opens_at"))
        .filter(opened__gte=window.start, opened__lt=window.end)
        .select_related("program")
        .order_by("opens_at", "pk")
    )
    awarded: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
    counts: dict[int, int] = defaultdict(int)
    for row in (
        AwardLine.objects.filter(award__application__call__in=calls)
        .exclude(award__status=Award.Status.REVOKED)
        .values("award__application__call", "gpu_class")
        .annotate(hours=Sum("gpu_hours"))
        .order_by()
    ):
        awarded[(row["award__application__call"], row["gpu_class"])] += row["hours"]
    for row in (
        Award.objects.filter(application__call__in=calls)
        .exclude(status=Award.Status.REVOKED)
        .values("application__call")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        counts[row["application__call"]] = row["n"]
    out = []
    for call in calls:
        budget = call.budget or {}
        out.append(
            {
                "call": call,
                "awards": counts[call.pk],
                "classes": [
                    {"gpu_class": cls, "budget": budget[cls], "awarded": awarded[(call.pk, cls)]}
                    for cls in sorted(budget)
                ],
            }
        )
    return out


def transparency_years() -> list[int]:
    from apps.allocations.models import AllocationRound

    return sorted(
        set(
            AllocationRound.objects.filter(status=AllocationRound.Status.PUBLISHED).values_list(
                "fiscal_year", flat=True
            )
        ),
        reverse=True,
    )


# --- usage lists and the audit log ---------------------------------------------------------------------


def _usage_filters(
    qs, *, prefix: str, month: str = "", provider: str = "", organization: str = "", gpu_class: str = ""
):
    if provider:
        qs = qs.filter(**{f"{prefix}pool__provider__slug": provider})
    if organization:
        qs = qs.filter(**{f"{prefix}organization__slug": organization})
    if gpu_class:
        qs = qs.filter(**{f"{prefix}pool__gpu_class": gpu_class})
    return qs


def usage_month_list(*, org=None, month: str = "", **filters):
    """Usage by organization, pool and month (the rollup), newest month first."""
    qs = UsageMonth.objects.select_related("grant__organization", "grant__pool__provider")
    if org is not None:  # a member's own list (``organization`` is the staff's slug filter)
        qs = qs.filter(grant__organization=org)
    if month:
        qs = qs.filter(month=datetime.date(int(month[:4]), int(month[5:7]), 1))
    qs = _usage_filters(qs, prefix="grant__", **filters)
    return qs.order_by("-month", "grant__organization__slug", "grant__pool__code", "grant_id")


def usage_record_list(*, org=None, month: str = "", **filters):
    """Usage records as the providers reported them, newest first."""
    from zoneinfo import ZoneInfo

    from apps.providers.models import UsageRecord

    qs = UsageRecord.objects.select_related("grant__organization", "grant__pool", "provider")
    if org is not None:  # a member's own list (``organization`` is the staff's slug filter)
        qs = qs.filter(grant__organization=org)
    if month:
        tokyo = ZoneInfo("Asia/Tokyo")
        start = datetime.datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=tokyo)
        end = datetime.datetime.combine(next_month(start.date()), datetime.time(), tzinfo=tokyo)
        qs = qs.filter(started_at__gte=start, started_at__lt=end)
    qs = _usage_filters(qs, prefix="grant__", **filters)
    return qs.order_by("-started_at", "-id")


def audit_event_list(*, action: str = "", actor: str = "", target_type: str = "", target_id: str = ""):
    from apps.governance.models import AuditEvent

    qs = AuditEvent.objects.select_related("actor")
    if action:
        qs = qs.filter(action__startswith=action)
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if target_id:
        qs = qs.filter(target_id=target_id)
    return qs.order_by("-id")
