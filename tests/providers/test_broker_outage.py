"""The broker dies UNDER A RUNNING WORKER mid-delivery and comes back: the same worker process keeps
running (kombu 5.7's Redis transport used to exit with "Unrecoverable error: AttributeError(
'NoneType' object has no attribute 'hostname')" while restoring its unacknowledged messages; see
portal/broker.py), and every grant version reaches the provider simulator exactly once.

Real parts only: a private redis-server that is terminated and restarted empty (an outage that
also loses the queue), a ``celery -A portal worker`` process (threads pool, acks_late, countdown
retries of 503 answers, so it holds unacknowledged messages when the broker goes), the simulator
over HTTP, PostgreSQL. A longer soak with both pools is ``bench/broker_outage_soak.py``."""

import time

import pytest
from django.db import connection

from apps.providers import services
from apps.providers.models import GrantOutbox, QuotaGrant
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory
from tests.providers.simulator_process import SimulatorProcess
from tests.providers.test_fault_tolerance import SECRET, _wait_until_settled
from tests.providers.worker_process import CeleryWorker, RedisServer, publishing_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the worker process needs a shared PostgreSQL"
    ),
]

WORKER_ENV = {
    "PROVIDER_SECRETS": f"sakura={SECRET}",
    "PROVIDER_HTTP_TIMEOUT": "2.0",
    "OUTBOX_BACKOFF_BASE": "4",  # retries wait 2-8 s
    "OUTBOX_BACKOFF_MAX": "8",
    "OUTBOX_CLAIM_SECONDS": "8",
}


@pytest.fixture
def setup(settings):
    settings.PROVIDER_SECRETS = {"sakura": SECRET}
    settings.PROVIDER_HTTP_TIMEOUT = 2.0
    settings.OUTBOX_CLAIM_SECONDS = 8
    settings.OUTBOX_REENQUEUE_SECONDS = 3  # messages lost with the broker are re-sent after 3 s


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_worker_survives_a_broker_outage_mid_delivery_and_every_version_arrives_once(setup):
    staff = StaffFactory()
    orgs = OrganizationFactory.create_batch(5)
    redis_server = RedisServer().start()
    try:
        with (
            SimulatorProcess(
                secret=SECRET, key_id="sakura-key", fail_rate=0, faults="503", latency=0.05, seed=3
            ) as sim,
            publishing_to(redis_server.url),
        ):
            period = PoolPeriodFactory(capacity_gpu_hours="10000000")
            provider = period.pool.provider
            provider.api_base_url, provider.api_key_id = sim.base_url, sim.key_id
            provider.save()
            worker = CeleryWorker(broker_url=redis_server.url, env=WORKER_ENV, concurrency=4).start()
            try:
                grants = [
                    services.grant_create(
                        organization=orgs[i % 5], period_id=period.pk, gpu_hours="10", actor=staff
                    )
                    for i in range(20)
                ]
                _wait_for(lambda: len(sim.state()["effects"]) == 20, 30, "the first deliveries")
                # Then every answer is a 503: the worker schedules countdown retries and holds them,
                # unacknowledged, until they are due (2-8 s), and that is when the broker goes.
                sim.configure(fail_rate=1.0)
                grants += [
                    services.grant_create(
                        organization=orgs[i % 5], period_id=period.pk, gpu_hours="10", actor=staff
                    )
                    for i in range(20)
                ]
                _wait_for(
                    lambda: GrantOutbox.objects.filter(state="pending", attempts__gte=1).count() >= 15,
                    30,
                    "countdown retries",
                )
                sim.configure(fail_rate=0.3)
                redis_server.stop()
                outage_started = time.monotonic()
                # The portal keeps working while the broker is down: changes and new grants.
                for grant in grants[:10]:
                    services.grant_change(grant_id=grant.pk, actor=staff, gpu_hours="12")
                grants += [
                    services.grant_create(
                        organization=orgs[0], period_id=period.pk, gpu_hours="7", actor=staff
                    )
                    for _ in range(5)
                ]
                time.sleep(max(0.0, 12 - (time.monotonic() - outage_started)))
                assert worker.process.poll() is None, "exited during the outage:\n" + worker.output()
                redis_server.start()  # empty: the queue and the unacknowledged messages are gone
                _wait_until_settled(40)
                assert worker.process.poll() is None, "the worker exited:\n" + worker.output()
            finally:
                output = worker.output()
                worker.stop()
            assert "Unrecoverable error" not in output, output

            state = sim.state()
            ours = {str(g.public_id): g for g in QuotaGrant.objects.all()}
            assert len(ours) == 45
            assert {g.state for g in ours.values()} == {QuotaGrant.State.ACTIVE}
            assert {gid: q["version"] for gid, q in state["quotas"].items()} == {
                gid: g.version for gid, g in ours.items()
            }
            assert sorted({g.version for g in ours.values()}) == [1, 2]
            # Exactly once per version: v2 of the ten changed grants, and v1 of every grant that the
            # provider saw before its change superseded it (never twice).
            assert set(state["effects"].values()) == {1}, state["effects"]
            assert all(f"{gid}:{g.version}:apply" in state["effects"] for gid, g in ours.items())
            assert state["requests"]["by_fault"].get("503", 0) > 0
    finally:
        redis_server.close()
