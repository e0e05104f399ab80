"""Reads of the allocation round for its pages. Every function runs a fixed number of queries,
whatever the number of organizations, requests or results."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Case, Count, IntegerField, Max, Min, Prefetch, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce

from apps.allocations.models import (
    AllocationRequest,
    AllocationRound,
    FairSharePolicy,
    RoundPool,
    RoundResult,
    RoundWeight,
)
from apps.organizations.models import MembershipTier, Organization, OrganizationKind
from apps.providers.models import ResourcePool

Status = AllocationRound.Status


# --- rounds --------------------------------------------------------------------------------------


def round_list():
    """All rounds, newest first, with how many requests and organizations each has."""
    return AllocationRound.objects.select_related("policy").annotate(
        request_count=Count("requests", distinct=True),
        org_count=Count("requests__organization", distinct=True),
        demand_total=Sum("requests__demand_gpu_hours"),
    )


def round_get(*, round_id: int) -> AllocationRound | None:
    return AllocationRound.objects.select_related("policy").filter(pk=round_id).first()


def policy_list():
    return FairSharePolicy.objects.order_by("-is_default", "name")


def round_is_computing(allocation_round: AllocationRound) -> bool:
    """A compute task was asked for and has neither finished nor failed."""
    return (
        bool(allocation_round.task_id)
        and allocation_round.progress < 100
        and not allocation_round.last_error
        and allocation_round.status in (Status.CLOSED, Status.COMPUTED)
    )


def request_summary(*, allocation_round: AllocationRound) -> list[dict]:
    """Per GPU class: the number of requests and the GPU-hours asked for."""
    return list(
        AllocationRequest.objects.filter(round=allocation_round)
        .values("gpu_class")
        .annotate(requests=Count("pk"), demand=Sum("demand_gpu_hours"))
        .order_by("gpu_class")
    )


# --- the result of a round -----------------------------------------------------------------------


@dataclass
class Placement:
    result: RoundResult  # one (organization, pool) row; adjusted in place by the staff

    @property
    def pool(self):
        return self.result.pool

    @property
    def amount(self) -> int:
        return self.result.final_amount


@dataclass
class OrgRow:
    organization: Organization
    gpu_class: str
    demand: int = 0
    exact: float = 0.0
    level: float = 0.0
    stopped_reason: str = ""
    stopped_label: str = ""
    exhausted_pools: list = field(default_factory=list)
    weight: RoundWeight | None = None
    placements: list[Placement] = field(default_factory=list)
    requested: int = 0  # the demand as filed (``demand`` is after the policy's cap)

    @property
    def granted(self) -> int:
        return sum(p.amount for p in self.placements)

    @property
    def derivation(self) -> dict:
        """The weight's derivation with readable names of the tier and kind, and the usage term."""
        if self.weight is None:
            return {}
        d = dict(self.weight.derivation or {})
        d["tier_label"] = MembershipTier(d["tier"]).label if d.get("tier") in MembershipTier.values else "—"
        kind = d.get("kind")
        d["kind_label"] = OrganizationKind(kind).label if kind in OrganizationKind.values else kind
        d["usage"] = dict(d.get("usage") or {})
        return d

    @property
    def adjusted(self) -> bool:
        return any(p.result.adjusted_amount is not None for p in self.placements)

    @property
    def demand_met(self) -> bool:
        return self.stopped_reason == RoundResult.Stopped.DEMAND_MET

    @property
    def met_pct(self) -> int:
        return round(100 * self.granted / self.demand) if self.demand else 100


@dataclass
class PoolRow:
    round_pool: RoundPool
    granted: int = 0

    @property
    def pool(self):
        return self.round_pool.pool

    @property
    def capacity(self) -> int:
        return self.round_pool.capacity

    @property
    def used_pct(self) -> int:
        return round(100 * self.granted / self.capacity) if self.capacity else 0


@dataclass
class ClassResult:
    """A GPU class of the round: its pools and the class's totals (SQL aggregates, not sums over
    the organizations' rows)."""

    gpu_class: str
    pools: list[PoolRow] = field(default_factory=list)
    orgs: int = 0
    met: int = 0
    demand: int = 0
    granted: int = 0
    max_level: float = 0.0

    @property
    def capacity(self) -> int:
        return sum(p.capacity for p in self.pools)

    @property
    def granted_pct(self) -> int:
        return round(100 * self.granted / self.capacity) if self.capacity else 0


@dataclass
class ResultPage:
    """One page of a round's result rows (one per organization and class) and the totals of every
    row the filters match."""

    page: object  # django.core.paginator.Page of (organization, class) keys
    rows: list[OrgRow]
    count: int
    demand: int
    granted: int
    met: int


FINAL_AMOUNT = Coalesce("adjusted_amount", "amount")


def _results(allocation_round: AllocationRound, organization: Organization | None = None):
    results = RoundResult.objects.filter(round=allocation_round).select_related(
        "organization", "pool__provider", "adjusted_by"
    )
    if organization is not None:
        results = results.filter(organization=organization)
    return results.order_by("gpu_class", "organization__slug", "pool__code")


def _org_rows(results, weights: dict[int, RoundWeight]) -> dict[str, list[OrgRow]]:
    rows: dict[tuple[int, str], OrgRow] = {}
    for result in results:
        key = (result.organization_id, result.gpu_class)
        row = rows.get(key)
        if row is None:
            row = rows[key] = OrgRow(
                organization=result.organization,
                gpu_class=result.gpu_class,
                demand=result.demand,
                exact=result.exact_amount,
                level=result.level,
                stopped_reason=result.stopped_reason,
                stopped_label=result.get_stopped_reason_display(),
                exhausted_pools=list(result.exhausted_pools or []),
                weight=weights.get(result.organization_id),
            )
        if result.pool_id is not None:
            row.placements.append(Placement(result=result))
    by_class: dict[str, list[OrgRow]] = defaultdict(list)
    for row in rows.values():
        by_class[row.gpu_class].append(row)
    return by_class


def round_pool_list(*, allocation_round: AllocationRound) -> list[RoundPool]:
    return list(
        RoundPool.objects.filter(round=allocation_round)
        .select_related("pool__provider")
        .order_by("pool__gpu_class", "pool__code")
    )


def _per_org_class_totals(results: QuerySet[RoundResult], *, by_class: bool) -> list[dict]:
    """Totals of ``results`` over their (organization, class) rows, per class or for all: the
    number of rows, how many met their demand, demand (repeated on each pool row of a row, so
    counted once), granted (summed over the pools) and the highest level. One query: the rows are
    grouped in a subquery and the groups added up around it."""
    met = Case(When(stopped_reason=RoundResult.Stopped.DEMAND_MET, then=Value(1)), default=Value(0))
    groups = (
        results.order_by()
        .values("organization_id", "gpu_class")
        .annotate(
            group_demand=Max("demand"),
            group_granted=Sum(FINAL_AMOUNT),
            group_met=Max(met, output_field=IntegerField()),
            group_level=Max("level"),
        )
    )
    sql, params = groups.query.sql_with_params()
    key = "gpu_class" if by_class else "''"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {key}, COUNT(*), SUM(group_met), SUM(group_demand), SUM(group_granted), "
            f"MAX(group_level) FROM ({sql}) AS org_class GROUP BY 1 ORDER BY 1",
            params,
        )
        names = ("gpu_class", "orgs", "met", "demand", "granted", "max_level")
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def round_result_summary(
    *, allocation_round: AllocationRound, round_pools: list[RoundPool] | None = None
) -> list[ClassResult]:
    """Per GPU class: each pool's capacity and what was granted on it, the number of organizations,
    how many had their demand met, demand, granted and the highest level. Two queries (three
    without ``round_pools``), whatever the number of organizations."""
    if round_pools is None:
        round_pools = round_pool_list(allocation_round=allocation_round)
    results = RoundResult.objects.filter(round=allocation_round)
    granted_by_pool = dict(
        results.filter(pool__isnull=False)
        .order_by()
        .values("pool_id")
        .annotate(granted=Sum(FINAL_AMOUNT))
        .values_list("pool_id", "granted")
    )
    classes: dict[str, ClassResult] = {}
    for round_pool in round_pools:
        cls = classes.setdefault(round_pool.pool.gpu_class, ClassResult(gpu_class=round_pool.pool.gpu_class))
        cls.pools.append(PoolRow(round_pool=round_pool, granted=granted_by_pool.get(round_pool.pool_id, 0)))
    for row in _per_org_class_totals(results, by_class=True):
        cls = classes.setdefault(row["gpu_class"], ClassResult(gpu_class=row["gpu_class"]))
        cls.orgs, cls.met = row["orgs"], int(row["met"] or 0)
        cls.demand, cls.granted = int(row["demand"] or 0), int(row["granted"] or 0)
        cls.max_level = row["max_level"] or 0.0
    return [classes[name] for name in sorted(classes)]


def round_result_rows(
    *,
    allocation_round: AllocationRound,
    q: str = "",
    gpu_class: str = "",
    provider: str = "",
    pool: str = "",
    kind: str = "",
    met: str = "",
) -> QuerySet[RoundResult]:
    """The round's result rows (one per organization and pool) that the filters match, in the
    list's order: ``q`` searches the organization's names and slug, ``provider`` and ``pool`` keep
    the rows on that provider's pools / that pool, ``met`` is "met" or "unmet"."""
    results = RoundResult.objects.filter(round=allocation_round)
    if q:
        results = results.filter(
            Q(organization__name_ja__icontains=q)
            | Q(organization__name_en__icontains=q)
            | Q(organization__slug__icontains=q)
        )
    if gpu_class:
        results = results.filter(gpu_class=gpu_class)
    if provider:
        results = results.filter(pool__provider__slug=provider)
    if pool:
        results = results.filter(pool__code=pool)
    if kind:
        results = results.filter(organization__kind=kind)
    if met == "met":
        results = results.filter(stopped_reason=RoundResult.Stopped.DEMAND_MET)
    elif met == "unmet":
        results = results.exclude(stopped_reason=RoundResult.Stopped.DEMAND_MET)
    return results.order_by("gpu_class", "organization__slug", "pool__code")


def round_result_page(
    *,
    allocation_round: AllocationRound,
    page_number=None,
    per_page: int = 50,
    classes: list[ClassResult] | None = None,
    **filters,
) -> ResultPage:
    """One page of the round's result, one row per (organization, class) with its weight, placements
    and why it stopped, and the totals of all the matching rows. Four queries, whatever the page's
    length or the number of organizations: the totals (which also give the paginator its count),
    the page's keys, their result rows, their weights. Without filters, the totals are those of
    ``classes`` (``round_result_summary``) when given: one query less."""
    matching = round_result_rows(allocation_round=allocation_round, **filters)
    if classes is not None and not any(filters.values()):
        totals = {
            name: sum(getattr(c, name) for c in classes) for name in ("orgs", "met", "demand", "granted")
        }
    else:
        [totals] = _per_org_class_totals(matching, by_class=False) or [{"orgs": 0}]
    keys = (
        matching.order_by()
        .values("organization_id", "gpu_class")
        .annotate(first=Min("pk"))
        .order_by("gpu_class", "organization__slug", "organization_id")
    )
    paginator = Paginator(keys, per_page)
    paginator.count = totals["orgs"]  # known from the totals: spares a COUNT query
    page = paginator.get_page(page_number)
    page_keys = [(key["organization_id"], key["gpu_class"]) for key in page.object_list]
    rows: list[OrgRow] = []
    if page_keys:
        org_ids = {org_id for org_id, _ in page_keys}
        results = _results(allocation_round).filter(
            organization_id__in=org_ids, gpu_class__in={c for _, c in page_keys}
        )
        weights = {
            w.organization_id: w
            for w in RoundWeight.objects.filter(round=allocation_round, organization_id__in=org_ids)
        }
        by_key = {
            (row.organization.pk, row.gpu_class): row
            for class_rows in _org_rows(results, weights).values()
            for row in class_rows
        }
        rows = [by_key[key] for key in page_keys if key in by_key]
    return ResultPage(
        page=page,
        rows=rows,
        count=totals["orgs"],
        demand=int(totals.get("demand") or 0),
        granted=int(totals.get("granted") or 0),
        met=int(totals.get("met") or 0),
    )


def result_row(*, result_id: int) -> tuple[RoundResult, OrgRow] | None:
    """One (organization, pool) result and the row of its (organization, class), for an htmx swap."""
    result = RoundResult.objects.select_related("round").filter(pk=result_id).first()
    if result is None:
        return None
    results = _results(result.round, result.organization).filter(gpu_class=result.gpu_class)
    weights = {
        w.organization_id: w
        for w in RoundWeight.objects.filter(round_id=result.round_id, organization_id=result.organization_id)
    }
    [row] = _org_rows(results, weights)[result.gpu_class]
    [placement] = [p for p in row.placements if p.result.pk == result.pk]
    return placement.result, row


# --- an organization's view ----------------------------------------------------------------------


def gpu_classes_offered() -> list[str]:
    """The GPU classes one can request: those of the active pools."""
    return list(
        ResourcePool.objects.filter(is_active=True, provider__is_active=True)
        .order_by("gpu_class")
        .values_list("gpu_class", flat=True)
        .distinct()
    )


def pools_by_class() -> dict[str, list[ResourcePool]]:
    pools: dict[str, list[ResourcePool]] = defaultdict(list)
    for pool in (
        ResourcePool.objects.filter(is_active=True, provider__is_active=True)
        .select_related("provider")
        .order_by("gpu_class", "code")
    ):
        pools[pool.gpu_class].append(pool)
    return dict(pools)


def org_requests(*, organization: Organization, rounds) -> list[AllocationRequest]:
    """The organization's requests in ``rounds``, with their eligible pools."""
    return list(
        AllocationRequest.objects.filter(organization=organization, round__in=rounds)
        .prefetch_related(Prefetch("eligible_pools", queryset=ResourcePool.objects.order_by("code")))
        .order_by("round_id", "gpu_class")
    )


def round_list_open():
    return AllocationRound.objects.filter(status=Status.OPEN).order_by("period_start", "pk")


def round_list_for_org(*, organization: Organization, include_computed: bool = False):
    """Rounds past the request stage in which the organization took part; ``include_computed``
    (staff) adds the computed but unpublished ones."""
    statuses = [Status.CLOSED, Status.PUBLISHED] + ([Status.COMPUTED] if include_computed else [])
    return (
        AllocationRound.objects.filter(status__in=statuses)
        .filter(Q(requests__organization=organization) | Q(results__organization=organization))
        .distinct()
    )


def org_round_result(*, allocation_round: AllocationRound, organization: Organization) -> dict:
    """The organization's requests, weight and result rows (per class) in a round."""
    weight = RoundWeight.objects.filter(round=allocation_round, organization=organization).first()
    rows = _org_rows(_results(allocation_round, organization), {organization.pk: weight} if weight else {})
    requests = org_requests(organization=organization, rounds=[allocation_round])
    requested = {r.gpu_class: r.demand_gpu_hours for r in requests}
    classes = [row for name in sorted(rows) for row in rows[name]]
    for row in classes:
        row.requested = requested.get(row.gpu_class, 0)
    return {
        "weight": weight,
        "classes": classes,
        "requests": requests,
        "excluded": [
            x for x in allocation_round.excluded_requests or [] if x.get("organization") == organization.slug
        ],
    }
