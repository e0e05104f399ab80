"""The allocation round: requests, weights, computing with the engine, adjusting and publishing.

Status: open → closed → computed → published. A closed round may be reopened (closed → open); a
computed one may be recomputed (which discards the staff adjustments: they were made on the old
result). Publishing creates one QuotaGrant per (organization, pool) in a single transaction.

Capacity of a pool in a round. The pool's PoolPeriod *covering* the round is the one with
``starts_on <= round start`` and ``ends_on >= round end`` (both ends exclusive). If several cover
it (they all overlap the round entirely), the shortest wins, then the latest start, then the
lowest id. Pools that are inactive (or whose provider is) or that have no covering period take no
part. Program awards (live grants with source ``award``) draw on the policy's award reserve first:

    reserved = max(period capacity * award reserve share, GPU-hours of the live awards on the period)
    capacity = floor(period capacity - reserved - GPU-hours of the other live grants on the period)

never below zero. So the reserve is held back for awards (made before or after the round), awards
beyond it shrink the round, and grants of earlier rounds on the same period are never re-shared.

Weights: see ``FairSharePolicy`` and ``weights_compute``.
"""

import logging
import math
import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.allocations import engine
from apps.allocations.fairshare import weights_for
from apps.allocations.models import (
    AllocationRequest,
    AllocationRound,
    FairSharePolicy,
    RoundPool,
    RoundResult,
    RoundWeight,
    period_errors,
)
from apps.core.exceptions import ApplicationError
from apps.governance.services import audit_record
from apps.organizations.models import Membership, Organization
from apps.providers.models import PoolPeriod, QuotaGrant, ResourcePool

logger = logging.getLogger(__name__)
Status = AllocationRound.Status


# --- helpers -------------------------------------------------------------------------------------


def _require_staff(actor) -> None:
    if not (actor is not None and actor.has_perm("allocations.manage_round")):
        raise ApplicationError(_("Only the secretariat can do this."), code="forbidden")


def _lock_round(round_id: int) -> AllocationRound:
    try:
        return AllocationRound.objects.select_for_update().select_related("policy").get(pk=round_id)
    except AllocationRound.DoesNotExist as exc:
        raise ApplicationError(_("This allocation round does not exist."), code="not_found") from exc


def _require_status(allocation_round: AllocationRound, allowed: tuple, message) -> None:
    if allocation_round.status not in allowed:
        raise ApplicationError(message, code="bad_transition")


def _round_snapshot(allocation_round: AllocationRound) -> dict:
    return {
        "name": allocation_round.name,
        "fiscal_year": allocation_round.fiscal_year,
        "period_start": allocation_round.period_start.isoformat(),
        "period_end": allocation_round.period_end.isoformat(),
        "policy": allocation_round.policy_id,
        "status": allocation_round.status,
    }


def _set_status(
    allocation_round: AllocationRound,
    status: str,
    actor,
    action: str,
    *,
    summary: dict | None = None,
    **fields,
) -> AllocationRound:
    before = _round_snapshot(allocation_round)
    allocation_round.status = status
    for name, value in fields.items():
        setattr(allocation_round, name, value)
    allocation_round.save(update_fields=["status", "updated_at", *fields])
    after = _round_snapshot(allocation_round)
    if summary is not None:
        after["summary"] = summary
    audit_record(actor=actor, action=action, target=allocation_round, before=before, after=after)
    return allocation_round


# --- rounds --------------------------------------------------------------------------------------


# Held (transaction-scoped) by every round creation from the overlap check to the commit, so that
# concurrent creators for the same months check one after another: the second sees the first's
# round. A lock of its own, taken before any other: nothing waits on it while holding another lock.
ROUND_CALENDAR_LOCK_KEY = 0x616C6C6F63726E64  # "allocrnd"


def _lock_round_calendar() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROUND_CALENDAR_LOCK_KEY])
    # SQLite (the embedded default, for one person trying the portal) has no such lock; it lets one
    # writer in at a time and refuses a second concurrent writer instead.


@transaction.atomic
def round_create(
    *,
    name: str,
    fiscal_year: int,
    period_start: date,
    period_end: date,
    actor,
    policy_id: int | None = None,
) -> AllocationRound:
    """Open a round for a run of whole months within a Japanese fiscal year (April to March)."""
    _require_staff(actor)
    if not (name or "").strip():
        raise ApplicationError(_("A round needs a name."), code="invalid")
    errors = period_errors(fiscal_year, period_start, period_end)
    if errors:
        raise ApplicationError(" ".join(errors), code="invalid_period")
    if policy_id is None:
        policy = FairSharePolicy.objects.filter(is_default=True).first()
        if policy is None:
            raise ApplicationError(
                _("Choose a fair-share policy: there is no default one."), code="no_policy"
            )
    else:
        policy = FairSharePolicy.objects.filter(pk=policy_id).first()
        if policy is None:
            raise ApplicationError(_("This fair-share policy does not exist."), code="not_found")
    _lock_round_calendar()
    overlapping = (
        AllocationRound.objects.exclude(status=Status.PUBLISHED)
        .filter(period_start__lt=period_end, period_end__gt=period_start)
        .order_by("period_start")
        .first()
    )
    if overlapping is not None:
        raise ApplicationError(
            _(
                "The round “%(name)s” (%(status)s) already covers part of this period; publish it "
                "before opening another round for the same months."
            )
            % {"name": overlapping.name, "status": overlapping.get_status_display()},
            code="overlapping_round",
        )
    allocation_round = AllocationRound.objects.create(
        name=name.strip(),
        fiscal_year=fiscal_year,
        period_start=period_start,
        period_end=period_end,
        policy=policy,
        created_by=actor,
    )
    audit_record(
        actor=actor, action="round.created", target=allocation_round, after=_round_snapshot(allocation_round)
    )
    return allocation_round


@transaction.atomic
def round_close(*, round_id: int, actor) -> AllocationRound:
    _require_staff(actor)
    allocation_round = _lock_round(round_id)
    _require_status(allocation_round, (Status.OPEN,), _("Only an open round can be closed."))
    return _set_status(allocation_round, Status.CLOSED, actor, "round.closed")


@transaction.atomic
def round_reopen(*, round_id: int, actor) -> AllocationRound:
    _require_staff(actor)
    allocation_round = _lock_round(round_id)
    _require_status(
        allocation_round, (Status.CLOSED,), _("Only a closed round that is not computed can be reopened.")
    )
    return _set_status(allocation_round, Status.OPEN, actor, "round.reopened")


# --- requests ------------------------------------------------------------------------------------


def _check_request_fields(*, gpu_class: str, demand_gpu_hours, floor_gpu_hours, justification: str) -> None:
    if isinstance(demand_gpu_hours, bool) or not isinstance(demand_gpu_hours, int) or demand_gpu_hours <= 0:
        raise ApplicationError(
            _("The demand must be a whole number of GPU-hours, more than zero."), code="invalid"
        )
    if floor_gpu_hours is not None and (
        isinstance(floor_gpu_hours, bool)
        or not isinstance(floor_gpu_hours, int)
        or not 0 <= floor_gpu_hours <= demand_gpu_hours
    ):
        raise ApplicationError(
            _("The guaranteed floor must be a whole number of GPU-hours between 0 and the demand."),
            code="invalid",
        )
    if not (justification or "").strip():
        raise ApplicationError(_("Please explain what the GPU-hours are for."), code="invalid")
    if not ResourcePool.objects.filter(gpu_class=gpu_class, is_active=True).exists():
        raise ApplicationError(
            _("No active pool offers the GPU class “%(cls)s”.") % {"cls": gpu_class}, code="unknown_class"
        )


def _eligible_pools(gpu_class: str, pool_ids) -> list[ResourcePool]:
    ids = sorted(set(pool_ids or []))
    if not ids:
        return []
    pools = list(ResourcePool.objects.filter(pk__in=ids, is_active=True))
    if len(pools) != len(ids):
        raise ApplicationError(
            _("Some of the chosen pools do not exist or are not active."), code="invalid_pools"
        )
    wrong = [pool.code for pool in pools if pool.gpu_class != gpu_class]
    if wrong:
        raise ApplicationError(
            _("These pools are not of class %(cls)s: %(pools)s.")
            % {"cls": gpu_class, "pools": ", ".join(sorted(wrong))},
            code="invalid_pools",
        )
    return pools


def _check_requester(allocation_round: AllocationRound, organization: Organization, actor) -> None:
    if not (actor is not None and actor.has_perm("allocations.request_for_org", organization)):
        raise ApplicationError(
            _("Only an owner or administrator of the organization can file its requests."), code="forbidden"
        )
    _require_status(
        allocation_round, (Status.OPEN,), _("Requests can only be filed or changed while the round is open.")
    )


def _request_snapshot(request: AllocationRequest) -> dict:
    return {
        "organization": request.organization_id,
        "gpu_class": request.gpu_class,
        "demand_gpu_hours": request.demand_gpu_hours,
        "floor_gpu_hours": request.floor_gpu_hours,
        "justification": request.justification,
        "eligible_pools": sorted(p.pk for p in request.eligible_pools.all()),
    }


@transaction.atomic
def request_submit(
    *,
    round_id: int,
    organization: Organization,
    gpu_class: str,
    demand_gpu_hours: int,
    justification: str,
    actor,
    eligible_pool_ids=None,
    floor_gpu_hours: int | None = None,
) -> AllocationRequest:
    """File an organization's request for one GPU class (one per class and round)."""
    allocation_round = _lock_round(round_id)
    _check_requester(allocation_round, organization, actor)
    membership = getattr(organization, "membership", None)
    if membership is None or membership.status != membership.Status.ACTIVE:
        raise ApplicationError(
            _("Only organizations with an active membership can request GPU-hours."),
            code="membership_inactive",
        )
    gpu_class = (gpu_class or "").strip()
    _check_request_fields(
        gpu_class=gpu_class,
        demand_gpu_hours=demand_gpu_hours,
        floor_gpu_hours=floor_gpu_hours,
        justification=justification,
    )
    pools = _eligible_pools(gpu_class, eligible_pool_ids)
    if AllocationRequest.objects.filter(
        round=allocation_round, organization=organization, gpu_class=gpu_class
    ).exists():
        raise ApplicationError(
            _("This organization already has a request for %(cls)s in this round; change that one.")
            % {"cls": gpu_class},
            code="duplicate",
        )
    request = AllocationRequest.objects.create(
        round=allocation_round,
        organization=organization,
        gpu_class=gpu_class,
        demand_gpu_hours=demand_gpu_hours,
        floor_gpu_hours=floor_gpu_hours,
        justification=justification.strip(),
        created_by=actor,
    )
    request.eligible_pools.set(pools)
    audit_record(
        actor=actor, action="allocation_request.submitted", target=request, after=_request_snapshot(request)
    )
    return request


def _lock_request(request_id: int) -> tuple[AllocationRequest, AllocationRound]:
    request = AllocationRequest.objects.filter(pk=request_id).only("round_id").first()
    if request is None:
        raise ApplicationError(_("This request does not exist."), code="not_found")
    allocation_round = _lock_round(request.round_id)  # lock order: round, then request
    request = AllocationRequest.objects.select_for_update().select_related("organization").get(pk=request_id)
    return request, allocation_round


@transaction.atomic
def request_update(
    *,
    request_id: int,
    demand_gpu_hours: int,
    justification: str,
    actor,
    eligible_pool_ids=None,
    floor_gpu_hours: int | None = None,
) -> AllocationRequest:
    """Replace a request's demand, floor, justification and eligible pools while the round is open."""
    request, allocation_round = _lock_request(request_id)
    _check_requester(allocation_round, request.organization, actor)
    _check_request_fields(
        gpu_class=request.gpu_class,
        demand_gpu_hours=demand_gpu_hours,
        floor_gpu_hours=floor_gpu_hours,
        justification=justification,
    )
    pools = _eligible_pools(request.gpu_class, eligible_pool_ids)
    before = _request_snapshot(request)
    request.demand_gpu_hours = demand_gpu_hours
    request.floor_gpu_hours = floor_gpu_hours
    request.justification = justification.strip()
    request.save(update_fields=["demand_gpu_hours", "floor_gpu_hours", "justification", "updated_at"])
    request.eligible_pools.set(pools)
    audit_record(
        actor=actor,
        action="allocation_request.updated",
        target=request,
        before=before,
        after=_request_snapshot(request),
    )
    return request


@transaction.atomic
def request_withdraw(*, request_id: int, actor) -> None:
    request, allocation_round = _lock_request(request_id)
    _check_requester(allocation_round, request.organization, actor)
    audit_record(
        actor=actor, action="allocation_request.withdrawn", target=request, before=_request_snapshot(request)
    )
    request.delete()


# --- weights -------------------------------------------------------------------------------------


def _replace_weights(allocation_round: AllocationRound) -> dict[int, RoundWeight]:
    org_ids = allocation_round.requests.values_list("organization_id", flat=True).distinct()
    organizations = list(
        Organization.objects.filter(pk__in=org_ids).select_related("membership").order_by("pk")
    )
    RoundWeight.objects.filter(round=allocation_round).delete()
    rows = RoundWeight.objects.bulk_create(weights_for(allocation_round, organizations))
    return {row.organization_id: row for row in rows}


@transaction.atomic
def weights_compute(*, round_id: int, actor) -> list[RoundWeight]:
    """Store the effective weight of every requesting organization, with its derivation.

    weight = tier weight * kind factor * usage term (see FairSharePolicy). Weights are computed
    once the round is closed, so that they describe the history up to the round's start."""
    _require_staff(actor)
    allocation_round = _lock_round(round_id)
    _require_status(
        allocation_round,
        (Status.CLOSED, Status.COMPUTED),
        _("Weights are computed once the round is closed."),
    )
    rows = _replace_weights(allocation_round)
    audit_record(
        actor=actor,
        action="round.weights_computed",
        target=allocation_round,
        after={str(org_id): str(row.weight) for org_id, row in sorted(rows.items())},
    )
    return list(rows.values())


# --- computing -----------------------------------------------------------------------------------


def _covering_period(periods: list[PoolPeriod]) -> PoolPeriod:
    return min(periods, key=lambda p: ((p.ends_on - p.starts_on).days, -p.starts_on.toordinal(), p.pk))


def _round_pools(allocation_round: AllocationRound) -> list[RoundPool]:
    """The capacity of every pool taking part in the round (see the module docstring)."""
    reserve = allocation_round.policy.award_reserve_share
    periods = PoolPeriod.objects.filter(
        pool__is_active=True,
        pool__provider__is_active=True,
        starts_on__lte=allocation_round.period_start,
        ends_on__gte=allocation_round.period_end,
    ).select_related("pool")
    by_pool: dict[int, list[PoolPeriod]] = defaultdict(list)
    for period in periods:
        by_pool[period.pool_id].append(period)
    chosen = [_covering_period(candidates) for candidates in by_pool.values()]
    live = (
        QuotaGrant.objects.filter(period__in=chosen, state__in=QuotaGrant.LIVE_STATES)
        .values("period_id")
        .annotate(
            awards=Sum("gpu_hours", filter=Q(source=QuotaGrant.Source.AWARD)),
            others=Sum("gpu_hours", filter=~Q(source=QuotaGrant.Source.AWARD)),
        )
    )
    granted = {row["period_id"]: row for row in live}
    rows = []
    for period in sorted(chosen, key=lambda p: p.pool.code):
        row = granted.get(period.pk) or {}
        awards = row.get("awards") or Decimal("0")
        other = row.get("others") or Decimal("0")
        reserved = max(period.capacity_gpu_hours * reserve, awards)
        capacity = max(0, math.floor(period.capacity_gpu_hours - reserved - other))
        rows.append(
            RoundPool(
                round=allocation_round,
                pool=period.pool,
                period=period,
                capacity=capacity,
                derivation={
                    "period_capacity": f"{Decimal(period.capacity_gpu_hours):.2f}",
                    "award_reserve_share": str(reserve),
                    "awarded": f"{Decimal(awards):.2f}",
                    "reserved_for_awards": f"{Decimal(reserved):.2f}",
                    "granted_by_others": f"{Decimal(other):.2f}",
                    "capacity": capacity,
                },
            )
        )
    return rows


def _engine_input(
    allocation_round: AllocationRound, round_pools: list[RoundPool], weights: dict[int, RoundWeight]
) -> tuple[list[engine.Pool], list[engine.RequestLine], dict[str, Organization], dict[str, RoundPool]]:
    pools_by_code = {rp.pool.code: rp for rp in round_pools}
    classes = {rp.pool.gpu_class for rp in round_pools}
    caps = allocation_round.policy.class_caps or {}
    requests = (
        allocation_round.requests.filter(organization__membership__status=Membership.Status.ACTIVE)
        .select_related("organization")
        .prefetch_related("eligible_pools")
        .order_by("pk")
    )
    lines, orgs = [], {}
    for request in requests:
        org = request.organization
        if request.gpu_class not in classes:
            raise ApplicationError(
                _("No pool of class %(cls)s has capacity covering this round's period.")
                % {"cls": request.gpu_class},
                code="no_pool",
            )
        chosen = [p.code for p in request.eligible_pools.all()]
        pools = None
        if chosen:
            pools = sorted(code for code in chosen if code in pools_by_code)
            if not pools:
                raise ApplicationError(
                    _("None of the pools chosen by %(org)s for %(cls)s takes part in this round.")
                    % {"org": org.slug, "cls": request.gpu_class},
                    code="no_pool",
                )
        demand = request.demand_gpu_hours
        if request.gpu_class in caps:
            demand = min(demand, int(caps[request.gpu_class]))
        floor = min(request.floor_gpu_hours or 0, demand)
        orgs[org.slug] = org
        lines.append(
            engine.RequestLine(
                org=org.slug,
                gpu_class=request.gpu_class,
                demand=demand,
                weight=float(weights[org.pk].weight),
                floor=floor,
                pools=pools,
            )
        )
    engine_pools = [
        engine.Pool(id=rp.pool.code, gpu_class=rp.pool.gpu_class, capacity=rp.capacity) for rp in round_pools
    ]
    return engine_pools, lines, orgs, pools_by_code


def _excluded_requests(allocation_round: AllocationRound) -> list[dict]:
    """Requests left out of the computation: their organization's membership is no longer active
    (suspended or lapsed after the request was filed). Shown to staff and to the organization."""
    rows = (
        allocation_round.requests.exclude(organization__membership__status=Membership.Status.ACTIVE)
        .select_related("organization__membership")
        .order_by("organization__slug", "gpu_class")
    )
    return [
        {
            "organization": request.organization.slug,
            "gpu_class": request.gpu_class,
            "demand": request.demand_gpu_hours,
            "reason": "membership_inactive",
            "membership_status": getattr(getattr(request.organization, "membership", None), "status", ""),
        }
        for request in rows
    ]


def _set_progress(round_id: int, progress: int) -> None:
    # Outside the compute transaction this commits at once, so the staff page can show it.
    AllocationRound.objects.filter(pk=round_id).update(progress=progress)


def round_compute(*, round_id: int, actor) -> AllocationRound:
    """Compute the weights and the fair allocation of a closed (or computed) round.

    Replaces the round's pools, weights and results (staff adjustments included). Engine refusals
    (invalid instance, infeasible floors) become an ApplicationError with the engine's messages."""
    _require_staff(actor)
    _set_progress(round_id, 5)
    with transaction.atomic():
        allocation_round = _lock_round(round_id)
        _require_status(
            allocation_round,
            (Status.CLOSED, Status.COMPUTED),
            _("Only a closed or computed round can be computed."),
        )
        if not allocation_round.requests.exists():
            raise ApplicationError(_("This round has no requests to allocate."), code="no_requests")
        excluded = _excluded_requests(allocation_round)
        weights = _replace_weights(allocation_round)
        _set_progress(round_id, 30)
        round_pools = _round_pools(allocation_round)
        pools, lines, orgs, pools_by_code = _engine_input(allocation_round, round_pools, weights)
        _set_progress(round_id, 50)
        try:
            allocation = engine.allocate(pools, lines)
        except engine.AllocationError as exc:
            raise ApplicationError(
                _("The allocation could not be computed: %(reasons)s") % {"reasons": " ".join(exc.messages)},
                code="engine_refused",
                extra={"messages": exc.messages},
            ) from exc
        _set_progress(round_id, 80)
        RoundResult.objects.filter(round=allocation_round).delete()
        RoundPool.objects.filter(round=allocation_round).delete()
        RoundPool.objects.bulk_create(round_pools)
        results = []
        for share in allocation.shares():
            common = {
                "round": allocation_round,
                "organization": orgs[share.org],
                "gpu_class": share.gpu_class,
                "demand": share.demand,
                "exact_amount": share.exact,
                "level": share.level,
                "stopped_reason": share.stopped,
                "exhausted_pools": list(share.exhausted_pools),
            }
            if not share.placement:
                results.append(RoundResult(pool=None, amount=0, **common))
            for code, amount in share.placement.items():
                results.append(RoundResult(pool=pools_by_code[code].pool, amount=amount, **common))
        RoundResult.objects.bulk_create(results)
        summary = {
            name: {"capacity": result.capacity, "demand": result.demand, "granted": result.granted}
            for name, result in allocation.classes.items()
        }
        _set_status(
            allocation_round,
            Status.COMPUTED,
            actor,
            "round.computed",
            computed_at=timezone.now(),
            progress=100,
            last_error="",
            excluded_requests=excluded,
            summary={"classes": summary, "excluded": excluded},
        )
    return allocation_round


@transaction.atomic
def round_compute_enqueue(*, round_id: int, actor) -> AllocationRound:
    """Ask a worker to compute the round (after commit); the staff page follows ``progress``."""
    from apps.allocations.tasks import round_compute_task

    _require_staff(actor)
    allocation_round = _lock_round(round_id)
    _require_status(
        allocation_round,
        (Status.CLOSED, Status.COMPUTED),
        _("Only a closed or computed round can be computed."),
    )
    allocation_round.task_id = uuid.uuid4().hex
    allocation_round.progress = 0
    allocation_round.last_error = ""
    allocation_round.save(update_fields=["task_id", "progress", "last_error", "updated_at"])
    audit_record(
        actor=actor,
        action="round.compute_requested",
        target=allocation_round,
        after={"task_id": allocation_round.task_id},
    )
    task_id, actor_id = allocation_round.task_id, actor.pk
    transaction.on_commit(
        lambda: round_compute_task.apply_async((round_id,), {"actor_id": actor_id}, task_id=task_id)
    )
    return allocation_round


def round_compute_failed(*, round_id: int, message: str) -> None:
    """Record why a compute task failed, for the staff page (the round keeps its status)."""
    AllocationRound.objects.filter(pk=round_id).update(progress=0, last_error=message)


# --- adjusting and publishing --------------------------------------------------------------------


@transaction.atomic
def result_adjust(*, result_id: int, amount: int, reason: str, actor) -> RoundResult:
    """Change the amount of one (organization, pool) result before publishing, with a reason.

    Refused if the adjusted amounts on that pool would add up to more than its capacity in the round."""
    _require_staff(actor)
    result = RoundResult.objects.filter(pk=result_id).only("round_id").first()
    if result is None:
        raise ApplicationError(_("This result does not exist."), code="not_found")
    allocation_round = _lock_round(result.round_id)
    _require_status(
        allocation_round, (Status.COMPUTED,), _("Only a computed round's results can be adjusted.")
    )
    result = (
        RoundResult.objects.select_for_update(of=("self",))
        .select_related("pool", "organization")
        .get(pk=result_id)
    )
    if not (reason or "").strip():
        raise ApplicationError(_("Give a reason for the adjustment."), code="invalid")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ApplicationError(
            _("The amount must be a whole number of GPU-hours, zero or more."), code="invalid"
        )
    if result.pool_id is None:
        raise ApplicationError(_("This result has no pool to adjust."), code="invalid")
    round_pool = RoundPool.objects.get(round=allocation_round, pool_id=result.pool_id)
    others = sum(
        r.final_amount
        for r in RoundResult.objects.filter(round=allocation_round, pool_id=result.pool_id).exclude(
            pk=result.pk
        )
    )
    if others + amount > round_pool.capacity:
        raise ApplicationError(
            _(
                "%(pool)s holds %(capacity)s GPU-hours in this round; %(others)s are already given to "
                "others, so at most %(free)s can go here."
            )
            % {
                "pool": result.pool.code,
                "capacity": round_pool.capacity,
                "others": others,
                "free": round_pool.capacity - others,
            },
            code="capacity_exceeded",
        )
    requested = (
        AllocationRequest.objects.filter(
            round=allocation_round, organization_id=result.organization_id, gpu_class=result.gpu_class
        )
        .values_list("demand_gpu_hours", flat=True)
        .first()
    ) or 0
    elsewhere = sum(
        r.final_amount
        for r in RoundResult.objects.filter(
            round=allocation_round, organization_id=result.organization_id, gpu_class=result.gpu_class
        ).exclude(pk=result.pk)
    )
    if elsewhere + amount > requested:
        raise ApplicationError(
            _(
                "%(org)s asked for %(requested)s GPU-hours of %(cls)s and has %(elsewhere)s on other pools, "
                "so at most %(free)s can go here: an adjustment never gives more than was requested."
            )
            % {
                "org": result.organization.slug,
                "requested": requested,
                "cls": result.gpu_class,
                "elsewhere": elsewhere,
                "free": max(0, requested - elsewhere),
            },
            code="above_demand",
        )
    before = {"amount": result.final_amount, "adjustment_reason": result.adjustment_reason}
    result.adjusted_amount = amount
    result.adjustment_reason = reason.strip()
    result.adjusted_by = actor
    result.save(update_fields=["adjusted_amount", "adjustment_reason", "adjusted_by", "updated_at"])
    audit_record(
        actor=actor,
        action="round_result.adjusted",
        target=result,
        before=before,
        after={"amount": amount, "adjustment_reason": result.adjustment_reason},
    )
    return result


@transaction.atomic
def round_publish(*, round_id: int, actor) -> list[QuotaGrant]:
    """Create the QuotaGrants of a computed round, all in one transaction: if any grant is refused
    (capacity taken meanwhile, membership no longer active…) nothing is granted and the round stays
    computed."""
    from apps.providers.services import GrantSpec, grants_create

    _require_staff(actor)
    allocation_round = _lock_round(round_id)
    _require_status(allocation_round, (Status.COMPUTED,), _("Only a computed round can be published."))
    periods = dict(RoundPool.objects.filter(round=allocation_round).values_list("pool_id", "period_id"))
    results = [
        result
        for result in RoundResult.objects.filter(round=allocation_round, pool__isnull=False)
        .select_related("organization__membership", "pool")
        .order_by("pool__code", "organization__slug")
        if result.final_amount > 0
    ]
    specs = [
        GrantSpec(
            organization=result.organization,
            period_id=periods[result.pool_id],
            gpu_hours=result.final_amount,
            valid_from=allocation_round.period_start,
            valid_until=allocation_round.period_end,
        )
        for result in results
    ]
    try:
        grants = grants_create(
            specs=specs,
            actor=actor,
            source=QuotaGrant.Source.ROUND,
            source_ref=f"round-{allocation_round.pk}",
        )
    except ApplicationError as exc:
        result = results[exc.extra.get("index", 0)]
        raise ApplicationError(
            _("Nothing was published: the grant of %(org)s on %(pool)s was refused: %(reason)s")
            % {"org": result.organization.slug, "pool": result.pool.code, "reason": exc.message},
            code="publish_refused",
        ) from exc
    _set_status(
        allocation_round,
        Status.PUBLISHED,
        actor,
        "round.published",
        summary={"grants": len(grants), "gpu_hours": sum(int(g.gpu_hours) for g in grants)},
        published_at=timezone.now(),
    )
    return grants
