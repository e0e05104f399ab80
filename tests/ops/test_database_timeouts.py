"""PostgreSQL bounds: a session that holds a lock (the audit-chain head, a table) makes a web request
answer 503 with Retry-After within the bound instead of hanging, JSON under /api/; a task retries.
Real locks held by a second connection, no mocks."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import psycopg
import pytest
from django.db import IntegrityError, OperationalError, connection, transaction

from apps.core.db import is_database_timeout, use_database_timeouts
from apps.core.tasks import PortalTask
from apps.governance.models import AuditChainHead, AuditEvent
from apps.governance.services import audit_record
from apps.providers import signing
from portal.celery import app as celery_app
from tests.api.conftest import api_client
from tests.api.factories import TokenFactory
from tests.factories import (
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    QuotaGrantFactory,
    UserFactory,
)
from tests.providers import worker_process

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the bounds are PostgreSQL's"),
]

# Short bounds for this test's session (the configured ones are checked in their own test), so the
# suite does not wait five seconds per case.
LOCK_TIMEOUT_MS = 400


@contextlib.contextmanager
def held(sql: str):
    """Another session runs ``sql`` in an open transaction (taking its locks) until the block ends."""
    holder = psycopg.connect(worker_process.test_database_url().replace("postgres://", "postgresql://"))
    try:
        holder.execute("BEGIN")
        holder.execute(sql)
        yield holder
    finally:
        holder.rollback()
        holder.close()


@pytest.fixture
def short_lock_timeout():
    with connection.cursor() as cursor:
        cursor.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
    yield LOCK_TIMEOUT_MS / 1000
    with connection.cursor() as cursor:
        cursor.execute("RESET lock_timeout")  # back to the value the connection was opened with


@pytest.fixture
def chain_head():
    """An audit chain with a head row (what every grant change locks)."""
    organization = OrganizationFactory()
    audit_record(actor=None, action="test.started", target=organization)
    return AuditChainHead.objects.get(pk=1)


HOLD_CHAIN_HEAD = "SELECT * FROM governance_auditchainhead WHERE id = 1 FOR UPDATE"


def test_connections_use_the_configured_bounds_and_workers_switch_to_theirs(settings):
    def show(name: str) -> str:
        with connection.cursor() as cursor:
            cursor.execute(f"SHOW {name}")
            return cursor.fetchone()[0]

    def ms(value: str) -> int:
        number = int("".join(ch for ch in value if ch.isdigit()))
        unit = "".join(ch for ch in value if ch.isalpha()) or "ms"
        return number * {"ms": 1, "s": 1000, "min": 60_000}[unit]

    web = settings.DATABASE_TIMEOUTS["web"]
    assert web["lock_timeout"] > 0 and web["statement_timeout"] > 0
    assert ms(show("lock_timeout")) == web["lock_timeout"]
    assert ms(show("statement_timeout")) == web["statement_timeout"]
    assert ms(show("idle_in_transaction_session_timeout")) == web["idle_in_transaction_session_timeout"]
    assert show("application_name") == "portal-web"
    worker = settings.DATABASE_TIMEOUTS["worker"]
    assert worker != web
    try:
        use_database_timeouts("worker")
        assert ms(show("lock_timeout")) == worker["lock_timeout"]
        assert ms(show("statement_timeout")) == worker["statement_timeout"]
        assert show("application_name") == "portal-worker"
    finally:
        use_database_timeouts("web")
    assert ms(show("lock_timeout")) == web["lock_timeout"]


def test_a_timeout_is_recognised_and_other_errors_are_not():
    with pytest.raises(OperationalError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 50")
        cursor.execute("SELECT pg_sleep(2)")
    assert is_database_timeout(caught.value)
    organization = OrganizationFactory()
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        OrganizationFactory(slug=organization.slug)
    assert not is_database_timeout(caught.value)
    assert not is_database_timeout(ValueError("no"))


def test_grant_change_blocked_by_the_chain_head_answers_503_within_the_bound_then_works(
    staff_client, chain_head, short_lock_timeout
):
    grant = QuotaGrantFactory(period=PoolPeriodFactory())
    revoked = AuditEvent.objects.filter(action="grant.revoked", target_id=str(grant.pk))
    url = f"/secretariat/grants/{grant.public_id}/revoke/"
    with held(HOLD_CHAIN_HEAD):
        started = time.monotonic()
        response = staff_client.post(url, {"reason": "ended early"})
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert "text/html" in response["Content-Type"]
    assert "もう一度" in response.content.decode()  # Japanese: please try again
    assert elapsed < short_lock_timeout + 2
    assert not revoked.exists()  # nothing half-written: the revocation rolled back whole
    assert not grant.outbox.filter(operation="revoke").exists()

    response = staff_client.post(url, {"reason": "ended early"})
    assert response.status_code == 302
    assert revoked.count() == 1
    assert grant.outbox.filter(operation="revoke").count() == 1


def test_member_api_blocked_by_a_lock_answers_json_503(short_lock_timeout):
    organization = OrganizationFactory()
    user = UserFactory(language="en")
    OrgRoleFactory(organization=organization, user=user, role="owner")
    client = api_client(TokenFactory(user=user, scope="read"))
    with held("LOCK TABLE organizations_organization IN ACCESS EXCLUSIVE MODE"):
        started = time.monotonic()
        response = client.get("/api/v1/organizations/")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "database_busy"
    assert int(response["Retry-After"]) == response.json()["retry_after"]
    assert elapsed < short_lock_timeout + 2
    assert client.get("/api/v1/organizations/").status_code == 200


def test_usage_push_blocked_by_a_lock_answers_json_503_and_stores_nothing(short_lock_timeout):
    grant = QuotaGrantFactory(period=PoolPeriodFactory())
    provider = grant.pool.provider
    provider.api_key_id = "k1"
    provider.save()
    body = json.dumps(
        {
            "records": [
                {
                    "record_id": "r-1",
                    "grant_id": str(grant.public_id),
                    "gpu_hours": "1.5",
                    "started_at": "2026-05-01T00:00:00+09:00",
                    "ended_at": "2026-05-01T01:30:00+09:00",
                }
            ]
        }
    ).encode()
    path = f"/api/providers/{provider.slug}/usage"
    signed = signing.sign(secret=provider.api_secret, method="POST", path=path, body=body)
    headers = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in signed.items()}
    headers["HTTP_" + signing.HEADER_KEY_ID.upper().replace("-", "_")] = "k1"
    from django.test import Client

    with held("LOCK TABLE providers_usagerecord IN ACCESS EXCLUSIVE MODE"):
        response = Client().post(path, body, content_type="application/json", **headers)
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "database_busy"
    assert grant.usage.count() == 0


@celery_app.task(name="tests.ops.audit_task")
def _audit_task(organization_id: int) -> int:
    from apps.organizations.models import Organization

    organization = Organization.objects.get(pk=organization_id)
    return audit_record(actor=None, action="test.task", target=organization).pk


def test_every_portal_task_retries_database_timeouts():
    tasks = [task for name, task in celery_app.tasks.items() if name.startswith("apps.")]
    assert len(tasks) > 5
    assert all(isinstance(task, PortalTask) for task in tasks)


def test_a_task_blocked_by_the_chain_head_retries_until_the_lock_is_released(chain_head, short_lock_timeout):
    retries = []
    holder_cm = held(HOLD_CHAIN_HEAD)
    holder_cm.__enter__()
    release = threading.Timer(1.2, lambda: holder_cm.__exit__(None, None, None))
    release.start()
    try:
        from celery.signals import task_retry

        def on_retry(**kwargs):
            retries.append(kwargs)

        task_retry.connect(on_retry, weak=False)
        try:
            # Retries run in place as a worker would run them (the suite otherwise propagates errors).
            celery_app.conf.task_eager_propagates = False
            result = _audit_task.apply(args=(OrganizationFactory().pk,))
        finally:
            celery_app.conf.task_eager_propagates = True
            task_retry.disconnect(on_retry)
    finally:
        release.join()
    assert result.successful(), result.traceback
    assert retries, "the task did not retry"
    assert AuditEvent.objects.filter(pk=result.result, action="test.task").exists()
