"""Fair-share weights of a round (see FairSharePolicy): tier weight * kind factor * usage term.

The usage term compares each organization's decayed past usage with its decayed past entitlement,
Slurm-style; everything is computed from the database in two queries and is deterministic."""

from collections import defaultdict
from datetime import date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal

from django.utils import timezone

from apps.allocations.models import AllocationRound, FairSharePolicy, RoundWeight
from apps.organizations.models import Organization
from apps.providers.models import QuotaGrant, UsageRecord

WEIGHT_QUANTUM = Decimal("0.000001")


def _as_datetime(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _decay(age_days: float, half_life_days: int) -> float:
    return 2.0 ** (-max(age_days, 0.0) / half_life_days)


def _history(org_ids: list[int], reference: date, half_life_days: int) -> dict[int, tuple[float, float]]:
    """Decayed past (usage, entitlement) per organization, as of ``reference`` (the round's start).

    Usage: every UsageRecord under the org's grants that started before the reference, decayed by
    the age of its end (records are short). Entitlement: every grant that started before the
    reference and did not fail, pro rata for the part of its validity before the reference,
    decayed by the age of the middle of that part (usage comes in all along a grant's validity, so
    its middle is the fair point of comparison)."""
    ref_dt = _as_datetime(reference)
    usage: dict[int, float] = defaultdict(float)
    entitlement: dict[int, float] = defaultdict(float)
    records = UsageRecord.objects.filter(
        grant__organization_id__in=org_ids, started_at__lt=ref_dt
    ).values_list("grant__organization_id", "gpu_hours", "ended_at")
    for org_id, hours, ended_at in records:
        age = (ref_dt - min(ended_at, ref_dt)).total_seconds() / 86400
        usage[org_id] += float(hours) * _decay(age, half_life_days)
    grants = (
        QuotaGrant.objects.filter(organization_id__in=org_ids, valid_from__lt=reference)
        .exclude(state=QuotaGrant.State.FAILED)
        .values_list("organization_id", "gpu_hours", "valid_from", "valid_until")
    )
    for org_id, hours, valid_from, valid_until in grants:
        end = min(valid_until, reference)
        part = (end - valid_from).days / max((valid_until - valid_from).days, 1)
        middle_age = (reference - end).days + (end - valid_from).days / 2
        entitlement[org_id] += float(hours) * part * _decay(middle_age, half_life_days)
    return {org_id: (usage[org_id], entitlement[org_id]) for org_id in org_ids}


def _usage_term(policy: FairSharePolicy, used: float, entitled: float) -> tuple[float, str]:
    strength = float(policy.decay_strength)
    if strength == 0:
        return 1.0, "disabled"
    if used <= 0 or entitled <= 0:
        return 1.0, "no_history"
    raw = 2.0 ** (-strength * (used / entitled - 1.0))
    return min(1.0, max(FairSharePolicy.USAGE_TERM_MIN, raw)), "decayed"


def weights_for(allocation_round: AllocationRound, organizations: list[Organization]) -> list[RoundWeight]:
    policy = allocation_round.policy
    history = _history(
        [o.pk for o in organizations], allocation_round.period_start, policy.decay_half_life_days
    )
    rows = []
    for org in organizations:
        membership = getattr(org, "membership", None)
        tier = membership.tier if membership else ""
        tier_weight = float(policy.tier_weights.get(tier, 1.0))
        kind_factor = float(policy.kind_factors.get(org.kind, 1.0))
        used, entitled = history[org.pk]
        term, basis = _usage_term(policy, used, entitled)
        weight = Decimal(repr(tier_weight * kind_factor * term)).quantize(
            WEIGHT_QUANTUM, rounding=ROUND_HALF_EVEN
        )
        weight = max(weight, WEIGHT_QUANTUM)
        rows.append(
            RoundWeight(
                round=allocation_round,
                organization=org,
                weight=weight,
                derivation={
                    "tier": tier,
                    "tier_weight": tier_weight,
                    "kind": org.kind,
                    "kind_factor": kind_factor,
                    "usage": {
                        "basis": basis,
                        "half_life_days": policy.decay_half_life_days,
                        "strength": float(policy.decay_strength),
                        "decayed_usage": round(used, 4),
                        "decayed_entitlement": round(entitled, 4),
                        "term": round(term, 6),
                        "min_term": FairSharePolicy.USAGE_TERM_MIN,
                    },
                    "caps": policy.class_caps,
                    "weight": str(weight),
                },
            )
        )
    return rows
