import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection, connections

from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.providers import services
from apps.providers.models import GrantOutbox, QuotaGrant
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory

S = QuotaGrant.State


@pytest.fixture
def period(db):
    return PoolPeriodFactory(capacity_gpu_hours="1000.00")


def _grant(period, hours="100", org=None, **kwargs):
    return services.grant_create(
        organization=org or OrganizationFactory(),
        period_id=period.pk,
        gpu_hours=hours,
        actor=StaffFactory(),
        **kwargs,
    )


@pytest.mark.django_db
def test_grant_and_its_outbox_row_are_written_together(period, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        grant = _grant(period, "250.5")
    assert grant.state == S.PENDING and grant.version == 1 and grant.gpu_hours == Decimal("250.50")
    row = GrantOutbox.objects.get(grant=grant)
    assert row.operation == "apply" and row.version == 1 and row.state == "pending"
    assert row.idempotency_key == f"{grant.public_id}:v1:apply"
    assert row.payload["gpu_hours"] == "250.50" and row.payload["pool"] == period.pool.code
    assert len(callbacks) == 1  # delivery is enqueued only after commit
    assert AuditEvent.objects.filter(action="grant.created", target_id=str(grant.pk)).exists()


@pytest.mark.django_db
def test_capacity_is_never_exceeded(period):
    _grant(period, "600")
    _grant(period, "400")
    with pytest.raises(ApplicationError) as exc:
        _grant(period, "0.01")
    assert exc.value.code == "capacity_exceeded"
    assert QuotaGrant.objects.count() == 2 and GrantOutbox.objects.count() == 2


@pytest.mark.django_db
def test_revoked_grants_free_their_capacity_but_revoking_ones_do_not(period):
    grant = _grant(period, "1000")
    services.grant_revoke(grant_id=grant.pk, actor=StaffFactory())
    with pytest.raises(ApplicationError):
        _grant(period, "1")
    QuotaGrant.objects.filter(pk=grant.pk).update(state=S.REVOKED)
    _grant(period, "1000")


@pytest.mark.django_db
def test_change_checks_capacity_without_counting_itself_and_bumps_the_version(period):
    grant = _grant(period, "900")
    grant = services.grant_change(grant_id=grant.pk, actor=StaffFactory(), gpu_hours="1000")
    assert grant.version == 2 and grant.gpu_hours == Decimal("1000.00")
    with pytest.raises(ApplicationError):
        services.grant_change(grant_id=grant.pk, actor=StaffFactory(), gpu_hours="1000.01")
    rows = list(GrantOutbox.objects.filter(grant=grant).order_by("version"))
    assert [(r.version, r.state) for r in rows] == [(1, "superseded"), (2, "pending")]


@pytest.mark.django_db
def test_revoke_writes_a_revoke_message_and_refuses_twice(period):
    grant = _grant(period)
    grant = services.grant_revoke(grant_id=grant.pk, actor=StaffFactory(), reason="契約終了")
    assert grant.state == S.REVOKING and grant.version == 2
    assert GrantOutbox.objects.filter(grant=grant, operation="revoke", version=2).exists()
    with pytest.raises(ApplicationError):
        services.grant_revoke(grant_id=grant.pk, actor=StaffFactory())
    with pytest.raises(ApplicationError):
        services.grant_change(grant_id=grant.pk, actor=StaffFactory(), gpu_hours="5")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hours", "valid_from", "valid_until"),
    [
        ("0", None, None),
        ("-5", None, None),
        ("abc", None, None),
        ("10", date(2026, 3, 31), None),
        ("10", None, date(2026, 7, 2)),
        ("10", date(2026, 5, 1), date(2026, 5, 1)),
    ],
)
def test_bad_grants_are_refused_and_nothing_is_written(period, hours, valid_from, valid_until):
    with pytest.raises(ApplicationError):
        _grant(period, hours, valid_from=valid_from, valid_until=valid_until)
    assert not QuotaGrant.objects.exists() and not GrantOutbox.objects.exists()


@pytest.mark.django_db
def test_suspended_members_get_no_quota(period):
    org = OrganizationFactory(membership__status="suspended")
    with pytest.raises(ApplicationError) as exc:
        _grant(period, org=org)
    assert exc.value.code == "membership_inactive"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the race is proven on PostgreSQL")
def test_concurrent_grants_never_exceed_capacity():
    """40 threads, each on its own connection, ask for 100 h of a 1,000 h period at once."""
    period = PoolPeriodFactory(capacity_gpu_hours="1000.00")
    orgs = [OrganizationFactory() for _ in range(40)]
    staff = StaffFactory()
    barrier = threading.Barrier(len(orgs))
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(org):
        try:
            barrier.wait()
            services.grant_create(organization=org, period_id=period.pk, gpu_hours="100", actor=staff)
            result = "granted"
        except ApplicationError as exc:
            result = exc.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(org,)) for org in orgs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("granted") == 10
    assert outcomes.count("capacity_exceeded") == 30
    total = sum(g.gpu_hours for g in QuotaGrant.objects.filter(period=period))
    assert total == Decimal("1000.00")
    assert GrantOutbox.objects.filter(grant__period=period).count() == 10


# --- many grants at once (a round's publication, an award) ---------------------------------------


@pytest.mark.django_db
def test_grants_create_checks_the_new_grants_together_and_writes_nothing_on_refusal(
    period, django_capture_on_commit_callbacks
):
    other = PoolPeriodFactory(capacity_gpu_hours="300.00")
    _grant(period, "500")
    orgs = [OrganizationFactory() for _ in range(3)]
    specs = [
        services.GrantSpec(orgs[0], period.pk, "300"),
        services.GrantSpec(orgs[1], other.pk, "300"),
        services.GrantSpec(orgs[2], period.pk, "200.01"),  # 500 + 300 + 200.01 > 1000
    ]
    events = AuditEvent.objects.count()
    with pytest.raises(ApplicationError) as exc:
        services.grants_create(specs=specs, actor=StaffFactory(), source="round")
    assert exc.value.code == "capacity_exceeded" and exc.value.extra["index"] == 2
    assert QuotaGrant.objects.count() == 1 and GrantOutbox.objects.count() == 1
    assert AuditEvent.objects.count() == events

    specs[2] = services.GrantSpec(orgs[2], period.pk, "200")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        grants = services.grants_create(
            specs=specs, actor=StaffFactory(), source="round", source_ref="round-7"
        )
    assert [g.gpu_hours for g in grants] == [Decimal("300.00"), Decimal("300.00"), Decimal("200.00")]
    assert {g.source_ref for g in grants} == {"round-7"}
    rows = GrantOutbox.objects.filter(grant__in=grants).order_by("grant_id")
    assert [r.idempotency_key for r in rows] == [f"{g.public_id}:v1:apply" for g in grants]
    assert rows[1].payload["pool"] == other.pool.code
    assert len(callbacks) == 1  # one after-commit callback enqueues every row
    created = AuditEvent.objects.filter(action="grant.created").order_by("pk")
    assert [e.target_id for e in created][-3:] == [str(g.pk) for g in grants]
    from apps.governance.services import audit_chain_verify

    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_grants_create_names_the_refused_spec(period):
    suspended = OrganizationFactory(membership__status="suspended")
    specs = [
        services.GrantSpec(OrganizationFactory(), period.pk, "1"),
        services.GrantSpec(suspended, period.pk, "1"),
    ]
    with pytest.raises(ApplicationError) as exc:
        services.grants_create(specs=specs, actor=StaffFactory(), source="round")
    assert exc.value.code == "membership_inactive" and exc.value.extra["index"] == 1
    with pytest.raises(ApplicationError) as exc:
        services.grants_create(
            specs=[services.GrantSpec(OrganizationFactory(), period.pk, "x")],
            actor=StaffFactory(),
            source="round",
        )
    assert exc.value.extra["index"] == 0
    assert not QuotaGrant.objects.exists()


@pytest.mark.django_db
def test_awards_may_go_to_organizations_without_membership_but_not_to_suspended_ones(period):
    outsider = OrganizationFactory(membership=False)
    with pytest.raises(ApplicationError):
        _grant(period, org=outsider)
    grant = _grant(period, org=outsider, source=QuotaGrant.Source.AWARD, source_ref="award-1")
    assert grant.source == "award"
    with pytest.raises(ApplicationError) as exc:
        _grant(
            period, org=OrganizationFactory(membership__status="suspended"), source=QuotaGrant.Source.AWARD
        )
    assert exc.value.code == "membership_inactive"
