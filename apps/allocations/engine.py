"""Weighted max-min fair sharing of GPU pools, with cross-provider placement.

Pure Python and numpy (no Django): the allocation round, ``manage.py allocate`` and anyone checking
the alliance's published results run this same module. The format and a worked example are in
docs/allocation-format.md.

Per GPU class (classes are shared independently) there are pools ``p`` with a capacity ``c_p`` and
orgs ``o`` with a demand ``d_o``, a weight ``w_o > 0``, a floor ``f_o <= d_o`` and a set of eligible
pools ``E_o`` (by default every pool of the class). A feasible allocation gives ``x_op >= 0`` to
``o`` from each eligible pool, at most ``c_p`` from a pool in total, with ``f_o <= x_o <= d_o`` for
the org's total ``x_o``. Among those the engine returns the weighted max-min fair one: the levels
``x_o / w_o``, sorted, form the lexicographically largest vector.

Progressive filling computes it exactly (up to floating point), without bisection:

1. Orgs with the same eligible pools form a group; only group totals matter for feasibility. At a
   water level ``t`` every org still rising holds ``clip(w_o t, f_o, d_o)``.
2. The level is raised to the point where a set of groups needs more than the pools it may use
   hold (Hall's condition, checked over every subset of the pools with a vectorised subset-sum
   transform, or with a max-flow min-cut when a class has many pools). Starting from the level at
   which every demand is met, each violated set gives the exact level at which it becomes full
   (the totals are piecewise linear in ``t``); repeating with the next violated set is Newton's
   method on the cut function and stops after a few steps at the highest feasible level.
3. At that level the union of the full ("tight") sets is the bottleneck: its orgs stop growing and
   its pools are exhausted, both leave the problem, and filling continues. When every remaining
   demand fits, the remaining orgs get their demand.

Amounts are whole GPU-hours. Each bottleneck's exact totals add up to its pools' (whole) capacity,
so rounding is done bottleneck by bottleneck: every group gets the floor or the ceiling of its exact
total (an integral max-flow, the leftover units going to the largest fractional parts first), then
within a group every org gets the floor or the ceiling of its own exact total, the leftover units
going to the largest fractional parts first, ties to the smallest org id. So each org is within one
GPU-hour of its exact share and never above its demand, pools are never over-committed, and every
pool of a bottleneck is used to the last GPU-hour (no capacity idles while an eligible org wants
more). Within a group, orgs are placed on its pools in id order ("north-west corner"), which keeps
the number of (org, pool) grants small.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

import numpy as np

from apps.allocations.maxflow import FlowNetwork

DEMAND_MET = "demand_met"
POOLS_EXHAUSTED = "pools_exhausted"

# Amounts are whole GPU-hours held exactly by a float64 below 2**53; this bound leaves room for sums.
MAX_AMOUNT = 10**15
# Weights are relative; outside this range they are a mistake (10**400 overflows a float, 1e-320
# makes every level infinite), and within it levels (amount / weight) stay finite and precise.
# The round's fair-share policy quantizes weights to 0.000001 (fairshare.WEIGHT_QUANTUM).
MIN_WEIGHT = 1e-6
MAX_WEIGHT = 1e6

# Up to this many active pools Hall's condition is checked over all 2**n pool subsets (vectorised);
# beyond, with a max-flow on the group x pool graph.
SUBSET_MAX_POOLS = 16

# The largest distance (GPU-hours) at which an exact amount is taken as the whole number next to it.
SNAP_MAX = 1e-3

_SHOWN_NAMES = 20  # how many orgs an error message names before "and N more"


# --- input and output ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pool:
    id: str
    gpu_class: str
    capacity: int  # whole GPU-hours


@dataclass(frozen=True, slots=True)
class RequestLine:
    """One org's request for one GPU class. At most one line per (org, class): duplicates are refused."""

    org: str
    gpu_class: str
    demand: int  # whole GPU-hours
    weight: float = 1.0
    floor: int = 0  # whole GPU-hours guaranteed before fair sharing starts
    pools: Sequence[str] | None = None  # eligible pools; None: every pool of the class


@dataclass(slots=True)
class Share:
    """What one org gets in one GPU class, and why it got no more."""

    org: str
    gpu_class: str
    demand: int
    weight: float
    floor: int
    granted: int
    exact: float  # the exact (fractional) weighted max-min fair amount; |granted - exact| < 1
    level: float  # exact / weight: the level at which the org stopped growing
    stopped: str  # DEMAND_MET or POOLS_EXHAUSTED
    exhausted_pools: tuple[str, ...]  # POOLS_EXHAUSTED: the org's eligible pools, all full
    bottleneck: int | None  # index into ClassResult.bottlenecks where the org stopped, if it did
    eligible_pools: tuple[str, ...]
    placement: dict[str, int]  # pool id -> GPU-hours (non-zero only, by pool id)


@dataclass(slots=True)
class Bottleneck:
    """A set of pools that ran out at ``level``; the orgs that could only use them stopped there."""

    level: float
    pools: tuple[str, ...]


@dataclass(slots=True)
class ClassResult:
    gpu_class: str
    capacity: int
    demand: int
    granted: int
    pools: dict[str, tuple[int, int]]  # pool id -> (capacity, granted)
    bottlenecks: tuple[Bottleneck, ...]  # in the order the rising level reached them
    shares: tuple[Share, ...]  # by org id


@dataclass(slots=True)
class Allocation:
    classes: dict[str, ClassResult] = field(default_factory=dict)  # by class name

    def shares(self) -> Iterable[Share]:
        for result in self.classes.values():
            yield from result.shares

    def amounts(self) -> dict[tuple[str, str], int]:
        """GPU-hours per (org, pool), non-zero only."""
        return {
            (share.org, pool): amount for share in self.shares() for pool, amount in share.placement.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON document described in docs/allocation-format.md."""
        return {
            "classes": [class_json(result) for result in self.classes.values()],
            "allocations": [share_json(share) for share in self.shares()],
        }


def class_json(result: ClassResult) -> dict[str, Any]:
    """One entry of the result document's "classes"."""
    return {
        "class": result.gpu_class,
        "capacity": result.capacity,
        "demand": result.demand,
        "granted": result.granted,
        "pools": [
            {"id": pool, "capacity": capacity, "granted": granted}
            for pool, (capacity, granted) in result.pools.items()
        ],
        "bottlenecks": [{"level": _round6(b.level), "pools": list(b.pools)} for b in result.bottlenecks],
    }


def share_json(share: Share) -> dict[str, Any]:
    """One entry of the result document's "allocations"."""
    return {
        "org": share.org,
        "class": share.gpu_class,
        "demand": share.demand,
        "weight": share.weight,
        "floor": share.floor,
        "granted": share.granted,
        "exact": _round6(share.exact),
        "level": _round6(share.level),
        "stopped": share.stopped,
        "exhausted_pools": list(share.exhausted_pools),
        "bottleneck": share.bottleneck,
        "placement": share.placement,
    }


def _round6(value: float) -> float:
    return round(value, 6)


class AllocationError(Exception):
    """The instance cannot be allocated. ``messages`` lists every reason found; nothing is returned."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


class InvalidInstanceError(AllocationError):
    """Malformed input: bad numbers, unknown pools, duplicate lines, classes without pools…"""


@dataclass(frozen=True, slots=True)
class FloorConflict:
    gpu_class: str
    orgs: tuple[str, ...]  # orgs with a floor that only these pools can serve
    pools: tuple[str, ...]
    floors: int  # their floors, in total
    capacity: int  # the pools' capacity, in total

    def message(self) -> str:
        shown = ", ".join(self.orgs[:_SHOWN_NAMES])
        if len(self.orgs) > _SHOWN_NAMES:
            shown += f" and {len(self.orgs) - _SHOWN_NAMES} more"
        return (
            f"class {self.gpu_class}: the floors of {shown} add up to {self.floors} GPU-hours, but the "
            f"pools they may use ({', '.join(self.pools)}) hold only {self.capacity} GPU-hours."
        )


class FloorsInfeasibleError(AllocationError):
    """Floors alone exceed the capacity of the pools that can serve them."""

    def __init__(self, conflicts: Sequence[FloorConflict]) -> None:
        self.conflicts = list(conflicts)
        super().__init__([conflict.message() for conflict in self.conflicts])


# --- entry points --------------------------------------------------------------------------------


def allocate(pools: Iterable[Pool], requests: Iterable[RequestLine]) -> Allocation:
    """Weighted max-min fair allocation of every GPU class; see the module docstring.

    Raises InvalidInstanceError (every problem found in the input) or FloorsInfeasibleError. The
    result does not depend on the order of ``pools`` or ``requests``.
    """
    problems = _validated(pools, requests)
    conflicts = [c for c in map(_floor_conflict, problems) if c is not None]
    if conflicts:
        raise FloorsInfeasibleError(conflicts)
    return Allocation({problem.gpu_class: _solve(problem) for problem in problems})


def instance_from_json(data: Any) -> tuple[list[Pool], list[RequestLine]]:
    """Pools and request lines from the JSON document of docs/allocation-format.md.

    Checks the document's shape (keys and lists); ``allocate`` checks the values.
    """
    errors: list[str] = []
    if not isinstance(data, Mapping):
        raise InvalidInstanceError(['the instance must be a JSON object with "pools" and "requests".'])
    errors += [f'unknown key "{key}" at the top level.' for key in data if key not in ("pools", "requests")]
    pools: list[Pool] = []
    requests: list[RequestLine] = []
    # Lines of a large instance repeat the same classes and pool lists: share one object each, so
    # that the engine's input does not keep a copy per line once the parsed document is dropped.
    shared: dict = {}

    def share(value):
        try:
            return shared.setdefault(value, value)
        except TypeError:  # unhashable (a list where a string belongs): refused later
            return value

    for name, required, optional in (
        ("pools", ("id", "class", "capacity"), ()),
        ("requests", ("org", "class", "demand"), ("weight", "floor", "pools")),
    ):
        items = data.get(name)
        if not isinstance(items, list):
            errors.append(f'"{name}" must be a list.')
            continue
        for number, item in enumerate(items, 1):
            where = f"{name}[{number}]"
            if not isinstance(item, Mapping):
                errors.append(f"{where} must be an object.")
                continue
            missing = [key for key in required if key not in item]
            unknown = [key for key in item if key not in required + optional]
            errors += [f'{where} has no "{key}".' for key in missing]
            errors += [f'{where} has an unknown key "{key}".' for key in unknown]
            if missing or unknown:
                continue
            if name == "pools":
                pools.append(
                    Pool(id=share(item["id"]), gpu_class=share(item["class"]), capacity=item["capacity"])
                )
            else:
                listed = item.get("pools")
                if listed is not None and not isinstance(listed, list):
                    errors.append(f'{where}: "pools" must be a list of pool ids or null.')
                    continue
                requests.append(
                    RequestLine(
                        org=item["org"],
                        gpu_class=share(item["class"]),
                        demand=item["demand"],
                        weight=item.get("weight", 1.0),
                        floor=item.get("floor", 0),
                        pools=None if listed is None else share(tuple(share(p) for p in listed)),
                    )
                )
    if errors:
        raise InvalidInstanceError(errors)
    return pools, requests


# --- validation ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Problem:
    """One GPU class, validated, in canonical order (pools and orgs sorted by id). Orgs with the
    same eligible pools form a group; groups are sorted by their pool bitmask."""

    gpu_class: str
    pool_ids: list[str]
    capacity: np.ndarray  # int64 (m,)
    org_ids: list[str]
    demand: np.ndarray  # int64 (n,)
    floor: np.ndarray  # int64 (n,)
    weight: np.ndarray  # float64 (n,)
    signatures: np.ndarray  # bool (k, m): each group's eligible pools
    group_of: np.ndarray  # intp (n,)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real | Decimal) and not isinstance(value, bool)


def _whole(value: Any, what: str, errors: list[str]) -> int:
    if type(value) is int and 0 <= value <= MAX_AMOUNT:  # the common case, quickly
        return value
    if not _is_number(value):
        errors.append(f"{what} must be a whole number of GPU-hours, not {_shown(value)}.")
        return 0
    if not isinstance(value, numbers.Integral) and (not math.isfinite(value) or value != int(value)):
        errors.append(f"{what} must be a whole number of GPU-hours, not {_shown(value)}.")
        return 0
    if value < 0:
        errors.append(f"{what} must not be negative ({_shown(value)}).")
        return 0
    if value > MAX_AMOUNT:
        errors.append(f"{what} must be at most {MAX_AMOUNT} GPU-hours ({_shown(value)}).")
        return 0
    return int(value)


def _weight(value: Any, what: str, errors: list[str]) -> float:
    if (type(value) is float or type(value) is int) and MIN_WEIGHT <= value <= MAX_WEIGHT:
        return float(value)
    if not _is_number(value) or value != value or value <= 0 or value == math.inf:  # value != value: NaN
        errors.append(f"{what} must be a positive number, not {_shown(value)}.")
    elif not MIN_WEIGHT <= value <= MAX_WEIGHT:  # compared exactly: 10**400 is an int, not a float
        errors.append(f"{what} must be between {MIN_WEIGHT:g} and {MAX_WEIGHT:g}, not {_shown(value)}.")
    else:
        return float(value)
    return 1.0


def _shown(value: Any, limit: int = 60) -> str:
    """A value in a message: repr, cut, and without a 5,000-digit integer's str() (a ValueError)."""
    if isinstance(value, int) and abs(value) > 10**50:
        return f"a number of about {value.bit_length() * 0.30103:.0f} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _encodable(value: str) -> bool:
    """UTF-8 can write it: no lone surrogate (JSON's "\\ud800" decodes to one)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _names_ok(values: tuple[Any, ...], whats: tuple[str, ...], errors: list[str]) -> bool:
    ok = True
    for value, what in zip(values, whats, strict=True):
        if not isinstance(value, str) or not value:
            errors.append(f"{what} must be a non-empty string, not {_shown(value)}.")
            ok = False
        elif not value.isascii() and not _encodable(value):
            errors.append(f"{what} must be text UTF-8 can write, not {_shown(value)} (a lone surrogate).")
            ok = False
    return ok


def _validated(pools: Iterable[Pool], requests: Iterable[RequestLine]) -> list[_Problem]:
    errors: list[str] = []
    pool_class: dict[str, str] = {}
    capacity: dict[str, int] = {}
    for number, pool in enumerate(pools, 1):
        where = f"pool {number}"
        if not _names_ok((pool.id, pool.gpu_class), (f"{where}: the id", f"{where}: the class"), errors):
            continue
        pool_id = str(pool.id)
        where = f'pool "{pool_id}"'
        if pool_id in pool_class:
            errors.append(f"{where} is listed twice.")
            continue
        pool_class[pool_id] = str(pool.gpu_class)
        capacity[pool_id] = _whole(pool.capacity, f"{where}: the capacity", errors)
    class_pools: dict[str, list[str]] = {}
    for pool_id in sorted(pool_class):
        class_pools.setdefault(pool_class[pool_id], []).append(pool_id)
    # A pool's bit in its class's eligibility masks.
    bit = {pool_id: 1 << j for pools_ in class_pools.values() for j, pool_id in enumerate(pools_)}
    every = {gpu_class: (1 << len(pools_)) - 1 for gpu_class, pools_ in class_pools.items()}

    rows: dict[str, list[tuple[str, int, int, float, int]]] = {gpu_class: [] for gpu_class in class_pools}
    line_of: dict[tuple[str, str], int] = {}
    classless: dict[str, list[int]] = {}
    masks: dict[tuple[str, tuple], tuple[int, list[str]]] = {}  # (class, listed pools) -> (mask, errors)
    for number, line in enumerate(requests, 1):
        org, gpu_class, demand, floor, weight = line.org, line.gpu_class, line.demand, line.floor, line.weight
        if (
            type(org) is not str
            or type(gpu_class) is not str
            or not org
            or not gpu_class
            or not (org.isascii() and gpu_class.isascii())
        ):
            where = f"request line {number}"
            if not _names_ok((org, gpu_class), (f"{where}: the org", f"{where}: the class"), errors):
                continue
            org, gpu_class = str(org), str(gpu_class)  # a str subclass (a Django SafeString, say)
        if (org, gpu_class) in line_of:
            errors.append(
                f"{_where(number, line)} repeats line {line_of[org, gpu_class]}: an org files one line "
                "per class; combine them into one."
            )
            continue
        line_of[org, gpu_class] = number
        if not (  # the common case is checked quickly, messages are built only for errors
            type(demand) is int
            and type(floor) is int
            and 0 <= floor <= demand <= MAX_AMOUNT
            and (type(weight) is float or type(weight) is int)
            and MIN_WEIGHT <= weight <= MAX_WEIGHT
        ):
            where = _where(number, line)
            demand = _whole(demand, f"{where}: the demand", errors)
            floor = _whole(floor, f"{where}: the floor", errors)
            if floor > demand:
                errors.append(f"{where}: the floor ({floor}) exceeds the demand ({demand}).")
            weight = _weight(weight, f"{where}: the weight", errors)
        if gpu_class not in class_pools:
            classless.setdefault(gpu_class, []).append(number)
            continue
        listed = line.pools
        if listed is None:
            mask = every[gpu_class]
        elif isinstance(listed, str) or not isinstance(listed, Iterable):
            errors.append(
                f"{_where(number, line)}: the eligible pools must be a list of pool ids, not {listed!r}."
            )
            continue
        else:
            listed = tuple(listed)
            try:
                mask, problems = masks[gpu_class, listed]
            except KeyError:
                mask, problems = masks.setdefault(
                    (gpu_class, listed), _mask(listed, gpu_class, pool_class, bit)
                )
            except TypeError:  # unhashable ids
                mask, problems = _mask(listed, gpu_class, pool_class, bit)
            if problems:
                errors += [f"{_where(number, line)}: {problem}" for problem in problems]
        rows[gpu_class].append((org, demand, floor, weight, mask))
    for gpu_class, numbers_ in sorted(classless.items()):
        shown = ", ".join(str(n) for n in numbers_[:_SHOWN_NAMES])
        more = f" and {len(numbers_) - _SHOWN_NAMES} more" if len(numbers_) > _SHOWN_NAMES else ""
        errors.append(f'class "{gpu_class}" has no pool (request lines {shown}{more}).')
    if errors:
        raise InvalidInstanceError(errors)
    return [
        _problem(gpu_class, class_pools[gpu_class], capacity, rows[gpu_class]) for gpu_class in sorted(rows)
    ]


def _where(number: int, line: RequestLine) -> str:
    return f'request line {number} (org "{line.org}", class "{line.gpu_class}")'


def _mask(
    listed: tuple, gpu_class: str, pool_class: dict[str, str], bit: dict[str, int]
) -> tuple[int, list[str]]:
    mask, problems = 0, []
    if not listed:
        problems.append("no eligible pool is listed; leave the list out to use every pool of the class.")
    for pool_id in listed:
        if not isinstance(pool_id, str):
            problems.append(f"pool ids must be strings, not {pool_id!r}.")
        elif pool_id not in pool_class:
            problems.append(f"unknown pool {pool_id!r}.")
        elif pool_class[pool_id] != gpu_class:
            problems.append(f'pool "{pool_id}" is a {pool_class[pool_id]} pool.')
        else:
            mask |= bit[pool_id]
    return mask, problems


def _problem(gpu_class: str, pool_ids: list[str], capacity: dict[str, int], rows: list[tuple]) -> _Problem:
    rows.sort()  # by org id, unique within a class
    m = len(pool_ids)
    distinct = sorted({row[4] for row in rows})
    group = {mask: g for g, mask in enumerate(distinct)}
    signatures = np.array([[(mask >> j) & 1 for j in range(m)] for mask in distinct], dtype=bool)
    return _Problem(
        gpu_class=gpu_class,
        pool_ids=pool_ids,
        capacity=np.array([capacity[pool_id] for pool_id in pool_ids], dtype=np.int64),
        org_ids=[row[0] for row in rows],
        demand=np.array([row[1] for row in rows], dtype=np.int64),
        floor=np.array([row[2] for row in rows], dtype=np.int64),
        weight=np.array([row[3] for row in rows], dtype=np.float64),
        signatures=signatures.reshape(len(distinct), m),
        group_of=np.array([group[row[4]] for row in rows], dtype=np.intp),
    )


# --- water-filling -------------------------------------------------------------------------------


def _tolerance(problem: _Problem) -> float:
    scale = max(1.0, float(problem.capacity.sum()), float(problem.demand.sum()))
    return 1e-9 * scale


def _floor_conflict(problem: _Problem) -> FloorConflict | None:
    signatures, group_of = problem.signatures, problem.group_of
    if not problem.org_ids:
        return None
    floors = np.bincount(group_of, weights=problem.floor, minlength=len(signatures))
    violated = _hall(signatures, problem.capacity, _tolerance(problem)).most_violated(floors)
    if violated is None:
        return None
    groups, _ = violated
    members = groups[group_of] & (problem.floor > 0)
    pools = signatures[groups].any(axis=0)
    return FloorConflict(
        gpu_class=problem.gpu_class,
        orgs=tuple(problem.org_ids[i] for i in np.flatnonzero(members)),
        pools=tuple(problem.pool_ids[j] for j in np.flatnonzero(pools)),
        floors=int(problem.floor[members].sum()),
        capacity=int(problem.capacity[pools].sum()),
    )


@dataclass(slots=True)
class _Stage:
    level: float
    groups: np.ndarray  # group indices
    pools: np.ndarray  # pool indices
    bottleneck: bool  # False for the last stage, where every remaining demand is met


def _water_fill(
    signatures: np.ndarray,
    group_of: np.ndarray,
    w: np.ndarray,
    f: np.ndarray,
    d: np.ndarray,
    cap: np.ndarray,
    tol: float,
) -> list[_Stage]:
    k, m = signatures.shape
    active_groups = np.ones(k, dtype=bool)
    active_pools = np.ones(m, dtype=bool)
    stages: list[_Stage] = []
    t_prev = 0.0
    while active_groups.any():
        groups = np.flatnonzero(active_groups)
        pools = np.flatnonzero(active_pools)
        local = np.full(k, -1, dtype=np.intp)
        local[groups] = np.arange(len(groups))
        orgs = np.flatnonzero(active_groups[group_of])
        wa, fa, da, ga = w[orgs], f[orgs], d[orgs], local[group_of[orgs]]

        totals = partial(_group_totals, w=wa, f=fa, d=da, group=ga, size=len(groups))

        hall = _hall(signatures[np.ix_(groups, pools)], cap[pools], tol)
        t_all_met = max(t_prev, float((da / wa).max()))
        t, limited, cut = t_all_met, False, None
        for _ in range(10_000):
            violated = hall.most_violated(totals(t))
            if violated is None:
                break
            limited, cut = True, violated[0]
            rows = cut[ga]
            t_next = _level_where_full(wa[rows], fa[rows], da[rows], violated[1], t_prev, t)
            if t_next >= t:  # numerically converged
                break
            t = t_next
        else:  # pragma: no cover - each step uses a different cut, so this cannot happen
            raise RuntimeError("water-filling did not converge")
        if not limited:
            stages.append(_Stage(level=t_all_met, groups=groups, pools=pools, bottleneck=False))
            break
        tight_groups, tight_pools = hall.tight(totals(t))
        if not tight_groups.any():  # pragma: no cover - the last cut is tight by construction
            tight_groups, tight_pools = cut, signatures[np.ix_(groups[cut], pools)].any(axis=0)
        stages.append(_Stage(level=t, groups=groups[tight_groups], pools=pools[tight_pools], bottleneck=True))
        active_groups[groups[tight_groups]] = False
        active_pools[pools[tight_pools]] = False
        t_prev = t
    return stages


def _group_totals(
    t: float, *, w: np.ndarray, f: np.ndarray, d: np.ndarray, group: np.ndarray, size: int
) -> np.ndarray:
    """Each group's total at level ``t``: its orgs hold ``clip(w t, f, d)``."""
    return np.bincount(group, weights=np.clip(w * t, f, d), minlength=size)


def _level_where_full(w: np.ndarray, f: np.ndarray, d: np.ndarray, cap: float, lo: float, hi: float) -> float:
    """The largest level in [lo, hi] at which sum(clip(w t, f, d)) <= cap.

    The sum is continuous, non-decreasing and linear between the breakpoints f/w and d/w: a binary
    search over the breakpoints finds the segment, where the level is solved for exactly.
    """

    def total(t: float) -> float:
        return float(np.clip(w * t, f, d).sum())

    points = np.concatenate((f / w, d / w))
    points = np.unique(points[(points > lo) & (points < hi)])
    first, last, best = 0, len(points) - 1, -1
    while first <= last:
        middle = (first + last) // 2
        if total(points[middle]) <= cap:
            best, first = middle, middle + 1
        else:
            last = middle - 1
    a = lo if best < 0 else float(points[best])
    b = hi if best + 1 >= len(points) else float(points[best + 1])
    middle = (a + b) / 2
    rising = (f < w * middle) & (w * middle < d)
    slope = float(w[rising].sum())
    if slope <= 0:
        return a
    return min(b, max(a, a + (cap - total(a)) / slope))


def _hall(signatures: np.ndarray, cap: np.ndarray, tol: float) -> _SubsetHall | _FlowHall:
    if signatures.shape[1] <= SUBSET_MAX_POOLS:
        return _SubsetHall(signatures, cap, tol)
    return _FlowHall(signatures, cap, tol)


class _SubsetHall:
    """Hall's condition over every subset Q of the pools: the groups whose pools all lie in Q must
    fit in Q's capacity. Subset sums over 2**m masks by the zeta transform, in numpy."""

    def __init__(self, signatures: np.ndarray, cap: np.ndarray, tol: float) -> None:
        self.m = signatures.shape[1]
        self.masks = signatures.astype(np.int64) @ (np.int64(1) << np.arange(self.m, dtype=np.int64))
        single = np.zeros(1 << self.m)
        single[np.int64(1) << np.arange(self.m, dtype=np.int64)] = cap
        self.capacity = self._subset_sums(single)
        self.tol = tol

    def _subset_sums(self, values: np.ndarray) -> np.ndarray:
        sums = values.copy()
        for bit in range(self.m):
            view = sums.reshape(-1, 2, 1 << bit)
            view[:, 1, :] += view[:, 0, :]
        return sums

    def _slack(self, totals: np.ndarray) -> np.ndarray:
        inside = np.bincount(self.masks, weights=totals, minlength=1 << self.m)
        return self.capacity - self._subset_sums(inside)

    def most_violated(self, totals: np.ndarray) -> tuple[np.ndarray, float] | None:
        slack = self._slack(totals)
        q = int(np.argmin(slack))
        if slack[q] >= -self.tol:
            return None
        return (self.masks & ~q) == 0, float(self.capacity[q])

    def tight(self, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Full sets are closed under union: their union is the largest one.
        q = int(np.bitwise_or.reduce(np.flatnonzero(self._slack(totals) <= self.tol)))
        return (self.masks & ~q) == 0, ((q >> np.arange(self.m)) & 1).astype(bool)


class _FlowHall:
    """Hall's condition by max-flow min-cut on source -> group -> eligible pool -> sink."""

    def __init__(self, signatures: np.ndarray, cap: np.ndarray, tol: float) -> None:
        self.signatures = signatures
        self.k, self.m = k, m = signatures.shape
        self.cap = [float(c) for c in cap]
        self.tol = tol
        # Built once; each check starts from a copy of the capacities with the groups' totals set.
        self.net = FlowNetwork(k + m + 2)
        self.source, self.sink = k + m, k + m + 1
        for p in range(m):
            self.net.add(k + p, self.sink, self.cap[p])
        self.inflow = [self.net.add(self.source, g, 0.0) for g in range(k)]
        for g, p in zip(*np.nonzero(signatures), strict=True):
            self.net.add(int(g), k + int(p), math.inf)
        self.initial = list(self.net.cap)

    def _flow(self, totals: np.ndarray) -> tuple[FlowNetwork, float]:
        net = self.net
        net.cap = list(self.initial)
        for e, total in zip(self.inflow, totals.tolist(), strict=True):
            net.cap[e] = total
        return net, net.max_flow(self.source, self.sink, self.tol)

    def most_violated(self, totals: np.ndarray) -> tuple[np.ndarray, float] | None:
        net, value = self._flow(totals)
        if value >= float(totals.sum()) - self.tol:
            return None
        groups = np.array(net.reachable_from(self.k + self.m, self.tol)[: self.k])
        pools = self.signatures[groups].any(axis=0)
        return groups, float(sum(c for c, used in zip(self.cap, pools, strict=True) if used))

    def tight(self, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        net, _ = self._flow(totals)
        reaches = np.array(net.reaching(self.k + self.m + 1, self.tol))
        return ~reaches[: self.k], ~reaches[self.k : self.k + self.m]


# --- whole GPU-hours and placement ---------------------------------------------------------------


def _round_stage(
    signatures: np.ndarray,
    cap: np.ndarray,
    exact: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    first_org: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Whole group totals in [lower, upper] (floor and ceiling of the exact ones) placed on the
    stage's pools by an integral max-flow. The leftover units go to the groups with the largest
    fractional parts first, ties to the group whose first candidate org has the smallest id."""
    k, m = signatures.shape
    source, sink = k + m, k + m + 1
    net = FlowNetwork(k + m + 2)
    for p in range(m):  # first in each pool's edge list: searches find spare capacity at once
        net.add(k + p, sink, int(cap[p]))
    inflow = [net.add(source, g, int(lower[g])) for g in range(k)]
    big = int(cap.sum()) + 1
    pairs = [(int(g), int(p)) for g, p in zip(*np.nonzero(signatures), strict=True)]
    placed = [net.add(g, k + p, big) for g, p in pairs]
    net.max_flow(source, sink)
    dead = [False] * (k + m + 2)
    dead[source] = True  # paths from a group must not take units back from another group
    for g in sorted(range(k), key=lambda g: (lower[g] - exact[g], first_org[g])):
        need = int(upper[g]) - net.flow(inflow[g])
        if need > 0:
            net.cap[inflow[g] ^ 1] += net.augment_from(g, sink, need, dead)
    totals = np.array([net.flow(e) for e in inflow], dtype=np.int64)
    flows = np.zeros((k, m), dtype=np.int64)
    for (g, p), e in zip(pairs, placed, strict=True):
        flows[g, p] = net.flow(e)
    return totals, flows


def _solve(problem: _Problem) -> ClassResult:
    signatures, group_of = problem.signatures, problem.group_of
    n, m = len(problem.org_ids), len(problem.pool_ids)
    k = len(signatures)
    w = problem.weight
    f = problem.floor.astype(np.float64)
    d = problem.demand.astype(np.float64)
    stages = _water_fill(signatures, group_of, w, f, d, problem.capacity, _tolerance(problem)) if n else []
    group_level = np.zeros(k)
    group_stage = np.full(k, -1, dtype=np.intp)
    for index, stage in enumerate(stages):
        group_level[stage.groups] = stage.level
        group_stage[stage.groups] = index
    exact = np.clip(w * group_level[group_of], f, d)

    # Each org: the floor or the ceiling of its exact amount (within floating-point noise). The snap
    # is relative, but at most a thousandth: 1e-9 of 10**9 GPU-hours is a third of a unit, which
    # rounded 333333331.67 up to 333333332 and left the floor/ceiling band (a RuntimeError).
    snap = np.minimum(1e-9 * np.maximum(1.0, exact), SNAP_MAX)
    lo = np.clip(np.floor(exact + snap), problem.floor, problem.demand).astype(np.int64)
    hi = np.clip(np.ceil(exact - snap), lo, problem.demand).astype(np.int64)
    group_lo = np.bincount(group_of, weights=lo, minlength=k).astype(np.int64)
    group_hi = np.bincount(group_of, weights=hi, minlength=k).astype(np.int64)
    group_exact = np.bincount(group_of, weights=exact, minlength=k)
    group_snap = np.minimum(1e-9 * np.maximum(1.0, group_exact), SNAP_MAX)
    lower = np.clip(np.floor(group_exact + group_snap), group_lo, group_hi).astype(np.int64)
    upper = np.clip(np.ceil(group_exact - group_snap), lower, group_hi).astype(np.int64)

    # Orgs by group, then largest fractional part, then id: who gets a group's leftover units.
    can_rise = hi > lo
    order = np.lexsort((np.arange(n), -(exact - lo) * can_rise, group_of))
    starts = np.searchsorted(group_of[order], np.arange(k))

    group_total = np.zeros(k, dtype=np.int64)
    flows = np.zeros((k, m), dtype=np.int64)
    for stage in stages:
        g, p = stage.groups, stage.pools
        totals, stage_flows = _round_stage(
            signatures[np.ix_(g, p)],
            problem.capacity[p],
            group_exact[g],
            lower[g],
            upper[g],
            order[starts[g]],
        )
        group_total[g] = totals
        flows[np.ix_(g, p)] = stage_flows

    # Within a group: leftover units to the largest fractional parts, ties to the smallest org id.
    extra = group_total - group_lo
    if (extra < 0).any() or (extra > np.bincount(group_of, weights=can_rise, minlength=k)).any():
        raise RuntimeError("rounding left the floor/ceiling band")  # pragma: no cover
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[group_of[order]]
    granted = lo + ((rank < extra[group_of]) & can_rise)

    # North-west corner: the orgs of a group (by id) fill its pools (by id) in turn. Groups are laid
    # end to end; the group boundaries line up because a group's orgs and pool flows have one total.
    by_group = np.argsort(group_of, kind="stable")
    org_ends = np.cumsum(granted[by_group])
    flow_g, flow_p = np.nonzero(flows)
    flow_ends = np.cumsum(flows[flow_g, flow_p])
    ends = np.union1d(org_ends, flow_ends)
    begins = np.concatenate(([0], ends))[:-1]
    keep = ends > begins
    begins, ends = begins[keep], ends[keep]
    piece_org = by_group[np.searchsorted(org_ends, begins, side="right")]
    piece_pool = flow_p[np.searchsorted(flow_ends, begins, side="right")]
    placement: list[dict[str, int]] = [{} for _ in range(n)]
    pool_ids = problem.pool_ids
    for i, j, amount in zip(piece_org.tolist(), piece_pool.tolist(), (ends - begins).tolist(), strict=True):
        placement[i][pool_ids[j]] = amount

    bottleneck_of_stage = {}
    bottlenecks = []
    for index, stage in enumerate(stages):
        if stage.bottleneck:
            bottleneck_of_stage[index] = len(bottlenecks)
            bottlenecks.append(Bottleneck(level=stage.level, pools=tuple(pool_ids[p] for p in stage.pools)))
    group_pools = [tuple(pool_ids[p] for p in np.flatnonzero(row)) for row in signatures]
    group_bottleneck = [bottleneck_of_stage.get(stage) for stage in group_stage.tolist()]
    gpu_class = problem.gpu_class
    shares = []
    for org, g, demand, weight, floor, amount, exact_, pieces in zip(
        problem.org_ids,
        group_of.tolist(),
        problem.demand.tolist(),
        w.tolist(),
        problem.floor.tolist(),
        granted.tolist(),
        exact.tolist(),
        placement,
        strict=True,
    ):
        met = amount == demand
        shares.append(
            Share(
                org,
                gpu_class,
                demand,
                weight,
                floor,
                amount,
                exact_,
                exact_ / weight,
                DEMAND_MET if met else POOLS_EXHAUSTED,
                () if met else group_pools[g],
                None if met else group_bottleneck[g],
                group_pools[g],
                pieces,  # already by pool id: a group's flows are laid out in pool order
            )
        )
    used = flows.sum(axis=0)
    return ClassResult(
        gpu_class=problem.gpu_class,
        capacity=int(problem.capacity.sum()),
        demand=int(problem.demand.sum()),
        granted=int(granted.sum()),
        pools={pool_ids[j]: (int(problem.capacity[j]), int(used[j])) for j in range(m)},
        bottlenecks=tuple(bottlenecks),
        shares=tuple(shares),
    )
