"""A provider that answers one byte at a time (the simulator's "drip" fault) cannot hold a delivery
past its deadline, and one outbox row is never held by two workers: the claim outlasts the
deadline, and only the holder of the current claim token records an outcome. Real HTTP against the
simulator, real threads on PostgreSQL."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.providers import services
from apps.providers.adapters import ProviderError, get_adapter
from apps.providers.models import GrantOutbox, QuotaGrant
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory

S = QuotaGrant.State


@pytest.fixture
def provider(simulator, settings):
    settings.PROVIDER_SECRETS = {"sakura": simulator.secret}
    settings.PROVIDER_HTTP_TIMEOUT = 1.0  # each byte comes well within it
    settings.PROVIDER_HTTP_DEADLINE = 2.0
    settings.OUTBOX_CLAIM_SECONDS = 1.0  # shorter than the deadline: claim_seconds() must not be
    period = PoolPeriodFactory()
    provider = period.pool.provider
    provider.api_base_url, provider.api_key_id = simulator.base_url, simulator.key_id
    provider.save()
    provider.test_period = period
    return provider


def _grant(provider):
    return services.grant_create(
        organization=OrganizationFactory(),
        period_id=provider.test_period.pk,
        gpu_hours="100",
        actor=StaffFactory(),
    )


@pytest.mark.django_db
def test_a_dripping_answer_is_cut_at_the_deadline_not_at_each_read(provider, simulator):
    grant = _grant(provider)
    payload = GrantOutbox.objects.get(grant=grant).payload
    # ~450 bytes, 0.2 s apart: 90 s in all, while no read ever waits 1 s.
    simulator.configure(fail_rate=1, faults=["drip"], drip_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(ProviderError, match="deadline") as caught:
        get_adapter(provider).apply(payload, idempotency_key="drip-1")
    elapsed = time.monotonic() - started
    assert 1.9 < elapsed < 3.0, elapsed
    assert not caught.value.permanent  # retried later, like a time-out
    simulator.configure(fail_rate=0)
    # The simulator applied it before dripping: the retry with the same key is a replay.
    assert get_adapter(provider).apply(payload, idempotency_key="drip-1").version == 1


@pytest.mark.django_db
def test_a_dripping_provider_is_retried_and_the_row_released(provider, simulator):
    grant = _grant(provider)
    row = GrantOutbox.objects.get(grant=grant)
    simulator.configure(fail_rate=1, faults=["drip"], drip_seconds=0.2)
    started = time.monotonic()
    outcome = services.outbox_deliver(outbox_id=row.pk)
    assert outcome.result == "retry" and "deadline" in outcome.error
    assert time.monotonic() - started < 3.5
    row.refresh_from_db()
    assert row.state == "pending" and row.claim_token is None and row.claimed_until is None


def test_the_claim_outlasts_the_deadline():
    from django.conf import settings

    assert services.claim_seconds() >= settings.OUTBOX_CLAIM_SECONDS
    assert services.claim_seconds() > services.provider_http_deadline() + 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent workers need PostgreSQL")
def test_two_workers_never_hold_one_row_and_a_taken_over_holder_records_nothing(provider, simulator):
    simulator.configure(fail_rate=1, faults=["500"])  # the eager delivery on commit fails
    grant = _grant(provider)
    row = GrantOutbox.objects.get(grant=grant)
    assert row.state == "pending"
    GrantOutbox.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now())
    assert services.claim_seconds() >= 2.0 + services.CLAIM_MARGIN_SECONDS  # not the 1 s configured
    simulator.configure(fail_rate=1, faults=["drip"], drip_seconds=0.2)
    outcomes = {}

    def worker(name):
        try:
            outcomes[name] = services.outbox_deliver(outbox_id=row.pk)
        finally:
            connection.close()

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    time.sleep(0.5)
    row.refresh_from_db()
    assert row.state == "in_flight" and row.claim_token is not None
    first_token = row.claim_token
    # A second worker (the sweeper's message, a redelivery) while the first is still sending.
    assert services.outbox_deliver(outbox_id=row.pk).result == "skipped"
    # Its claim is taken over anyway (a worker stalled past its claim; clocks drift): a second
    # holder claims it, and still holds it when the first's request ends at its deadline.
    GrantOutbox.objects.filter(pk=row.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    second_token = services._claim(row.pk)
    assert second_token not in (None, first_token)
    first.join(10)
    assert outcomes["first"].result == "skipped"  # hit the deadline; the row was no longer its own
    row.refresh_from_db()
    assert (row.state, row.claim_token, row.attempts) == ("in_flight", second_token, 3)  # untouched
    assert services._record_outcome(row.pk, first_token, None).result == "skipped"  # even a success
    assert services._record_outcome(row.pk, second_token, None).result == "done"
    row.refresh_from_db()
    grant.refresh_from_db()
    assert row.state == "done" and row.claim_token is None
    assert grant.state == S.ACTIVE and grant.applied_version == 1 and grant.last_error == ""
    assert simulator.state()["effects"] == {f"{grant.public_id}:1:apply": 1}
