"""Drift repair that repairs, against the real provider simulator over HTTP: resending makes the
provider hold the portal's state whatever it holds now (other hours, its own revocation, a version
the portal never sent); a 200 answer that says something else is not "applied"; an accepted
difference stays accepted until it changes; many differences are resent or accepted at once."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.governance.services import audit_chain_verify
from apps.providers import services
from apps.providers.models import GrantDrift, GrantOutbox, QuotaGrant
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory

pytestmark = pytest.mark.django_db
S = QuotaGrant.State
K = GrantDrift.Kind


@pytest.fixture
def provider(simulator, settings):
    settings.PROVIDER_SECRETS = {"sakura": simulator.secret}
    settings.PROVIDER_HTTP_TIMEOUT = 1.0
    period = PoolPeriodFactory()
    provider = period.pool.provider
    provider.api_base_url, provider.api_key_id = simulator.base_url, simulator.key_id
    provider.save()
    provider.test_period = period
    return provider


@pytest.fixture
def staff():
    return StaffFactory()


def _deliver(grant) -> list[str]:
    results = []
    for row in GrantOutbox.objects.filter(grant=grant, state="pending").order_by("pk"):
        GrantOutbox.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        results.append(services.outbox_deliver(outbox_id=row.pk).result)
    return results


def _active_grant(provider, hours="100"):
    grant = services.grant_create(
        organization=OrganizationFactory(),
        period_id=provider.test_period.pk,
        gpu_hours=hours,
        actor=StaffFactory(),
    )
    _deliver(grant)
    grant.refresh_from_db()
    assert grant.state == S.ACTIVE
    return grant


def _quota(simulator, grant):
    return simulator.state()["quotas"][str(grant.public_id)]


def _open(grant, kind):
    return GrantDrift.objects.get(grant=grant, kind=kind, resolved_at__isnull=True)


def _resend_and_deliver(drift, grant, staff):
    services.drift_resend(drift_id=drift.pk, actor=staff)
    assert _deliver(grant) == ["done"]
    grant.refresh_from_db()
    return grant


@pytest.mark.parametrize(
    ("their_side", "kind"),
    [
        ({"version": 1, "status": "active", "gpu_hours": "55.00"}, K.DIFFERENT),  # other hours, same version
        ({"version": 1, "status": "revoked"}, K.MISSING),  # revoked at the provider
        ({"version": 7, "status": "active", "gpu_hours": "100.00"}, K.DIFFERENT),  # a version we never sent
        ({"version": 9, "status": "revoked"}, K.MISSING),  # revoked there at a higher version
    ],
)
def test_resend_makes_the_provider_hold_the_portals_state(provider, simulator, staff, their_side, kind):
    grant = _active_grant(provider, "100")
    gid = str(grant.public_id)
    simulator.force_quota(gid, pool=grant.pool.code, **their_side)
    report = services.provider_reconcile(provider_id=provider.pk)
    assert getattr(report, kind) == 1
    grant = _resend_and_deliver(_open(grant, kind), grant, staff)
    quota = _quota(simulator, grant)
    assert grant.version == max(1, their_side["version"]) + 1 == grant.applied_version
    assert (quota["version"], quota["status"], quota["gpu_hours"]) == (grant.version, "active", "100.00")
    assert grant.state == S.ACTIVE
    # Repaired: the next reconciliation finds nothing, and the drift stays resolved as resent.
    report = services.provider_reconcile(provider_id=provider.pk)
    assert (report.missing, report.different, report.extra) == (0, 0, 0)
    assert not GrantDrift.objects.filter(resolved_at__isnull=True).exists()
    assert GrantDrift.objects.get(grant=grant).resolution == GrantDrift.Resolution.RESENT
    assert audit_chain_verify().ok


def test_resend_of_a_revoked_grant_revokes_it_above_the_providers_version(provider, simulator, staff):
    grant = _active_grant(provider)
    services.grant_revoke(grant_id=grant.pk, actor=staff)
    _deliver(grant)
    simulator.force_quota(str(grant.public_id), version=5, status="active", gpu_hours="100.00", pool="x")
    services.provider_reconcile(provider_id=provider.pk)
    grant = _resend_and_deliver(_open(grant, K.DIFFERENT), grant, staff)
    assert grant.state == S.REVOKED and grant.version == 6
    assert (_quota(simulator, grant)["status"], _quota(simulator, grant)["version"]) == ("revoked", 6)
    assert services.provider_reconcile(provider_id=provider.pk).different == 0


@pytest.mark.parametrize("operation", ["apply", "revoke"])
def test_a_200_answer_that_says_something_else_is_not_applied(provider, simulator, staff, operation):
    grant = _active_grant(provider, "100")
    simulator.configure(fail_rate=1, faults=["wrong"])  # 200 with what it holds; applies nothing
    if operation == "apply":
        services.grant_change(grant_id=grant.pk, actor=staff, gpu_hours="150")
    else:
        services.grant_revoke(grant_id=grant.pk, actor=staff)
    assert _deliver(grant) == ["failed"]
    grant.refresh_from_db()
    row = GrantOutbox.objects.get(grant=grant, version=2)
    assert row.state == "failed" and grant.state == S.FAILED and grant.applied_version == 1
    assert "does not hold what was sent" in grant.last_error
    assert _quota(simulator, grant)["version"] == 1  # really not applied
    simulator.configure(fail_rate=0)
    services.grant_resend(grant_id=grant.pk, actor=staff)
    assert _deliver(grant) == ["done"]
    grant.refresh_from_db()
    assert grant.state == (S.ACTIVE if operation == "apply" else S.REVOKED) and grant.version == 3
    assert _quota(simulator, grant)["status"] == ("active" if operation == "apply" else "revoked")


def test_a_conflict_with_a_version_the_portal_never_sent_fails_instead_of_superseding(
    provider, simulator, staff
):
    grant = _active_grant(provider)
    simulator.force_quota(str(grant.public_id), version=4, status="active", gpu_hours="100.00", pool="x")
    services.grant_change(grant_id=grant.pk, actor=staff, gpu_hours="120")  # v2 < 4: 409
    with translation.override("en"):
        assert _deliver(grant) == ["failed"]
    grant.refresh_from_db()
    assert grant.state == S.FAILED and "version 4" in grant.last_error
    services.grant_resend(grant_id=grant.pk, actor=staff, above_version=4)
    assert _deliver(grant) == ["done"]
    assert _quota(simulator, grant)["gpu_hours"] == "120.00"


def test_an_accepted_difference_stays_accepted_until_it_changes(provider, simulator, staff):
    grant = _active_grant(provider, "100")
    gid = str(grant.public_id)
    simulator.force_quota(gid, version=1, status="active", gpu_hours="80.00", pool="x")
    services.provider_reconcile(provider_id=provider.pk)
    services.drift_accept(drift_id=_open(grant, K.DIFFERENT).pk, actor=staff, note="agreed with the provider")
    for _ in range(2):
        report = services.provider_reconcile(provider_id=provider.pk)
        assert (report.different, report.accepted) == (0, 1)
        assert not GrantDrift.objects.filter(resolved_at__isnull=True).exists()
    # A new, different difference reopens it.
    simulator.force_quota(gid, version=1, status="active", gpu_hours="70.00", pool="x")
    assert services.provider_reconcile(provider_id=provider.pk).different == 1
    assert _open(grant, K.DIFFERENT).theirs["gpu_hours"] == "70.00"
    # So does a change on the portal's side of an accepted difference.
    services.drift_accept(drift_id=_open(grant, K.DIFFERENT).pk, actor=staff, note="fine too")
    assert services.provider_reconcile(provider_id=provider.pk).different == 0
    services.grant_change(grant_id=grant.pk, actor=staff, gpu_hours="90")
    assert _deliver(grant) == ["done"]
    simulator.force_quota(gid, version=1, status="active", gpu_hours="70.00", pool="x")  # as accepted
    assert services.provider_reconcile(provider_id=provider.pk).different == 1
    assert _open(grant, K.DIFFERENT).ours["gpu_hours"] == "90.00"


def test_many_differences_are_resent_or_accepted_at_once(provider, simulator, staff):
    grants = [_active_grant(provider, "100") for _ in range(4)]
    for grant in grants:
        simulator.force_quota(str(grant.public_id), version=3, status="active", gpu_hours="1.00", pool="x")
    simulator.force_quota("extra-quota-1", version=1, status="active", gpu_hours="5.00", pool="x")
    services.provider_reconcile(provider_id=provider.pk)
    drifts = [_open(g, K.DIFFERENT) for g in grants]
    extra = GrantDrift.objects.get(kind=K.EXTRA)

    result = services.drifts_resolve(
        drift_ids=[drifts[0].pk, drifts[1].pk, extra.pk], action="resend", actor=staff
    )
    assert sorted(result.done) == sorted([drifts[0].pk, drifts[1].pk])
    assert [pk for pk, _why in result.skipped] == [extra.pk]  # the portal has nothing to send for it
    for grant in grants[:2]:
        assert _deliver(grant) == ["done"]
        assert _quota(simulator, grant)["version"] == 4
    result = services.drifts_resolve(
        drift_ids=[drifts[2].pk, drifts[3].pk, extra.pk, drifts[0].pk],
        action="accept",
        actor=staff,
        note="ok",
    )
    assert len(result.done) == 3 and [pk for pk, _why in result.skipped] == [drifts[0].pk]  # already resolved
    assert AuditEvent.objects.filter(action="drift.accepted").count() == 3
    assert AuditEvent.objects.filter(action="drift.resent").count() == 2
    report = services.provider_reconcile(provider_id=provider.pk)
    assert (report.different, report.extra, report.accepted) == (0, 0, 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drift_ids": [1], "action": "delete"}, "resend or accept"),
        ({"drift_ids": [1], "action": "accept", "note": "  "}, "note"),
        ({"drift_ids": [], "action": "resend"}, "at least one"),
        ({"drift_ids": list(range(1, 502)), "action": "resend"}, "At most"),
    ],
)
def test_bulk_refusals_change_nothing(staff, kwargs, message):
    with translation.override("en"), pytest.raises(ApplicationError, match=message):
        services.drifts_resolve(actor=staff, **kwargs)
    assert not AuditEvent.objects.filter(action__startswith="drift.").exists()


def test_a_grant_with_two_differences_is_resent_once(provider, simulator, staff):
    grant = _active_grant(provider)
    now = timezone.now() - timedelta(minutes=1)
    first = GrantDrift.objects.create(
        provider=provider,
        grant=grant,
        grant_public_id=str(grant.public_id),
        kind=K.MISSING,
        theirs={"version": 2, "status": "revoked", "gpu_hours": ""},
    )
    second = GrantDrift.objects.create(
        provider=provider,
        grant=grant,
        grant_public_id=str(grant.public_id),
        kind=K.DIFFERENT,
        theirs={"version": 1, "status": "active", "gpu_hours": "1.00"},
    )
    GrantDrift.objects.filter(pk__in=[first.pk, second.pk]).update(detected_at=now)
    result = services.drifts_resolve(drift_ids=[first.pk, second.pk], action="resend", actor=staff)
    assert sorted(result.done) == sorted([first.pk, second.pk])
    grant.refresh_from_db()
    assert grant.version == 3  # above the provider's 2, once
    assert AuditEvent.objects.filter(action="grant.resent").count() == 1
