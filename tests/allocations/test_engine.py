"""The allocation engine: hand-checked cases, properties against the LP reference, bad input."""

from __future__ import annotations

import json
import math
import random
from contextlib import contextmanager, nullcontext
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.allocations import engine
from apps.allocations.engine import (
    DEMAND_MET,
    POOLS_EXHAUSTED,
    FloorsInfeasibleError,
    InvalidInstanceError,
    Pool,
    RequestLine,
    allocate,
    instance_from_json,
)
from apps.allocations.reference import reference_totals


def _pools(**capacities: int) -> list[Pool]:
    return [Pool(pool_id, "H200", capacity) for pool_id, capacity in capacities.items()]


def _line(org: str, demand: int, **options) -> RequestLine:
    return RequestLine(org, options.pop("gpu_class", "H200"), demand, **options)


def _shares(result, gpu_class: str = "H200") -> dict:
    return {share.org: share for share in result.classes[gpu_class].shares}


def _granted(result, gpu_class: str = "H200") -> dict[str, int]:
    return {org: share.granted for org, share in _shares(result, gpu_class).items()}


@contextmanager
def _flow_paths():
    """Force the max-flow version of Hall's check (the subset one serves small pool counts)."""
    previous = engine.SUBSET_MAX_POOLS
    engine.SUBSET_MAX_POOLS = 0
    try:
        yield
    finally:
        engine.SUBSET_MAX_POOLS = previous


# --- hand-checked cases --------------------------------------------------------------------------


def test_one_pool_is_shared_equally_and_small_demands_are_met():
    result = allocate(_pools(p=90), [_line("a", 100), _line("b", 100), _line("c", 20)])

    assert _granted(result) == {"a": 35, "b": 35, "c": 20}
    shares = _shares(result)
    assert shares["c"].stopped == DEMAND_MET
    assert shares["c"].exhausted_pools == ()
    assert shares["c"].bottleneck is None
    assert shares["a"].stopped == POOLS_EXHAUSTED
    assert shares["a"].exhausted_pools == ("p",)
    assert shares["a"].level == pytest.approx(35)
    assert [(b.level, b.pools) for b in result.classes["H200"].bottlenecks] == [(pytest.approx(35), ("p",))]


def test_weights_scale_the_shares():
    result = allocate(_pools(p=90), [_line("a", 100, weight=2), _line("b", 100, weight=1)])

    assert _granted(result) == {"a": 60, "b": 30}
    assert {org: share.level for org, share in _shares(result).items()} == {
        "a": pytest.approx(30),
        "b": pytest.approx(30),
    }


def test_an_org_eligible_for_one_provider_is_not_starved_by_flexible_orgs():
    # Flexible orgs listed first would take p if placed greedily; they must be served from q.
    result = allocate(
        _pools(p=100, q=100),
        [_line("flex-1", 40), _line("flex-2", 40), _line("local", 150, pools=["p"])],
    )

    shares = _shares(result)
    assert _granted(result) == {"flex-1": 40, "flex-2": 40, "local": 100}
    assert shares["local"].placement == {"p": 100}
    assert shares["flex-1"].placement == {"q": 40}
    assert shares["flex-2"].placement == {"q": 40}
    assert shares["local"].exhausted_pools == ("p",)


def test_flexible_orgs_shift_to_other_providers_to_lift_the_constrained_one():
    # 200 GPU-hours for three orgs: everyone gets 66.67; local's only pool p carries all of its share.
    result = allocate(
        _pools(p=100, q=100),
        [_line("flex-1", 150), _line("flex-2", 150), _line("local", 150, pools=["p"])],
    )

    granted = _granted(result)
    assert sorted(granted.values()) == [66, 67, 67]
    assert sum(granted.values()) == 200
    assert _shares(result)["local"].placement == {"p": granted["local"]}
    assert result.classes["H200"].pools == {"p": (100, 100), "q": (100, 100)}


def test_a_small_provider_becomes_a_bottleneck_of_its_own():
    # local can only use p (30): it stops at 30 while the others go on to share q at level 50.
    result = allocate(
        _pools(p=30, q=100),
        [_line("flex-1", 100), _line("flex-2", 100), _line("local", 100, pools=["p"])],
    )

    shares = _shares(result)
    assert _granted(result) == {"flex-1": 50, "flex-2": 50, "local": 30}
    bottlenecks = result.classes["H200"].bottlenecks
    assert [(b.level, b.pools) for b in bottlenecks] == [
        (pytest.approx(30), ("p",)),
        (pytest.approx(50), ("q",)),
    ]
    assert shares["local"].bottleneck == 0
    assert shares["flex-1"].bottleneck == 1
    assert shares["flex-1"].exhausted_pools == ("p", "q")
    assert shares["flex-1"].placement == {"q": 50}


def test_floors_are_granted_before_fair_sharing():
    result = allocate(_pools(p=100), [_line("a", 100, floor=60), _line("b", 100)])

    shares = _shares(result)
    assert _granted(result) == {"a": 60, "b": 40}
    assert shares["a"].level == pytest.approx(60)  # above the water level of 40: held by its floor
    assert result.classes["H200"].bottlenecks[0].level == pytest.approx(40)
    assert shares["a"].stopped == POOLS_EXHAUSTED


def test_a_floor_below_the_fair_share_changes_nothing():
    result = allocate(_pools(p=100), [_line("a", 100, floor=20), _line("b", 100)])

    assert _granted(result) == {"a": 50, "b": 50}


def test_floors_that_cannot_be_met_name_the_orgs_and_pools():
    pools = [*_pools(p=50, q=100), Pool("b200", "B200", 10)]
    lines = [
        _line("a", 100, floor=40, pools=["p"]),
        _line("b", 100, floor=30, pools=["p"]),
        _line("c", 100, floor=10),
        _line("d", 100, floor=20, gpu_class="B200"),
    ]

    with pytest.raises(FloorsInfeasibleError) as caught:
        allocate(pools, lines)

    conflicts = {c.gpu_class: c for c in caught.value.conflicts}
    assert set(conflicts) == {"H200", "B200"}
    assert conflicts["H200"].orgs == ("a", "b")
    assert conflicts["H200"].pools == ("p",)
    assert (conflicts["H200"].floors, conflicts["H200"].capacity) == (70, 50)
    assert conflicts["B200"].orgs == ("d",)
    assert "the floors of a, b add up to 70 GPU-hours" in caught.value.messages[1]
    assert "(p) hold only 50 GPU-hours" in caught.value.messages[1]


def test_every_demand_met_leaves_the_rest_idle():
    result = allocate(_pools(p=100, q=100), [_line("a", 30), _line("b", 50, pools=["q"])])

    assert _granted(result) == {"a": 30, "b": 50}
    assert all(share.stopped == DEMAND_MET for share in result.shares())
    assert result.classes["H200"].bottlenecks == ()
    assert result.classes["H200"].granted == 80


def test_leftover_units_go_to_the_smallest_org_id_on_a_tie():
    result = allocate(_pools(p=10), [_line("c", 100), _line("a", 100), _line("b", 100)])

    assert _granted(result) == {"a": 4, "b": 3, "c": 3}
    assert all(share.exact == pytest.approx(10 / 3) for share in result.shares())


def test_leftover_units_go_to_the_largest_fractional_part():
    # Exact shares 3.33 and 6.67: the unit left after rounding down goes to b.
    result = allocate(_pools(p=10), [_line("a", 100, weight=1), _line("b", 100, weight=2)])

    assert _granted(result) == {"a": 3, "b": 7}


def test_whole_amounts_stay_within_one_of_the_exact_share_and_fill_the_pools():
    lines = [_line(f"org-{i}", 1000, weight=1 + i / 7) for i in range(13)]
    result = allocate(_pools(p=1001, q=999), lines)

    for share in result.shares():
        assert abs(share.granted - share.exact) < 1
        assert share.granted <= share.demand
    assert result.classes["H200"].granted == 2000


def test_classes_are_shared_independently():
    pools = [Pool("p", "H200", 100), Pool("q", "B200", 10)]
    result = allocate(pools, [_line("a", 80), _line("a", 80, gpu_class="B200"), _line("b", 80)])

    assert _granted(result) == {"a": 50, "b": 50}
    assert _granted(result, "B200") == {"a": 10}


def test_a_class_with_pools_but_no_requests_is_reported_empty():
    result = allocate([Pool("p", "H200", 100), Pool("q", "B200", 10)], [_line("a", 80)])

    empty = result.classes["B200"]
    assert (empty.capacity, empty.demand, empty.granted, empty.shares) == (10, 0, 0, ())


def test_a_pool_without_capacity_exhausts_its_only_users_at_zero():
    result = allocate(_pools(empty=0, p=10), [_line("a", 5, pools=["empty"]), _line("b", 50)])

    shares = _shares(result)
    assert _granted(result) == {"a": 0, "b": 10}
    assert shares["a"].exhausted_pools == ("empty",)
    assert shares["a"].placement == {}


def test_zero_demand_gets_nothing_and_counts_as_met():
    result = allocate(_pools(p=10), [_line("a", 0), _line("b", 50)])

    assert _granted(result) == {"a": 0, "b": 10}
    assert _shares(result)["a"].stopped == DEMAND_MET


def test_output_does_not_depend_on_the_order_of_lines_or_pools():
    rng = random.Random(7)
    pools = [Pool(f"p{j}", "H200" if j % 3 else "B200", rng.randint(50, 300)) for j in range(9)]
    class_pools = {c: [p.id for p in pools if p.gpu_class == c] for c in ("H200", "B200")}
    lines = [
        RequestLine(
            f"org-{i:02d}",
            gpu_class,
            demand,
            rng.choice([1, 2, 0.5, 1.3]),
            rng.choice([0, 0, demand // 10]),
            rng.sample(class_pools[gpu_class], rng.randint(1, 3)) if rng.random() < 0.5 else None,
        )
        for i in range(40)
        for gpu_class in ("H200", "B200")
        for demand in [rng.randint(0, 200)]
        if rng.random() < 0.8
    ]
    expected = json.dumps(allocate(pools, lines).to_dict())

    for _ in range(5):
        rng.shuffle(lines)
        rng.shuffle(pools)
        shuffled = [
            RequestLine(
                ln.org,
                ln.gpu_class,
                ln.demand,
                ln.weight,
                ln.floor,
                ln.pools and rng.sample(ln.pools, len(ln.pools)),
            )
            for ln in lines
        ]
        assert json.dumps(allocate(pools, shuffled).to_dict()) == expected


def test_the_max_flow_check_gives_the_same_result_as_the_subset_check():
    pools = _pools(p=30, q=100, r=45)
    lines = [
        _line("a", 100, pools=["p"]),
        _line("b", 80, pools=["p", "r"], weight=2),
        _line("c", 100, floor=10),
        _line("d", 7, pools=["q"]),
    ]
    expected = allocate(pools, lines).to_dict()

    with _flow_paths():
        assert allocate(pools, lines).to_dict() == expected


def test_amounts_lists_every_org_pool_pair():
    result = allocate(_pools(p=10, q=10), [_line("a", 15, pools=["p", "q"]), _line("b", 5, pools=["q"])])

    assert result.amounts() == {("a", "p"): 10, ("a", "q"): 5, ("b", "q"): 5}


def test_numbers_from_decimal_and_fraction_are_accepted():
    lines = [_line("a", Decimal("30"), weight=Decimal("1.5")), _line("b", 30.0, weight=Fraction(1, 2))]

    result = allocate(_pools(p=Decimal(10)), lines)

    assert _granted(result) == {"a": 8, "b": 2}  # exact 7.5 and 2.5: the tie goes to "a"
    assert _shares(result)["a"].exact == pytest.approx(7.5)


# --- properties against the LP reference ---------------------------------------------------------


@st.composite
def instances(draw, max_orgs: int = 50, max_pools: int = 8):
    classes = draw(st.sampled_from([("H200",), ("H200", "B200")]))
    n_pools = draw(st.integers(len(classes), max_pools))
    capacity = st.integers(0, 60) | st.integers(0, 400)
    pools = [Pool(f"p{j}", classes[j % len(classes)], draw(capacity)) for j in range(n_pools)]
    weight = st.sampled_from([1, 1, 2, 3]) | st.floats(0.1, 10, allow_nan=False)
    lines = []
    for i in range(draw(st.integers(1, max_orgs))):
        for gpu_class in classes:
            if len(classes) > 1 and draw(st.booleans()):
                continue
            class_pools = [p.id for p in pools if p.gpu_class == gpu_class]
            demand = draw(st.integers(0, 120))
            floor = draw(st.integers(0, demand // 3)) if draw(st.integers(0, 4)) == 0 else 0
            eligible = (
                None
                if draw(st.booleans())
                else draw(
                    st.lists(st.sampled_from(class_pools), min_size=1, max_size=len(class_pools), unique=True)
                )
            )
            lines.append(RequestLine(f"org-{i:02d}", gpu_class, demand, draw(weight), floor, eligible))
    return pools, lines


def _check_against(result, pools, lines, exact):
    capacity = {pool.id: pool.capacity for pool in pools}
    used = dict.fromkeys(capacity, 0)
    line_of = {(line.org, line.gpu_class): line for line in lines}
    eligible = {
        key: set(line.pools)
        if line.pools is not None
        else {p.id for p in pools if p.gpu_class == line.gpu_class}
        for key, line in line_of.items()
    }
    assert len(list(result.shares())) == len(lines)
    # The reference's own accuracy: reference_totals treats gaps below 1e-6 x the class's total
    # capacity or demand as zero (LP tolerances), so it may stop an org that far below the exact value.
    ref_tol = {
        gpu_class: 1e-6
        * max(
            1.0,
            sum(p.capacity for p in pools if p.gpu_class == gpu_class),
            sum(line.demand for line in lines if line.gpu_class == gpu_class),
        )
        for gpu_class in {line.gpu_class for line in lines}
    }
    for share in result.shares():
        key = (share.org, share.gpu_class)
        scale = max(1.0, exact[key])
        tolerance = 1e-6 * scale + ref_tol[share.gpu_class]
        assert abs(share.exact - exact[key]) <= tolerance, (key, share.exact, exact[key])
        assert abs(share.granted - exact[key]) <= 1 + tolerance, (key, share.granted, exact[key])
        assert line_of[key].floor <= share.granted <= share.demand
        assert sum(share.placement.values()) == share.granted
        assert set(share.placement) <= eligible[key]
        assert all(amount > 0 for amount in share.placement.values())
        for pool, amount in share.placement.items():
            used[pool] += amount
    assert all(used[pool] <= capacity[pool] for pool in capacity)
    for share in result.shares():
        if share.granted < share.demand:  # Pareto: nothing it may use is left idle
            key = (share.org, share.gpu_class)
            assert share.stopped == POOLS_EXHAUSTED
            assert set(share.exhausted_pools) == eligible[key]
            assert all(used[pool] == capacity[pool] for pool in eligible[key]), key
        else:
            assert share.stopped == DEMAND_MET
    for result_class in result.classes.values():
        assert result_class.pools == {
            pool: (capacity[pool], used[pool]) for pool in capacity if pool in result_class.pools
        }


def test_a_weight_just_below_one_still_reaches_its_demand():
    """Found by the property test (CI, 2026-11-28): org B (weight 0.99999) must get its whole demand
    of 1 once A is held at level 1 by its only pool. The engine is exact; the LP reference stopped B
    at 0.99999, within its tolerance (so the property compares within that tolerance)."""
    pools = [Pool("p5", "H200", 1), Pool("p7", "H200", 9)]
    lines = [RequestLine("a", "H200", 2, 1, 0, ["p5"]), RequestLine("b", "H200", 1, 0.99999, 0, None)]
    result = allocate(pools, lines)
    shares = {share.org: share for share in result.shares()}
    assert (shares["a"].granted, shares["b"].granted) == (1, 1)
    assert shares["b"].exact == pytest.approx(1.0, abs=1e-12) and shares["b"].stopped == DEMAND_MET
    exact = reference_totals(pools, lines)
    assert exact[("b", "H200")] == pytest.approx(1.0, abs=2e-5)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(instance=instances(), seed=st.randoms(use_true_random=False))
def test_engine_matches_the_lp_reference_within_one_gpu_hour(instance, seed):
    """Both versions of Hall's check (subset transform, max-flow) agree with the sequential LPs,
    and the result does not depend on the order of the input."""
    pools, lines = instance
    try:
        exact = reference_totals(pools, lines)
    except ValueError:  # the floors alone do not fit
        for paths in (nullcontext, _flow_paths):
            with paths(), pytest.raises(FloorsInfeasibleError):
                allocate(pools, lines)
        return
    shuffled = list(lines)
    seed.shuffle(shuffled)
    for paths in (nullcontext, _flow_paths):
        with paths():
            result = allocate(pools, lines)
            _check_against(result, pools, lines, exact)
            assert allocate(pools[::-1], shuffled).to_dict() == result.to_dict()


@settings(max_examples=40, deadline=None)
@given(instance=instances(max_orgs=12, max_pools=4))
def test_raising_a_pool_never_lowers_the_smallest_level(instance):
    pools, lines = instance
    try:
        before = allocate(pools, lines)
    except FloorsInfeasibleError:
        return
    bigger = [Pool(p.id, p.gpu_class, p.capacity + 10) for p in pools]
    after = allocate(bigger, lines)
    for gpu_class, result in before.classes.items():
        if result.shares:
            assert (
                min(s.exact / s.weight for s in after.classes[gpu_class].shares)
                >= min(s.exact / s.weight for s in result.shares) - 1e-9
            )


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (_line("a", -5), "the demand must not be negative (-5)"),
        (_line("a", "10"), "the demand must be a whole number of GPU-hours, not '10'"),
        (_line("a", 10.5), "the demand must be a whole number of GPU-hours, not 10.5"),
        (_line("a", math.nan), "the demand must be a whole number of GPU-hours, not nan"),
        (_line("a", True), "the demand must be a whole number of GPU-hours, not True"),
        (_line("a", None), "the demand must be a whole number of GPU-hours, not None"),
        (_line("a", 10, weight=0), "the weight must be a positive number, not 0"),
        (_line("a", 10, weight=-1.5), "the weight must be a positive number, not -1.5"),
        (_line("a", 10, weight=math.inf), "the weight must be a positive number, not inf"),
        (_line("a", 10, weight="2"), "the weight must be a positive number, not '2'"),
        (_line("a", 10, floor=11), "the floor (11) exceeds the demand (10)"),
        (_line("a", 10, floor=-1), "the floor must not be negative (-1)"),
        (_line("a", 10, pools=["nowhere"]), "unknown pool 'nowhere'"),
        (_line("a", 10, pools=["b200"]), 'pool "b200" is a B200 pool'),
        (_line("a", 10, pools=[]), "no eligible pool is listed"),
        (_line("a", 10, pools="p"), "the eligible pools must be a list of pool ids, not 'p'"),
        (_line("a", 10, pools=[7]), "pool ids must be strings, not 7"),
        (_line("a", 10, gpu_class="MI300"), 'class "MI300" has no pool (request lines 1)'),
        (_line("", 10), "request line 1: the org must be a non-empty string, not ''"),
        (RequestLine(17, "H200", 10), "request line 1: the org must be a non-empty string, not 17"),
    ],
)
def test_bad_request_lines_are_refused_with_a_clear_message(line, message):
    pools = [Pool("p", "H200", 10), Pool("b200", "B200", 10)]

    with pytest.raises(InvalidInstanceError) as caught:
        allocate(pools, [line])

    assert len(caught.value.messages) == 1
    assert message in caught.value.messages[0]


@pytest.mark.parametrize(
    ("pool", "message"),
    [
        (Pool("p", "H200", -1), 'pool "p": the capacity must not be negative (-1)'),
        (Pool("p", "H200", 2.5), 'pool "p": the capacity must be a whole number of GPU-hours, not 2.5'),
        (Pool("p", "H200", 10**16), 'pool "p": the capacity must be at most'),
        (Pool("p", "", 10), "pool 1: the class must be a non-empty string"),
        (Pool(None, "H200", 10), "pool 1: the id must be a non-empty string, not None"),
    ],
)
def test_bad_pools_are_refused_with_a_clear_message(pool, message):
    with pytest.raises(InvalidInstanceError) as caught:
        allocate([pool], [])

    assert len(caught.value.messages) == 1
    assert message in caught.value.messages[0]


def test_every_problem_is_reported_at_once():
    pools = [Pool("p", "H200", 10), Pool("p", "H200", 20)]
    lines = [_line("a", -1), _line("a", 5), _line("b", 5, weight=0, pools=["q"])]

    with pytest.raises(InvalidInstanceError) as caught:
        allocate(pools, lines)

    assert caught.value.messages == [
        'pool "p" is listed twice.',
        'request line 1 (org "a", class "H200"): the demand must not be negative (-1).',
        'request line 2 (org "a", class "H200") repeats line 1: an org files one line per class; '
        "combine them into one.",
        'request line 3 (org "b", class "H200"): the weight must be a positive number, not 0.',
        'request line 3 (org "b", class "H200"): unknown pool \'q\'.',
    ]


def test_duplicate_lines_are_refused_even_when_identical():
    with pytest.raises(InvalidInstanceError, match="repeats line 1"):
        allocate(_pools(p=10), [_line("a", 5), _line("a", 5)])


def test_instance_from_json_reads_the_documented_format():
    pools, lines = instance_from_json(
        {
            "pools": [{"id": "p", "class": "H200", "capacity": 10}],
            "requests": [
                {"org": "a", "class": "H200", "demand": 5},
                {"org": "b", "class": "H200", "demand": 9, "weight": 2, "floor": 1, "pools": ["p"]},
                {"org": "c", "class": "H200", "demand": 9, "pools": None},
            ],
        }
    )

    assert pools == [Pool("p", "H200", 10)]
    assert lines == [
        RequestLine("a", "H200", 5),
        RequestLine("b", "H200", 9, 2, 1, ("p",)),
        RequestLine("c", "H200", 9),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], 'the instance must be a JSON object with "pools" and "requests".'),
        ({"requests": []}, '"pools" must be a list.'),
        ({"pools": [], "requests": {}}, '"requests" must be a list.'),
        ({"pools": [], "requests": [], "extra": 1}, 'unknown key "extra" at the top level.'),
        ({"pools": [{"id": "p", "class": "H200"}], "requests": []}, 'pools[1] has no "capacity".'),
        ({"pools": [7], "requests": []}, "pools[1] must be an object."),
        (
            {"pools": [], "requests": [{"org": "a", "class": "H200", "demand": 1, "weigth": 2}]},
            'requests[1] has an unknown key "weigth".',
        ),
        (
            {"pools": [], "requests": [{"org": "a", "class": "H200", "demand": 1, "pools": "p"}]},
            'requests[1]: "pools" must be a list of pool ids or null.',
        ),
    ],
)
def test_instance_from_json_refuses_a_malformed_document(data, message):
    with pytest.raises(InvalidInstanceError) as caught:
        instance_from_json(data)

    assert message in caught.value.messages
