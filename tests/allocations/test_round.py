"""The allocation round's services: requests, weights, computing, adjusting and publishing."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.allocations import services
from apps.allocations.models import AllocationRequest, RoundPool, RoundResult, RoundWeight
from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.organizations.models import Membership
from apps.providers.models import QuotaGrant
from tests.factories import (
    AllocationRoundFactory,
    FairSharePolicyFactory,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    QuotaGrantFactory,
    StaffFactory,
    UsageRecordFactory,
)

pytestmark = pytest.mark.django_db

JUST = "LLM の継続事前学習"


@pytest.fixture
def staff():
    return StaffFactory()


@pytest.fixture
def pools():
    """Two H200 pools (800 and 400 GPU-hours for April to June 2026) and one B200 pool (300)."""
    hokkaido = PoolPeriodFactory(pool__code="hokkaido-h200", capacity_gpu_hours="800.00")
    osaka = PoolPeriodFactory(pool__code="osaka-h200", capacity_gpu_hours="400.00")
    tokyo = PoolPeriodFactory(pool__code="tokyo-b200", pool__gpu_class="B200", capacity_gpu_hours="300.00")
    return {"hokkaido": hokkaido.pool, "osaka": osaka.pool, "tokyo": tokyo.pool}


@pytest.fixture
def allocation_round(staff):
    return AllocationRoundFactory(created_by=staff)


def org_with_admin(role="owner", **kwargs):
    org = OrganizationFactory(**kwargs)
    return org, OrgRoleFactory(organization=org, role=role).user


def submit(allocation_round, org, user, demand, gpu_class="H200", **kwargs):
    return services.request_submit(
        round_id=allocation_round.pk,
        organization=org,
        gpu_class=gpu_class,
        demand_gpu_hours=demand,
        justification=JUST,
        actor=user,
        **kwargs,
    )


def close_and_compute(allocation_round, staff):
    services.round_close(round_id=allocation_round.pk, actor=staff)
    return services.round_compute(round_id=allocation_round.pk, actor=staff)


def final_by_org(allocation_round):
    totals = {}
    for result in RoundResult.objects.filter(round=allocation_round).select_related("organization"):
        key = (result.organization.slug, result.gpu_class)
        totals[key] = totals.get(key, 0) + result.final_amount
    return totals


# --- the whole lifecycle -------------------------------------------------------------------------


def test_the_lifecycle_ends_in_round_grants_within_each_pools_capacity(staff, pools):
    FairSharePolicyFactory(is_default=True)
    allocation_round = services.round_create(
        name="2026年度 第1四半期",
        fiscal_year=2026,
        period_start=datetime.date(2026, 4, 1),
        period_end=datetime.date(2026, 7, 1),
        actor=staff,
    )
    kyoto, kyoto_admin = org_with_admin(slug="kyoto-u")
    medi, medi_admin = org_with_admin(role="admin", slug="medi-lab")
    startup, startup_admin = org_with_admin(slug="startup-a")
    submit(allocation_round, kyoto, kyoto_admin, 700)
    submit(
        allocation_round, medi, medi_admin, 600, eligible_pool_ids=[pools["osaka"].pk], floor_gpu_hours=100
    )
    submit(allocation_round, startup, startup_admin, 200)
    submit(allocation_round, kyoto, kyoto_admin, 400, gpu_class="B200")

    close_and_compute(allocation_round, staff)
    allocation_round.refresh_from_db()
    assert allocation_round.status == "computed"
    assert allocation_round.progress == 100
    assert allocation_round.computed_at is not None
    assert final_by_org(allocation_round) == {
        ("kyoto-u", "H200"): 600,
        ("medi-lab", "H200"): 400,
        ("startup-a", "H200"): 200,
        ("kyoto-u", "B200"): 300,
    }
    medi_rows = RoundResult.objects.filter(round=allocation_round, organization=medi)
    assert [(r.pool.code, r.amount) for r in medi_rows] == [("osaka-h200", 400)]
    assert medi_rows[0].stopped_reason == "pools_exhausted"
    assert medi_rows[0].exhausted_pools == ["osaka-h200"]
    startup_row = RoundResult.objects.get(round=allocation_round, organization=startup)
    assert startup_row.stopped_reason == "demand_met"
    assert RoundWeight.objects.filter(round=allocation_round).count() == 3

    grants = services.round_publish(round_id=allocation_round.pk, actor=staff)
    allocation_round.refresh_from_db()
    assert allocation_round.status == "published"
    assert allocation_round.published_at is not None
    assert len(grants) == QuotaGrant.objects.count()
    assert {g.source for g in grants} == {"round"}
    assert {g.source_ref for g in grants} == {f"round-{allocation_round.pk}"}
    for round_pool in RoundPool.objects.filter(round=allocation_round).select_related("period"):
        granted = sum(g.gpu_hours for g in grants if g.pool_id == round_pool.pool_id)
        assert granted <= round_pool.period.capacity_gpu_hours
        assert granted <= round_pool.capacity
    assert sum(g.gpu_hours for g in grants) == 1500
    assert all(g.valid_from == datetime.date(2026, 4, 1) for g in grants)
    assert all(g.valid_until == datetime.date(2026, 7, 1) for g in grants)

    actions = list(
        AuditEvent.objects.filter(
            target_type="allocations.allocationround", target_id=str(allocation_round.pk)
        )
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["round.created", "round.closed", "round.computed", "round.published"]
    assert AuditEvent.objects.filter(action="allocation_request.submitted").count() == 4
    assert AuditEvent.objects.filter(action="grant.created").count() == len(grants)


def test_round_create_refuses_a_period_outside_the_fiscal_year_or_not_whole_months(staff):
    FairSharePolicyFactory(is_default=True)
    for start, end in [
        (datetime.date(2026, 3, 1), datetime.date(2026, 5, 1)),  # March belongs to FY2025
        (datetime.date(2027, 1, 1), datetime.date(2027, 5, 1)),  # runs past 31 March 2027
        (datetime.date(2026, 4, 15), datetime.date(2026, 7, 1)),
        (datetime.date(2026, 7, 1), datetime.date(2026, 4, 1)),
    ]:
        with pytest.raises(ApplicationError) as exc:
            services.round_create(name="R", fiscal_year=2026, period_start=start, period_end=end, actor=staff)
        assert exc.value.code == "invalid_period"
    created = services.round_create(
        name="下期",
        fiscal_year=2026,
        period_start=datetime.date(2026, 10, 1),
        period_end=datetime.date(2027, 4, 1),
        actor=staff,
    )
    assert created.status == "open"
    assert created.policy.is_default


def test_round_create_needs_a_policy_and_staff(staff):
    kwargs = {"name": "R", "fiscal_year": 2026, "period_start": datetime.date(2026, 4, 1)}
    with pytest.raises(ApplicationError) as exc:
        services.round_create(period_end=datetime.date(2026, 7, 1), actor=staff, **kwargs)
    assert exc.value.code == "no_policy"
    FairSharePolicyFactory(is_default=True)
    _, user = org_with_admin()
    with pytest.raises(ApplicationError) as exc:
        services.round_create(period_end=datetime.date(2026, 7, 1), actor=user, **kwargs)
    assert exc.value.code == "forbidden"


def test_a_round_may_not_overlap_an_unpublished_one(staff):
    FairSharePolicyFactory(is_default=True)
    q1 = AllocationRoundFactory(name="第1四半期", status="computed")
    kwargs = {"fiscal_year": 2026, "actor": staff}
    with pytest.raises(ApplicationError) as exc:
        services.round_create(
            name="R", period_start=datetime.date(2026, 6, 1), period_end=datetime.date(2026, 9, 1), **kwargs
        )
    assert exc.value.code == "overlapping_round"
    assert "第1四半期" in exc.value.message
    # Adjacent periods do not overlap (ends are exclusive) ...
    services.round_create(
        name="Q2", period_start=datetime.date(2026, 7, 1), period_end=datetime.date(2026, 10, 1), **kwargs
    )
    # ... and once the first round is published, a supplementary round may share what is left.
    q1.status = "published"
    q1.save()
    supplementary = services.round_create(
        name="追加", period_start=datetime.date(2026, 5, 1), period_end=datetime.date(2026, 7, 1), **kwargs
    )
    assert supplementary.status == "open"


# --- refused transitions -------------------------------------------------------------------------


def test_every_refused_transition(allocation_round, staff, pools):
    org, user = org_with_admin()
    submit(allocation_round, org, user, 100)
    rid = allocation_round.pk

    def refused(fn, **kwargs):
        with pytest.raises(ApplicationError) as exc:
            fn(round_id=rid, actor=staff, **kwargs)
        assert exc.value.code == "bad_transition"

    # open
    refused(services.round_reopen)
    refused(services.round_compute)
    refused(services.round_compute_enqueue)
    refused(services.weights_compute)
    refused(services.round_publish)
    # closed
    services.round_close(round_id=rid, actor=staff)
    refused(services.round_close)
    refused(services.round_publish)
    services.round_reopen(round_id=rid, actor=staff)
    services.round_close(round_id=rid, actor=staff)
    # computed
    services.round_compute(round_id=rid, actor=staff)
    refused(services.round_close)
    refused(services.round_reopen)
    services.round_compute(round_id=rid, actor=staff)  # recomputing is allowed
    # published
    services.round_publish(round_id=rid, actor=staff)
    for fn in (services.round_close, services.round_reopen, services.round_compute, services.round_publish):
        refused(fn)
    result = RoundResult.objects.get(round_id=rid)
    with pytest.raises(ApplicationError) as exc:
        services.result_adjust(result_id=result.pk, amount=1, reason="late", actor=staff)
    assert exc.value.code == "bad_transition"


def test_round_steps_are_for_staff_only(allocation_round, pools):
    _, user = org_with_admin()
    for fn in (
        services.round_close,
        services.round_compute,
        services.round_publish,
        services.weights_compute,
    ):
        with pytest.raises(ApplicationError) as exc:
            fn(round_id=allocation_round.pk, actor=user)
        assert exc.value.code == "forbidden"
    allocation_round.refresh_from_db()
    assert allocation_round.status == "open"


def test_adjusting_needs_a_computed_round(allocation_round, staff, pools):
    org, user = org_with_admin()
    submit(allocation_round, org, user, 100)
    close_and_compute(allocation_round, staff)
    result = RoundResult.objects.get(round=allocation_round)
    services.round_publish(round_id=allocation_round.pk, actor=staff)
    with pytest.raises(ApplicationError):
        services.result_adjust(result_id=result.pk, amount=50, reason="x", actor=staff)


# --- requests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_file_requests(allocation_round, pools, role):
    org, user = org_with_admin(role=role)
    request = submit(allocation_round, org, user, 100)
    assert request.created_by == user


@pytest.mark.parametrize("role", ["member", "billing", "technical"])
def test_other_roles_cannot_file_requests(allocation_round, pools, role):
    org, user = org_with_admin(role=role)
    with pytest.raises(ApplicationError) as exc:
        submit(allocation_round, org, user, 100)
    assert exc.value.code == "forbidden"


def test_an_admin_of_another_org_cannot_file_update_or_withdraw(allocation_round, pools):
    org, user = org_with_admin()
    _, outsider = org_with_admin()
    with pytest.raises(ApplicationError):
        submit(allocation_round, org, outsider, 100)
    request = submit(allocation_round, org, user, 100)
    with pytest.raises(ApplicationError):
        services.request_update(request_id=request.pk, demand_gpu_hours=5, justification=JUST, actor=outsider)
    with pytest.raises(ApplicationError):
        services.request_withdraw(request_id=request.pk, actor=outsider)
    request.refresh_from_db()
    assert request.demand_gpu_hours == 100


def test_requests_change_only_while_the_round_is_open(allocation_round, staff, pools):
    org, user = org_with_admin()
    other, other_user = org_with_admin()
    request = submit(allocation_round, org, user, 100)
    request = services.request_update(
        request_id=request.pk,
        demand_gpu_hours=300,
        justification="更新",
        eligible_pool_ids=[pools["osaka"].pk],
        actor=user,
    )
    assert request.demand_gpu_hours == 300
    assert list(request.eligible_pools.all()) == [pools["osaka"]]
    services.round_close(round_id=allocation_round.pk, actor=staff)
    for call in (
        lambda: submit(allocation_round, other, other_user, 100),
        lambda: services.request_update(
            request_id=request.pk, demand_gpu_hours=5, justification=JUST, actor=user
        ),
        lambda: services.request_withdraw(request_id=request.pk, actor=user),
    ):
        with pytest.raises(ApplicationError) as exc:
            call()
        assert exc.value.code == "bad_transition"
    services.round_reopen(round_id=allocation_round.pk, actor=staff)
    services.request_withdraw(request_id=request.pk, actor=user)
    assert not AllocationRequest.objects.exists()
    assert AuditEvent.objects.filter(action="allocation_request.withdrawn").count() == 1
    assert AuditEvent.objects.filter(action="allocation_request.updated").count() == 1


def test_bad_requests_are_refused(allocation_round, pools):
    org, user = org_with_admin()
    for demand in (0, -5, 1.5, "100", True):
        with pytest.raises(ApplicationError):
            submit(allocation_round, org, user, demand)
    with pytest.raises(ApplicationError) as exc:
        submit(allocation_round, org, user, 100, eligible_pool_ids=[pools["tokyo"].pk])
    assert exc.value.code == "invalid_pools"
    with pytest.raises(ApplicationError) as exc:
        submit(allocation_round, org, user, 100, gpu_class="MI300X")
    assert exc.value.code == "unknown_class"
    with pytest.raises(ApplicationError):
        submit(allocation_round, org, user, 100, floor_gpu_hours=101)
    with pytest.raises(ApplicationError):
        services.request_submit(
            round_id=allocation_round.pk,
            organization=org,
            gpu_class="H200",
            demand_gpu_hours=100,
            justification="  ",
            actor=user,
        )
    submit(allocation_round, org, user, 100)
    with pytest.raises(ApplicationError) as exc:
        submit(allocation_round, org, user, 200)
    assert exc.value.code == "duplicate"
    assert AllocationRequest.objects.count() == 1


def test_a_suspended_member_cannot_request(allocation_round, pools):
    org, user = org_with_admin(membership__status="suspended")
    with pytest.raises(ApplicationError) as exc:
        submit(allocation_round, org, user, 100)
    assert exc.value.code == "membership_inactive"


# --- weights -------------------------------------------------------------------------------------


def test_weights_are_tier_weight_times_kind_factor_with_their_derivation(staff, pools):
    policy = FairSharePolicyFactory(
        tier_weights={"founding": 3, "regular": 1, "associate": 0.5, "academic": 1},
        kind_factors={"enterprise": 1, "startup": 1.5, "academic": 2, "public_body": 1},
    )
    allocation_round = AllocationRoundFactory(policy=policy)
    founding, founding_admin = org_with_admin(membership__tier="founding")
    startup, startup_admin = org_with_admin(kind="startup", membership__tier="associate")
    submit(allocation_round, founding, founding_admin, 100)
    submit(allocation_round, startup, startup_admin, 100)
    services.round_close(round_id=allocation_round.pk, actor=staff)
    rows = {w.organization_id: w for w in services.weights_compute(round_id=allocation_round.pk, actor=staff)}
    assert rows[founding.pk].weight == Decimal("3")
    assert rows[startup.pk].weight == Decimal("0.75")
    derivation = rows[startup.pk].derivation
    assert derivation["tier"] == "associate"
    assert derivation["tier_weight"] == 0.5
    assert derivation["kind"] == "startup"
    assert derivation["kind_factor"] == 1.5
    assert derivation["usage"]["basis"] == "no_history"
    assert derivation["usage"]["term"] == 1
    assert AuditEvent.objects.filter(action="round.weights_computed").exists()


def _history(org, used_hours, granted="100.00"):
    """A grant in the autumn of FY2025 and the usage reported under it."""
    period = PoolPeriodFactory(
        pool__code=f"past-{org.slug}",
        starts_on=datetime.date(2025, 10, 1),
        ends_on=datetime.date(2026, 1, 1),
    )
    grant = QuotaGrantFactory(organization=org, period=period, gpu_hours=granted)
    if used_hours:
        at = timezone.make_aware(datetime.datetime(2025, 12, 1, 12))
        UsageRecordFactory(
            grant=grant, gpu_hours=used_hours, started_at=at, ended_at=at + datetime.timedelta(hours=1)
        )


def test_usage_decay_lowers_the_weight_of_a_heavy_past_user(staff, pools):
    allocation_round = AllocationRoundFactory(policy=FairSharePolicyFactory(decay_half_life_days=90))
    heavy, heavy_admin = org_with_admin()
    light, light_admin = org_with_admin()
    new, new_admin = org_with_admin()
    _history(heavy, "300")  # used three times its grant
    _history(light, "50")  # used half of it
    for org, user in ((heavy, heavy_admin), (light, light_admin), (new, new_admin)):
        submit(allocation_round, org, user, 1000)
    close_and_compute(allocation_round, staff)
    weights = {w.organization_id: w for w in RoundWeight.objects.filter(round=allocation_round)}
    usage = weights[heavy.pk].derivation["usage"]
    assert usage["basis"] == "decayed"
    assert usage["decayed_usage"] > 3 * usage["decayed_entitlement"] * 0.9
    assert weights[heavy.pk].weight < Decimal("0.3")
    assert weights[heavy.pk].weight >= Decimal("0.1")
    assert weights[light.pk].weight == Decimal("1")
    assert weights[new.pk].weight == Decimal("1")
    totals = final_by_org(allocation_round)
    assert totals[(heavy.slug, "H200")] < totals[(light.slug, "H200")] - 100
    assert abs(totals[(light.slug, "H200")] - totals[(new.slug, "H200")]) <= 1  # whole GPU-hours


def test_decay_strength_zero_disables_the_usage_term(staff, pools):
    allocation_round = AllocationRoundFactory(policy=FairSharePolicyFactory(decay_strength="0"))
    heavy, heavy_admin = org_with_admin()
    _history(heavy, "300")
    submit(allocation_round, heavy, heavy_admin, 100)
    close_and_compute(allocation_round, staff)
    weight = RoundWeight.objects.get(round=allocation_round, organization=heavy)
    assert weight.weight == Decimal("1")
    assert weight.derivation["usage"]["basis"] == "disabled"


# --- capacity ------------------------------------------------------------------------------------


def test_awards_draw_on_the_reserve_first_and_other_grants_reduce_the_capacity(staff, pools):
    """capacity = period - max(reserve share * period, awards) - other live grants."""
    allocation_round = AllocationRoundFactory(policy=FairSharePolicyFactory(award_reserve_share="0.25"))
    awardee, member = OrganizationFactory(), OrganizationFactory()
    # hokkaido (800, reserve 200): an award of 100 fits in the reserve; a manual grant of 50 does not.
    QuotaGrantFactory(
        organization=awardee, period=pools["hokkaido"].periods.get(), gpu_hours="100.00", source="award"
    )
    QuotaGrantFactory(
        organization=member, period=pools["hokkaido"].periods.get(), gpu_hours="50.00", source="manual"
    )
    # osaka (400, reserve 100): awards of 160 exceed the reserve, so the round loses 160.
    QuotaGrantFactory(
        organization=awardee, period=pools["osaka"].periods.get(), gpu_hours="160.00", source="award"
    )
    # A revoked award counts for nothing.
    QuotaGrantFactory(
        organization=awardee,
        period=pools["tokyo"].periods.get(),
        gpu_hours="300.00",
        source="award",
        state=QuotaGrant.State.REVOKED,
    )
    org, user = org_with_admin()
    submit(allocation_round, org, user, 5000)
    close_and_compute(allocation_round, staff)
    capacities = {rp.pool.code: rp.capacity for rp in RoundPool.objects.filter(round=allocation_round)}
    assert capacities == {"hokkaido-h200": 800 - 200 - 50, "osaka-h200": 400 - 160, "tokyo-b200": 300 - 75}
    assert final_by_org(allocation_round) == {(org.slug, "H200"): 550 + 240}
    row = RoundPool.objects.get(round=allocation_round, pool=pools["hokkaido"])
    assert row.derivation["awarded"] == "100.00"
    assert row.derivation["reserved_for_awards"] == "200.00"
    assert row.derivation["granted_by_others"] == "50.00"


def test_a_pool_without_a_period_covering_the_round_takes_no_part(staff, pools):
    PoolPeriodFactory(
        pool__code="late-h200", starts_on=datetime.date(2026, 5, 1), ends_on=datetime.date(2026, 8, 1)
    )
    allocation_round = AllocationRoundFactory()
    org, user = org_with_admin()
    submit(allocation_round, org, user, 100)
    close_and_compute(allocation_round, staff)
    codes = set(RoundPool.objects.filter(round=allocation_round).values_list("pool__code", flat=True))
    assert codes == {"hokkaido-h200", "osaka-h200", "tokyo-b200"}


def test_the_per_org_cap_limits_the_demand(staff, pools):
    allocation_round = AllocationRoundFactory(policy=FairSharePolicyFactory(class_caps={"H200": 250}))
    org, user = org_with_admin()
    submit(allocation_round, org, user, 1000)
    close_and_compute(allocation_round, staff)
    assert final_by_org(allocation_round) == {(org.slug, "H200"): 250}
    assert set(RoundResult.objects.values_list("stopped_reason", flat=True)) == {"demand_met"}


def test_engine_refusals_become_application_errors(allocation_round, staff, pools):
    a, a_admin = org_with_admin(slug="a-lab")
    b, b_admin = org_with_admin(slug="b-lab")
    osaka = [pools["osaka"].pk]
    submit(allocation_round, a, a_admin, 500, eligible_pool_ids=osaka, floor_gpu_hours=300)
    submit(allocation_round, b, b_admin, 500, eligible_pool_ids=osaka, floor_gpu_hours=300)
    services.round_close(round_id=allocation_round.pk, actor=staff)
    with pytest.raises(ApplicationError) as exc:
        services.round_compute(round_id=allocation_round.pk, actor=staff)
    assert exc.value.code == "engine_refused"
    assert "a-lab, b-lab" in exc.value.message
    assert "osaka-h200" in exc.value.message
    allocation_round.refresh_from_db()
    assert allocation_round.status == "closed"
    assert not RoundResult.objects.exists()


def test_a_class_without_pools_in_the_round_is_refused(allocation_round, staff, pools):
    org, user = org_with_admin()
    submit(allocation_round, org, user, 100, gpu_class="B200")
    pools["tokyo"].periods.update(ends_on=datetime.date(2026, 6, 1))
    services.round_close(round_id=allocation_round.pk, actor=staff)
    with pytest.raises(ApplicationError) as exc:
        services.round_compute(round_id=allocation_round.pk, actor=staff)
    assert exc.value.code == "no_pool"


# --- the compute task ----------------------------------------------------------------------------


def test_compute_is_enqueued_on_commit_and_tracked(
    allocation_round, staff, pools, django_capture_on_commit_callbacks
):
    org, user = org_with_admin()
    submit(allocation_round, org, user, 100)
    services.round_close(round_id=allocation_round.pk, actor=staff)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.round_compute_enqueue(round_id=allocation_round.pk, actor=staff)
    assert len(callbacks) == 1
    allocation_round.refresh_from_db()
    assert allocation_round.task_id
    assert allocation_round.status == "computed"
    assert allocation_round.progress == 100
    assert AuditEvent.objects.filter(action="round.compute_requested").exists()


def test_a_refused_compute_task_records_the_error(
    allocation_round, staff, pools, django_capture_on_commit_callbacks
):
    org, user = org_with_admin()
    submit(allocation_round, org, user, 500, eligible_pool_ids=[pools["osaka"].pk], floor_gpu_hours=450)
    services.round_close(round_id=allocation_round.pk, actor=staff)
    with django_capture_on_commit_callbacks(execute=True):
        services.round_compute_enqueue(round_id=allocation_round.pk, actor=staff)
    allocation_round.refresh_from_db()
    assert allocation_round.status == "closed"
    assert "osaka-h200" in allocation_round.last_error
    assert allocation_round.progress == 0


# --- adjusting and publishing --------------------------------------------------------------------


def test_adjusting_needs_a_reason_and_stays_within_the_pool_capacity(allocation_round, staff, pools):
    a, a_admin = org_with_admin(slug="a-lab")
    b, b_admin = org_with_admin(slug="b-lab")
    osaka = [pools["osaka"].pk]
    submit(allocation_round, a, a_admin, 500, eligible_pool_ids=osaka)
    submit(allocation_round, b, b_admin, 500, eligible_pool_ids=osaka)
    close_and_compute(allocation_round, staff)
    row_a = RoundResult.objects.get(round=allocation_round, organization=a)
    row_b = RoundResult.objects.get(round=allocation_round, organization=b)
    assert row_a.amount == row_b.amount == 200
    with pytest.raises(ApplicationError):
        services.result_adjust(result_id=row_a.pk, amount=150, reason="  ", actor=staff)
    with pytest.raises(ApplicationError) as exc:
        services.result_adjust(result_id=row_a.pk, amount=201, reason="研究計画の優先度", actor=staff)
    assert exc.value.code == "capacity_exceeded"
    with pytest.raises(ApplicationError):
        services.result_adjust(result_id=row_a.pk, amount=-1, reason="x", actor=staff)
    with pytest.raises(ApplicationError) as exc:
        services.result_adjust(result_id=row_a.pk, amount=150, reason="x", actor=a_admin)
    assert exc.value.code == "forbidden"

    services.result_adjust(result_id=row_b.pk, amount=150, reason="需要の見直し", actor=staff)
    services.result_adjust(result_id=row_a.pk, amount=250, reason="研究計画の優先度", actor=staff)
    row_a.refresh_from_db()
    assert (row_a.amount, row_a.final_amount, row_a.adjusted_by) == (200, 250, staff)
    assert AuditEvent.objects.filter(action="round_result.adjusted").count() == 2
    grants = services.round_publish(round_id=allocation_round.pk, actor=staff)
    assert sorted(int(g.gpu_hours) for g in grants) == [150, 250]


def test_an_adjustment_never_gives_more_than_was_requested(allocation_round, staff, pools):
    org, user = org_with_admin(slug="a-lab")
    submit(allocation_round, org, user, 900)  # hokkaido 800 + osaka 100
    close_and_compute(allocation_round, staff)
    rows = {r.pool.code: r for r in RoundResult.objects.filter(round=allocation_round).select_related("pool")}
    assert {code: r.amount for code, r in rows.items()} == {"hokkaido-h200": 800, "osaka-h200": 100}
    with pytest.raises(ApplicationError) as exc:
        services.result_adjust(result_id=rows["osaka-h200"].pk, amount=101, reason="増枠", actor=staff)
    assert exc.value.code == "above_demand"
    assert "900" in exc.value.message
    services.result_adjust(result_id=rows["hokkaido-h200"].pk, amount=700, reason="移設", actor=staff)
    services.result_adjust(result_id=rows["osaka-h200"].pk, amount=200, reason="移設", actor=staff)
    assert final_by_org(allocation_round) == {("a-lab", "H200"): 900}


def test_requests_of_members_that_lapsed_are_left_out_and_shown(allocation_round, staff, pools):
    a, a_admin = org_with_admin(slug="a-lab")
    b, b_admin = org_with_admin(slug="b-lab")
    submit(allocation_round, a, a_admin, 700)
    submit(allocation_round, b, b_admin, 700)
    Membership.objects.filter(organization=b).update(status="lapsed")
    close_and_compute(allocation_round, staff)
    allocation_round.refresh_from_db()
    assert final_by_org(allocation_round) == {("a-lab", "H200"): 700}
    assert allocation_round.excluded_requests == [
        {
            "organization": "b-lab",
            "gpu_class": "H200",
            "demand": 700,
            "reason": "membership_inactive",
            "membership_status": "lapsed",
        }
    ]
    event = AuditEvent.objects.filter(action="round.computed").latest("pk")
    assert event.after["summary"]["excluded"][0]["organization"] == "b-lab"
    # Publishing works: the lapsed member's request was never part of the result.
    assert len(services.round_publish(round_id=allocation_round.pk, actor=staff)) == 1


def test_an_adjustment_to_zero_grants_nothing(allocation_round, staff, pools):
    org, user = org_with_admin()
    submit(allocation_round, org, user, 100)
    close_and_compute(allocation_round, staff)
    row = RoundResult.objects.get(round=allocation_round)
    services.result_adjust(result_id=row.pk, amount=0, reason="辞退", actor=staff)
    assert services.round_publish(round_id=allocation_round.pk, actor=staff) == []


def test_publishing_is_all_or_nothing(allocation_round, staff, pools):
    orgs = []
    for slug in ("a-lab", "b-lab", "c-lab"):
        org, user = org_with_admin(slug=slug)
        submit(allocation_round, org, user, 300)
        orgs.append(org)
    close_and_compute(allocation_round, staff)
    Membership.objects.filter(organization=orgs[2]).update(status="suspended")
    events_before = AuditEvent.objects.count()
    with pytest.raises(ApplicationError) as exc:
        services.round_publish(round_id=allocation_round.pk, actor=staff)
    assert exc.value.code == "publish_refused"
    assert "c-lab" in exc.value.message
    assert not QuotaGrant.objects.exists()
    allocation_round.refresh_from_db()
    assert allocation_round.status == "computed"
    assert allocation_round.published_at is None
    assert AuditEvent.objects.count() == events_before


def test_publishing_is_refused_when_capacity_was_granted_meanwhile(allocation_round, staff, pools):
    org, user = org_with_admin()
    submit(allocation_round, org, user, 2000)
    close_and_compute(allocation_round, staff)
    QuotaGrantFactory(period=pools["osaka"].periods.get(), gpu_hours="10.00", source="manual")
    with pytest.raises(ApplicationError):
        services.round_publish(round_id=allocation_round.pk, actor=staff)
    assert not QuotaGrant.objects.filter(source="round").exists()
