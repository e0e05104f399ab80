"""The portal notices when nothing consumes its queue: /healthz, the staff pages and /metrics read the
outbox backlog and the workers' heartbeats from the database (so every process agrees)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.core.models import WorkerHeartbeat
from apps.core.worker import heartbeat_remove, heartbeat_write
from apps.providers.models import DeliveryAttempt, GrantDrift, GrantOutbox, UsageMonth, UsageRejection
from apps.reports.models import ExportJob
from portal.celery import app as celery_app
from tests.factories import (
    PoolPeriodFactory,
    ProviderFactory,
    ProviderOperatorFactory,
    QuotaGrantFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_broker():
    """Tasks go to a broker (as in production): a worker is required."""
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True


def _grants(n: int, *, provider_slug: str = "sakura"):
    provider = ProviderFactory(slug=provider_slug, name_en=provider_slug.title())
    period = PoolPeriodFactory(pool__provider=provider, pool__code=f"{provider_slug}-pool")
    return [QuotaGrantFactory(period=period, gpu_hours="10.00") for _ in range(n)]


def _overdue(minutes: float) -> None:
    GrantOutbox.objects.filter(state="pending").update(
        next_attempt_at=timezone.now() - timedelta(minutes=minutes),
        created_at=timezone.now() - timedelta(minutes=minutes + 1),
    )


def _heartbeat(seconds_ago: float, hostname: str = "worker@host-1") -> None:
    seen = timezone.now() - timedelta(seconds=seconds_ago)
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"pid": 4242, "started_at": seen, "seen_at": seen}
    )


# --- /healthz -----------------------------------------------------------------------------------


def test_health_is_ok_without_a_broker_and_shows_the_backlog(client):
    _grants(2)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["outbox"]["pending"] == 2
    assert body["workers"] == {"required": False, "alive": 0, "last_seen_age_seconds": None}


def test_health_answers_503_naming_the_problems_when_deliveries_are_overdue_and_no_worker_lives(
    client, with_broker
):
    _grants(3)
    _overdue(minutes=10)
    _heartbeat(seconds_ago=600)  # a worker that died ten minutes ago
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["problems"] == ["outbox_stale", "no_worker"]
    assert body["outbox"]["pending"] == 3
    assert body["outbox"]["stale"] is True
    assert 600 <= body["outbox"]["oldest_pending_age_seconds"] < 700
    assert body["workers"]["alive"] == 0
    assert body["workers"]["last_seen_age_seconds"] >= 600


def test_health_is_degraded_not_failing_when_only_one_thing_is_wrong(client, with_broker, settings):
    _grants(1)
    _overdue(minutes=10)
    _heartbeat(seconds_ago=1)  # alive: the provider may be down, the queue is consumed
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["problems"] == ["outbox_stale"]

    WorkerHeartbeat.objects.all().delete()
    GrantOutbox.objects.update(next_attempt_at=timezone.now() + timedelta(minutes=5))  # backing off
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["problems"] == ["no_worker"]


def test_an_expired_claim_counts_as_overdue(client, with_broker):
    _grants(1)
    GrantOutbox.objects.update(state="in_flight", claimed_until=timezone.now() - timedelta(minutes=10))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["outbox_stale", "no_worker"]


def test_health_query_count_does_not_grow_with_the_backlog(client, django_assert_num_queries, with_broker):
    _grants(1)
    with django_assert_num_queries(2):
        client.get("/healthz")
    _grants(30, provider_slug="kddi")
    _heartbeat(1, "a@x")
    _heartbeat(2, "b@x")
    with django_assert_num_queries(2):
        assert client.get("/healthz").json()["outbox"]["pending"] == 31


@pytest.mark.django_db(transaction=True)  # the heartbeat closes its connection, as in a worker
def test_the_worker_heartbeat_is_written_and_removed_by_the_worker_step():
    started = timezone.now()
    heartbeat_write(hostname="worker@node-7", pid=99, started_at=started)
    heartbeat_write(hostname="worker@node-7", pid=99, started_at=started)
    row = WorkerHeartbeat.objects.get()
    assert (row.hostname, row.pid, row.started_at) == ("worker@node-7", 99, started)
    heartbeat_remove(hostname="worker@node-7")
    assert not WorkerHeartbeat.objects.exists()


def test_the_worker_registers_its_heartbeat_step():
    from apps.core.worker import Heartbeat

    assert Heartbeat in celery_app.steps["worker"]


# --- staff pages --------------------------------------------------------------------------------


def test_staff_provider_page_shows_the_backlog_and_that_nothing_consumes_it(staff_client, with_broker):
    _grants(4)
    _overdue(minutes=10)
    response = staff_client.get("/secretariat/providers/")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="outbox-pending">4<' in page
    assert "送信キューを処理しているものがありません" in page  # nothing consumes the queue
    assert "ワーカーが一度も確認されていません" in page  # no worker was ever seen


def test_operator_console_shows_its_own_providers_backlog_only(client, with_broker):
    [grant] = _grants(1)
    _grants(5, provider_slug="kddi")
    _heartbeat(1)
    operator = ProviderOperatorFactory(provider=grant.pool.provider).user
    client.force_login(operator)
    page = client.get(f"/provider/{grant.pool.provider.slug}/").content.decode()
    assert 'data-testid="outbox-pending">1<' in page
    assert "稼働中のワーカー 1 台" in page


# --- /metrics -----------------------------------------------------------------------------------


def test_metrics_require_staff_or_the_bearer_token(staff_client, settings):
    settings.METRICS_TOKEN = "s3cret-token"
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    member = UserFactory()
    other = Client()
    other.force_login(member)
    assert other.get("/metrics").status_code == 401
    assert staff_client.get("/metrics").status_code == 200


def test_metrics_need_staff_when_no_token_is_configured(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def _scrape(client) -> dict[tuple, float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_report_what_the_database_holds(client, settings):
    settings.METRICS_TOKEN = "t"
    sakura = _grants(3)
    kddi = _grants(1, provider_slug="kddi")
    GrantOutbox.objects.filter(grant=sakura[0]).update(state="done")
    GrantOutbox.objects.filter(grant=sakura[1]).update(created_at=timezone.now() - timedelta(hours=1))
    provider = sakura[0].pool.provider
    DeliveryAttempt.objects.bulk_create(
        [DeliveryAttempt(provider=provider, ok=True)] * 5 + [DeliveryAttempt(provider=provider, ok=False)] * 2
    )
    GrantDrift.objects.create(provider=provider, grant_public_id="g-1", kind="missing")
    GrantDrift.objects.create(
        provider=provider,
        grant_public_id="g-2",
        kind="extra",
        resolved_at=timezone.now(),
        resolution="accepted",
    )
    UsageMonth.objects.create(grant=sakura[0], month="2026-05-01", gpu_hours=Decimal("3"), records=7)
    UsageMonth.objects.create(grant=kddi[0], month="2026-05-01", gpu_hours=Decimal("1"), records=2)
    for source, n in (("push", 3), ("push", 2), ("pull", 4)):
        UsageRejection.objects.create(provider=provider, source=source, rejected=n)
    user = UserFactory()
    ExportJob.objects.create(user=user, export="grants", format="csv", language="ja", status="running")
    ExportJob.objects.create(user=user, export="grants", format="csv", language="ja", status="pending")
    ExportJob.objects.create(user=user, export="grants", format="csv", language="ja", status="pending")

    samples = _scrape(client)
    assert samples[("portal_outbox_pending", (("provider", "sakura"),))] == 2
    assert samples[("portal_outbox_pending", (("provider", "kddi"),))] == 1
    assert samples[("portal_outbox_messages", (("provider", "sakura"), ("state", "done")))] == 1
    oldest = samples[("portal_outbox_oldest_pending_age_seconds", (("provider", "sakura"),))]
    assert 3600 <= oldest < 3700
    success = samples[("portal_delivery_attempts_total", (("provider", "sakura"), ("result", "success")))]
    failure = samples[("portal_delivery_attempts_total", (("provider", "sakura"), ("result", "failure")))]
    assert (success, failure) == (5, 2)
    assert samples[("portal_drifts", (("provider", "sakura"), ("state", "open")))] == 1
    assert samples[("portal_drifts", (("provider", "sakura"), ("state", "accepted")))] == 1
    assert samples[("portal_usage_records_accepted_total", (("provider", "sakura"),))] == 7
    assert samples[("portal_usage_records_accepted_total", (("provider", "kddi"),))] == 2
    assert samples[("portal_usage_records_rejected_total", (("provider", "sakura"), ("source", "push")))] == 5
    assert samples[("portal_usage_records_rejected_total", (("provider", "sakura"), ("source", "pull")))] == 4
    assert samples[("portal_export_jobs", (("state", "pending"),))] == 2
    assert samples[("portal_export_jobs", (("state", "running"),))] == 1
    assert samples[("portal_export_jobs", (("state", "done"),))] == 0
    assert samples[("portal_workers_alive", ())] == 0
    assert samples[("portal_worker_last_seen_age_seconds", ())] == -1


def test_metrics_query_count_does_not_grow_with_the_data(client, settings, django_assert_max_num_queries):
    settings.METRICS_TOKEN = "t"
    _grants(1)
    with django_assert_max_num_queries(10) as first:
        _scrape(client)
    _grants(20, provider_slug="kddi")
    kddi = ProviderFactory(slug="kddi")
    DeliveryAttempt.objects.bulk_create([DeliveryAttempt(provider=kddi, ok=True)] * 50)
    with django_assert_max_num_queries(len(first.captured_queries)):
        _scrape(client)


def test_refused_usage_pushes_are_counted_in_the_metrics(client, settings):
    import json

    from apps.providers import signing

    settings.METRICS_TOKEN = "t"
    [grant] = _grants(1)
    provider = grant.pool.provider
    provider.api_key_id = "k1"
    provider.save()
    good = {
        "record_id": "r-1",
        "grant_id": str(grant.public_id),
        "gpu_hours": "1.5",
        "started_at": "2026-05-01T00:00:00+09:00",
        "ended_at": "2026-05-01T01:30:00+09:00",
    }
    bad = [{**good, "record_id": "r-2", "gpu_hours": "-4"}, {**good, "record_id": "r-3", "ended_at": "never"}]
    body = json.dumps({"records": [good, *bad]}).encode()
    path = f"/api/providers/{provider.slug}/usage"
    signed = signing.sign(secret=provider.api_secret, method="POST", path=path, body=body)
    headers = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in signed.items()}
    headers["HTTP_" + signing.HEADER_KEY_ID.upper().replace("-", "_")] = "k1"
    response = Client().post(path, body, content_type="application/json", **headers)
    assert response.status_code == 400
    refused = _scrape(client)[
        ("portal_usage_records_rejected_total", (("provider", "sakura"), ("source", "push")))
    ]
    assert refused == 2
