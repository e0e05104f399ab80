"""The push path against the real provider simulator over HTTP: delivery, retries, idempotency,
permanent failures, the sweeper's view, reconciliation and usage pulls."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.governance.services import audit_chain_verify
from apps.providers import services
from apps.providers.models import DeliveryAttempt, GrantDrift, GrantOutbox, QuotaGrant, UsageRecord
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory

pytestmark = pytest.mark.django_db
S = QuotaGrant.State


@pytest.fixture
def provider(simulator, settings):
    settings.PROVIDER_SECRETS = {"sakura": simulator.secret}
    settings.PROVIDER_HTTP_TIMEOUT = 0.6
    period = PoolPeriodFactory()
    provider = period.pool.provider
    provider.api_base_url = simulator.base_url
    provider.api_key_id = simulator.key_id
    provider.save()
    provider.test_period = period
    return provider


def _grant(provider, hours="100"):
    return services.grant_create(
        organization=OrganizationFactory(),
        period_id=provider.test_period.pk,
        gpu_hours=hours,
        actor=StaffFactory(),
    )


def _deliver_pending(grant) -> list[str]:
    """Deliver every due outbox row of the grant now (what the task does after commit)."""
    results = []
    for row in GrantOutbox.objects.filter(grant=grant, state="pending").order_by("pk"):
        GrantOutbox.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
        results.append(services.outbox_deliver(outbox_id=row.pk).result)
    return results


def _at_provider(simulator, grant):
    return simulator.state()["quotas"].get(str(grant.public_id))


def _effects(simulator, grant):
    prefix = f"{grant.public_id}:"
    return {k[len(prefix) :]: v for k, v in simulator.state()["effects"].items() if k.startswith(prefix)}


def test_a_grant_reaches_its_provider_and_becomes_active(provider, simulator):
    grant = _grant(provider, "250")
    assert _deliver_pending(grant) == ["done"]
    grant.refresh_from_db()
    assert grant.state == S.ACTIVE and grant.applied_version == 1
    quota = _at_provider(simulator, grant)
    assert quota["version"] == 1 and quota["status"] == "active" and quota["gpu_hours"] == "250.00"
    assert quota["pool"] == provider.test_period.pool.code
    assert DeliveryAttempt.objects.filter(provider=provider, ok=True).count() == 1
    assert audit_chain_verify().ok


def test_changes_and_revocation_follow_with_new_versions(provider, simulator):
    grant = _grant(provider)
    _deliver_pending(grant)
    services.grant_change(grant_id=grant.pk, actor=StaffFactory(), gpu_hours="300")
    assert _deliver_pending(grant) == ["done"]
    assert _at_provider(simulator, grant)["version"] == 2
    assert _at_provider(simulator, grant)["gpu_hours"] == "300.00"
    services.grant_revoke(grant_id=grant.pk, actor=StaffFactory())
    assert _deliver_pending(grant) == ["done"]
    grant.refresh_from_db()
    assert grant.state == S.REVOKED and _at_provider(simulator, grant)["status"] == "revoked"
    assert _effects(simulator, grant) == {"1:apply": 1, "2:apply": 1, "3:revoke": 1}


def test_delivering_the_same_version_twice_has_one_effect(provider, simulator):
    grant = _grant(provider)
    row = GrantOutbox.objects.get(grant=grant)
    services.outbox_deliver(outbox_id=row.pk)
    # The worker crashed after sending: the row is sent again with the same key.
    GrantOutbox.objects.filter(pk=row.pk).update(state="pending", next_attempt_at=timezone.now())
    assert services.outbox_deliver(outbox_id=row.pk).result == "done"
    assert _effects(simulator, grant) == {"1:apply": 1}


@pytest.mark.parametrize("fault", ["500", "503", "drop", "timeout"])
def test_transient_faults_are_retried_later_with_backoff(provider, simulator, fault):
    grant = _grant(provider)
    simulator.configure(fail_rate=1, faults=[fault])
    row = GrantOutbox.objects.get(grant=grant)
    outcome = services.outbox_deliver(outbox_id=row.pk)
    assert outcome.result == "retry" and outcome.retry_in > 0
    row.refresh_from_db()
    grant.refresh_from_db()
    assert row.state == "pending" and row.attempts == 1 and row.next_attempt_at > timezone.now()
    assert grant.state == S.SENT and grant.last_error
    # Not due yet: a second worker or the sweeper leaves it alone.
    assert services.outbox_deliver(outbox_id=row.pk).result == "skipped"
    assert row.pk not in services.outbox_due_ids()
    simulator.configure(fail_rate=0)
    assert _deliver_pending(grant) == ["done"]
    grant.refresh_from_db()
    assert grant.state == S.ACTIVE and grant.last_error == ""


def test_applied_but_answer_lost_is_retried_without_a_second_effect(provider, simulator):
    grant = _grant(provider)
    simulator.configure(fail_rate=1, faults=["lost"])
    assert _deliver_pending(grant) == ["retry"]
    assert _effects(simulator, grant) == {"1:apply": 1}  # the provider did apply it
    simulator.configure(fail_rate=0)
    assert _deliver_pending(grant) == ["done"]
    assert _effects(simulator, grant) == {"1:apply": 1}
    grant.refresh_from_db()
    assert grant.state == S.ACTIVE


def test_a_permanent_error_fails_the_grant_and_resend_recovers_it(provider, simulator, settings):
    settings.PROVIDER_SECRETS = {"sakura": "wrong-secret"}
    grant = _grant(provider)
    assert _deliver_pending(grant) == ["failed"]
    grant.refresh_from_db()
    assert grant.state == S.FAILED and "401" in grant.last_error
    assert GrantOutbox.objects.get(grant=grant).state == "failed"
    settings.PROVIDER_SECRETS = {"sakura": simulator.secret}
    services.grant_resend(grant_id=grant.pk, actor=StaffFactory())
    assert _deliver_pending(grant) == ["done"]
    grant.refresh_from_db()
    assert grant.state == S.ACTIVE


def test_an_older_version_arriving_late_is_superseded_not_applied(provider, simulator):
    grant = _grant(provider)
    v1 = GrantOutbox.objects.get(grant=grant)
    GrantOutbox.objects.filter(pk=v1.pk).update(
        state="in_flight", claimed_until=timezone.now() + timedelta(minutes=1)
    )
    services.grant_change(grant_id=grant.pk, actor=StaffFactory(), gpu_hours="120")
    assert _deliver_pending(grant) == ["done"]  # v2 first
    GrantOutbox.objects.filter(pk=v1.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert v1.pk in services.outbox_due_ids()  # the sweeper would pick up the stale claim
    assert services.outbox_deliver(outbox_id=v1.pk).result == "done"
    v1.refresh_from_db()
    grant.refresh_from_db()
    assert v1.state == "superseded"
    assert grant.state == S.ACTIVE and grant.applied_version == 2
    assert _at_provider(simulator, grant)["version"] == 2
    assert _effects(simulator, grant) == {"2:apply": 1}


def test_reconcile_finds_missing_extra_and_different_quotas(provider, simulator):
    missing, different, fine = _grant(provider), _grant(provider), _grant(provider)
    for grant in (missing, different, fine):
        _deliver_pending(grant)
    simulator.forget_quota(str(missing.public_id))
    simulator.force_quota(str(different.public_id), version=1, status="active", gpu_hours="999.00", pool="x")
    simulator.force_quota(
        "7f000000-0000-4000-8000-000000000000", version=1, status="active", gpu_hours="5.00", pool="x"
    )
    report = services.provider_reconcile(provider_id=provider.pk)
    assert (report.checked, report.missing, report.extra, report.different) == (3, 1, 1, 1)
    drifts = {d.kind: d for d in GrantDrift.objects.filter(resolved_at__isnull=True)}
    assert drifts["missing"].grant == missing and drifts["different"].grant == different
    assert drifts["extra"].grant is None
    # Running it again does not duplicate open drifts.
    services.provider_reconcile(provider_id=provider.pk)
    assert GrantDrift.objects.filter(resolved_at__isnull=True).count() == 3

    staff = StaffFactory()
    services.drift_resend(drift_id=drifts["missing"].pk, actor=staff)
    _deliver_pending(missing)
    assert _at_provider(simulator, missing)["status"] == "active"
    services.drift_accept(drift_id=drifts["extra"].pk, actor=staff, note="provider test quota")
    report = services.provider_reconcile(provider_id=provider.pk)
    assert report.missing == 0 and report.different == 1
    assert audit_chain_verify().ok


def test_usage_is_pulled_from_the_cursor_without_duplicates(provider, simulator):
    grant = _grant(provider)
    _deliver_pending(grant)
    simulator.generate_usage(7)
    result = services.usage_pull(provider_id=provider.pk)
    assert result.accepted == 7
    assert services.usage_pull(provider_id=provider.pk).accepted == 0
    simulator.generate_usage(2)
    assert services.usage_pull(provider_id=provider.pk).accepted == 2
    assert UsageRecord.objects.filter(grant=grant).count() == 9
