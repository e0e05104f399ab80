"""Delivery guarantees with real parts: a Celery worker process on a Redis broker, the provider
simulator over HTTP with injected faults, PostgreSQL. Bounded in time.

- 500 grants with 30 % failures of every kind (500, 503, time-outs, dropped connections, slow
  answers, applied-but-answer-lost) and a worker killed mid-run: after the sweeper runs, the
  simulator holds exactly the portal's active grants, each version applied once.
- The broker is down while grants are approved: approvals still work; once it is back and the
  sweeper runs, everything arrives.
"""

import time

import pytest
from django.db import connection
from django.db.models import Count

from apps.providers import services
from apps.providers.models import GrantOutbox, QuotaGrant
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory
from tests.providers.simulator_process import SimulatorProcess
from tests.providers.worker_process import CeleryWorker, RedisServer, publishing_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the worker process needs a shared PostgreSQL"
    ),
]

SECRET = "fault-secret"
WORKER_ENV = {
    "PROVIDER_SECRETS": f"sakura={SECRET}",
    "PROVIDER_HTTP_TIMEOUT": "1.0",
    "OUTBOX_BACKOFF_BASE": "0.2",
    "OUTBOX_BACKOFF_MAX": "2",
    "OUTBOX_CLAIM_SECONDS": "5",
}


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture
def setup(settings):
    settings.PROVIDER_SECRETS = {"sakura": SECRET}
    settings.PROVIDER_HTTP_TIMEOUT = 1.0
    settings.OUTBOX_BACKOFF_BASE = 0.2
    settings.OUTBOX_BACKOFF_MAX = 2
    settings.OUTBOX_CLAIM_SECONDS = 5
    settings.OUTBOX_REENQUEUE_SECONDS = 3  # this process is beat: messages lost in a crash come back soon


def _provider_for(sim):
    period = PoolPeriodFactory(capacity_gpu_hours="10000000")
    provider = period.pool.provider
    provider.api_base_url, provider.api_key_id = sim.base_url, sim.key_id
    provider.save()
    return period


def _wait_until_settled(deadline_s: float, *, sweep_every: float = 1.0) -> None:
    """Act as celery beat: run the sweeper until no outbox row is pending or in flight."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        open_rows = GrantOutbox.objects.filter(state__in=["pending", "in_flight"]).count()
        if open_rows == 0:
            return
        services.outbox_sweep()
        time.sleep(sweep_every)
    states = dict(GrantOutbox.objects.values_list("state").annotate(n=Count("pk")))
    raise AssertionError(f"outbox did not settle in {deadline_s:.0f} s: {states}")


def _assert_provider_matches_portal(sim, expected_count: int) -> None:
    state = sim.state()
    ours = {str(g.public_id): g for g in QuotaGrant.objects.all()}
    assert len(ours) == expected_count
    assert {g.state for g in ours.values()} == {QuotaGrant.State.ACTIVE}
    active_there = {gid: q for gid, q in state["quotas"].items() if q["status"] == "active"}
    assert set(active_there) == set(ours), "missing or extra quotas at the provider"
    assert all(active_there[gid]["version"] == g.version == g.applied_version for gid, g in ours.items())
    applies = {k: v for k, v in state["effects"].items() if k.endswith(":apply")}
    assert len(applies) == expected_count and set(applies.values()) == {1}, "a version was applied twice"


def test_500_grants_through_faults_and_a_worker_crash_arrive_exactly_once(setup, redis_server):
    staff = StaffFactory()
    orgs = OrganizationFactory.create_batch(20)
    with (
        SimulatorProcess(
            secret=SECRET, key_id="sakura-key", fail_rate=0.3, hang_seconds=2, slow_seconds=0.3, seed=7
        ) as sim,
        publishing_to(redis_server.url),
    ):
        period = _provider_for(sim)
        worker = CeleryWorker(broker_url=redis_server.url, env=WORKER_ENV).start()
        try:
            for i in range(500):
                if i == 250:  # a crash mid-run: claimed rows and unacknowledged messages are left behind
                    worker.kill()
                    worker = CeleryWorker(broker_url=redis_server.url, env=WORKER_ENV).start()
                services.grant_create(
                    organization=orgs[i % 20], period_id=period.pk, gpu_hours="10", actor=staff
                )
            _wait_until_settled(150)
        finally:
            output = worker.output()
            worker.stop()
        by_fault = sim.state()["requests"]["by_fault"]
        assert sum(n for kind, n in by_fault.items() if kind not in ("none", "ok")) >= 100, by_fault
        assert "Traceback" not in output, output
        _assert_provider_matches_portal(sim, 500)


def test_grants_approved_while_the_broker_is_down_arrive_when_it_returns(setup, redis_server):
    staff = StaffFactory()
    org = OrganizationFactory()
    with (
        SimulatorProcess(secret=SECRET, key_id="sakura-key", fail_rate=0) as sim,
        publishing_to(redis_server.url),
    ):
        period = _provider_for(sim)
        redis_server.stop()
        started = time.monotonic()
        for _ in range(20):
            services.grant_create(organization=org, period_id=period.pk, gpu_hours="5", actor=staff)
        elapsed = time.monotonic() - started
        assert QuotaGrant.objects.count() == 20 and elapsed < 60
        assert GrantOutbox.objects.filter(state="pending").count() == 20
        assert sim.state()["quotas"] == {}

        redis_server.start()
        worker = CeleryWorker(broker_url=redis_server.url, env=WORKER_ENV).start()
        try:
            _wait_until_settled(60)
        finally:
            worker.stop()
        _assert_provider_matches_portal(sim, 20)
