"""The production layout, for real: supervisord (deploy/supervisord.conf) runs gunicorn with two
workers, a Celery worker and beat with PORTAL_ENV=production on a private redis-server, the test's
PostgreSQL database and a provider simulator; static files collected and served by whitenoise.
A secretariat user logs in (password + TOTP) over HTTP as if behind a TLS-terminating proxy,
creates a grant that reaches the simulator; the Celery worker is killed with SIGKILL, the
supervisor brings it back and deliveries continue. Everything started is stopped by PID."""

from __future__ import annotations

import datetime
import os
import re
import secrets
import signal
import subprocess
import sys
import time

import pytest
import requests
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection
from django.utils import timezone

from apps.core.models import WorkerHeartbeat
from apps.providers.models import QuotaGrant
from tests.factories import (
    OrganizationFactory,
    PoolPeriodFactory,
    ProviderFactory,
    StaffFactory,
    TermsFactory,
)
from tests.ops.layout import ROOT, ProxiedClient, Supervisor, pid_alive
from tests.providers import worker_process
from tests.providers.simulator_process import SimulatorProcess
from tests.providers.worker_process import RedisServer, free_port

pytestmark = [
    pytest.mark.production_layout,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the processes share a PostgreSQL database"),
]

PASSWORD = "layout-test-password-1"
METRICS_TOKEN = secrets.token_urlsafe(24)


def _wait(predicate, *, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except requests.ConnectionError:
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _production_env(*, redis: RedisServer, simulator: SimulatorProcess, static_root, port: int) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PORTAL_", "DB_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",  # the project's, not the tests' (no demo)
            "PORTAL_ENV": "production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": worker_process.test_database_url(),
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
            "CACHE_URL": f"redis://127.0.0.1:{redis.port}/1",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "PROVIDER_SECRETS": f"sakura={simulator.secret}",
            "STATIC_ROOT": str(static_root),
            "METRICS_TOKEN": METRICS_TOKEN,
            "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
            "WORKER_HEARTBEAT_SECONDS": "1",
            "HEALTH_WORKER_STALE_SECONDS": "5",
            "PORTAL_ROOT": str(ROOT),
            "PORTAL_PYTHON": sys.executable,
            "PORTAL_BIND": f"127.0.0.1:{port}",
            "WEB_CONCURRENCY": "2",
            "CELERY_CONCURRENCY": "2",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.fixture
def layout(tmp_path):
    """Redis, a simulator and the supervised processes; stopped by PID afterwards."""
    redis = RedisServer()
    simulator = SimulatorProcess(secret=secrets.token_hex(16), key_id="layout")
    port = free_port()
    env = _production_env(redis=redis, simulator=simulator, static_root=tmp_path / "static", port=port)
    # collectstatic (hashing and compressing every file) runs while Redis and the simulator start.
    collect = subprocess.Popen(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    supervisor = None
    try:
        redis.start()
        simulator.start()
        _, errors = collect.communicate(timeout=120)
        assert collect.returncode == 0, errors[-3000:]
        supervisor = Supervisor(env=env).start()
        yield {"supervisor": supervisor, "simulator": simulator, "base_url": f"http://127.0.0.1:{port}"}
    finally:
        if collect.poll() is None:
            collect.kill()
            collect.wait()
        survivors = supervisor.stop() if supervisor else []
        simulator.stop()
        redis.close()
    assert not survivors, f"processes outlived supervisord: {survivors}"


def _data(simulator: SimulatorProcess):
    provider = ProviderFactory(
        slug="sakura",
        name_ja="さくら",
        name_en="Sakura",
        api_base_url=simulator.base_url,
        api_key_id="layout",
    )
    today = timezone.localdate()
    period = PoolPeriodFactory(
        pool__provider=provider,
        starts_on=today.replace(day=1),
        ends_on=today.replace(day=1) + datetime.timedelta(days=92),
    )
    organization = OrganizationFactory(home_provider=provider)
    TermsFactory()
    staff = StaffFactory()
    # The production processes use Django's default hashers (the tests' settings use MD5).
    staff.password = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    staff.save(update_fields=["password"])
    totp_secret = "JBSWY3DPEHPK3PXPLAYOUTTEST234567"
    TOTP.activate(staff, totp_secret)
    return staff, totp_secret, organization, period


def _login(client: ProxiedClient, *, email: str, totp_secret: str) -> None:
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"login": email, "password": PASSWORD})
    assert response.status_code == 302, response.text[-2000:]
    assert response.headers["Location"].endswith("/accounts/2fa/authenticate/")
    if time.time() % 30 > 26:  # the code must still be valid when the server checks it
        time.sleep(30 - time.time() % 30 + 0.1)
    code = format_hotp_value(hotp_value(totp_secret, int(time.time()) // 30))
    response = client.post("/accounts/2fa/authenticate/", {"code": code})
    assert response.status_code == 302, response.text[-2000:]


def _create_grant(client: ProxiedClient, *, organization, period, hours: str) -> QuotaGrant:
    response = client.post(
        "/secretariat/grants/new/",
        {"organization": organization.slug, "period": str(period.pk), "gpu_hours": hours},
    )
    assert response.status_code == 302, response.text[-3000:]
    public_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    return QuotaGrant.objects.get(public_id=public_id)


def _reaches_simulator(simulator: SimulatorProcess, grant: QuotaGrant, *, timeout: float) -> dict:
    return _wait(
        lambda: simulator.state()["quotas"].get(str(grant.public_id)),
        timeout=timeout,
        what=f"grant {grant.public_id} to reach the simulator",
    )


def test_supervised_production_layout_serves_delivers_and_survives_a_killed_worker(layout):
    supervisor, simulator = layout["supervisor"], layout["simulator"]
    staff, totp_secret, organization, period = _data(simulator)
    client = ProxiedClient(layout["base_url"])

    web_pid = supervisor.wait_running("web")
    worker_pid = supervisor.wait_running("worker")
    beat_pid = supervisor.wait_running("beat")
    health = _wait(
        lambda: (r := client.get("/healthz", proxied=False)).status_code == 200
        and r.json()["workers"]["alive"] >= 1
        and r.json(),
        timeout=40,
        what="the health endpoint to see a worker",
    )
    assert health["status"] == "ok", health
    assert health["workers"]["required"] is True

    # Production: plain HTTP is redirected to HTTPS; behind the proxy the pages answer.
    response = client.get("/", proxied=False)
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://")
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    # Static files as in production: hashed names from the manifest, served by whitenoise.
    css = re.search(r'href="(/static/css/portal\.[0-9a-f]{12}\.css)"', response.text)
    assert css, "the page does not link the hashed stylesheet"
    static = client.get(css[1])
    assert static.status_code == 200
    assert "immutable" in static.headers["Cache-Control"]
    assert "body" in static.text
    for public in ("/members/", f"/members/{organization.slug}/", "/transparency/", "/conditions/"):
        response = client.get(public)
        assert response.status_code == 200, public
    assert organization.name_ja in client.get("/members/").text

    # A secretariat user logs in (password + TOTP) and grants quota; the worker delivers it.
    _login(client, email=staff.email, totp_secret=totp_secret)
    session_cookie = client.set_cookies["__Host-sessionid"]
    assert "Secure" in session_cookie and "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    first = _create_grant(client, organization=organization, period=period, hours="120.00")
    quota = _reaches_simulator(simulator, first, timeout=30)
    assert quota["gpu_hours"] in ("120.00", "120", 120, 120.0)

    # The language cookie is Secure too.
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    language_cookie = client.set_cookies["django_language"]
    assert "Secure" in language_cookie and "SameSite=Lax" in language_cookie

    # Metrics: refused without the token, counted from the database with it.
    assert client.get("/metrics", headers={"Cookie": ""}).status_code == 401
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}", "Cookie": ""})
    assert metrics.status_code == 200
    delivered = r'portal_delivery_attempts_total\{provider="sakura",result="success"\} [1-9]'
    assert re.search(delivered, metrics.text)
    assert 'portal_outbox_pending{provider="sakura"} 0.0' in metrics.text

    # The worker crashes (SIGKILL to it and its pool); the supervisor starts a new one.
    killed_at = timezone.now()
    os.killpg(worker_pid, signal.SIGKILL)
    _wait(lambda: not pid_alive(worker_pid), timeout=10, what="the killed worker to be gone")
    new_worker_pid = supervisor.wait_running("worker", other_than=worker_pid, timeout=30)
    assert new_worker_pid != worker_pid
    assert supervisor.pid("web") == web_pid and supervisor.pid("beat") == beat_pid

    second = _create_grant(client, organization=organization, period=period, hours="80.00")
    _reaches_simulator(simulator, second, timeout=40)
    health = client.get("/healthz", proxied=False).json()
    assert health["workers"]["alive"] >= 1
    assert health["outbox"]["pending"] == 0, health
    # The heartbeat now comes from the new worker process.
    heartbeat = WorkerHeartbeat.objects.get()
    assert heartbeat.pid == new_worker_pid
    assert heartbeat.seen_at > killed_at
