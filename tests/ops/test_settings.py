"""Settings hardening: demo provider secrets only when the demo asks for them, never in production;
every cookie Secure in production and SameSite=Lax."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from apps.providers import signing
from apps.providers.models import Provider
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "from apps.providers.models import Provider; "
    "print(json.dumps({'demo': s.PROVIDER_DEMO_SECRETS, 'secret': Provider(slug='sakura').api_secret, "
    "'cookies': {n: getattr(s, n) for n in dir(s) if n.endswith(('COOKIE_SECURE', 'COOKIE_SAMESITE', "
    "'COOKIE_HTTPONLY', 'COOKIE_NAME'))}}))"
)


def _start(**env_extra) -> subprocess.CompletedProcess:
    """Start the project's settings (not the tests') in a fresh process with this environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("PORTAL_DEMO", "PORTAL_ENV", "PROVIDER_SECRETS")}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", **env_extra})
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _settings(**env_extra) -> dict:
    result = _start(**env_extra)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


PRODUCTION = {"PORTAL_ENV": "production", "SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "portal.example.jp"}


def test_a_deployment_that_forgets_portal_env_has_no_guessable_provider_secret():
    shown = _settings()
    assert shown["demo"] is False
    assert shown["secret"] == ""


def test_the_demo_gets_its_secrets_only_when_it_asks():
    shown = _settings(PORTAL_DEMO="1")
    assert shown["demo"] is True
    assert shown["secret"] == "demo-secret-sakura"


@pytest.mark.parametrize(
    "env",
    [
        {**PRODUCTION, "PORTAL_DEMO": "1"},
        {"PROVIDER_SECRETS": "sakura=demo-secret-sakura"},
        {"PROVIDER_SECRETS": "kddi=real-one,sakura=demo-secret-x"},
        {**PRODUCTION, "PROVIDER_SECRETS": "sakura=demo-secret-sakura"},
        {"PROVIDER_SECRETS": "sakura="},
    ],
    ids=["demo-in-production", "demo-secret-given", "one-of-several", "demo-secret-in-production", "empty"],
)
def test_the_portal_refuses_to_start_with_demo_secrets_unless_the_demo_asks(env):
    result = _start(**env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "PORTAL_DEMO" in result.stderr or "demo" in result.stderr


def test_real_secrets_start_anywhere():
    assert _settings(PROVIDER_SECRETS="sakura=9f8e7d6c5b4a")["secret"] == "9f8e7d6c5b4a"
    assert _settings(**PRODUCTION, PROVIDER_SECRETS="sakura=9f8e7d6c5b4a")["secret"] == "9f8e7d6c5b4a"


def test_rundemo_refuses_without_portal_demo():
    env = {k: v for k, v in os.environ.items() if k != "PORTAL_DEMO"}
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    result = subprocess.run(
        [sys.executable, "manage.py", "rundemo", "127.0.0.1:0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "PORTAL_DEMO=1" in result.stderr


def test_production_cookies_are_secure_samesite_and_httponly_where_no_script_needs_them():
    cookies = _settings(**PRODUCTION)["cookies"]
    for name in ("SESSION", "CSRF", "LANGUAGE"):
        assert cookies[f"{name}_COOKIE_SECURE"] is True, name
        assert cookies[f"{name}_COOKIE_SAMESITE"] == "Lax", name
        assert cookies[f"{name}_COOKIE_HTTPONLY"] is True, name
    assert cookies["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert cookies["CSRF_COOKIE_NAME"].startswith("__Host-")
    development = _settings()["cookies"]
    assert development["LANGUAGE_COOKIE_SECURE"] is False  # plain http://127.0.0.1 in the demo


@pytest.mark.django_db
def test_every_language_cookie_the_portal_sets_follows_the_settings(settings):
    settings.LANGUAGE_COOKIE_SECURE = True
    client = Client()
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    morsel = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax"

    user = UserFactory()
    client.force_login(user)
    response = client.post("/accounts/profile/", {"full_name": "名前", "language": "en"})
    assert response.status_code == 302
    morsel = response.cookies[settings.LANGUAGE_COOKIE_NAME]
    assert morsel.value == "en"
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax"


@pytest.mark.django_db
def test_usage_signed_with_the_guessable_demo_secret_is_refused_outside_the_demo(settings):
    settings.PROVIDER_DEMO_SECRETS = False
    settings.PROVIDER_SECRETS = {}
    provider = Provider.objects.create(slug="sakura", name_ja="さくら", name_en="Sakura", api_key_id="k1")
    body = json.dumps({"records": []}).encode()
    path = f"/api/providers/{provider.slug}/usage"
    signed = signing.sign(secret="demo-secret-sakura", method="POST", path=path, body=body)
    headers = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in signed.items()}
    headers["HTTP_" + signing.HEADER_KEY_ID.upper().replace("-", "_")] = "k1"
    response = Client().post(path, body, content_type="application/json", **headers)
    assert response.status_code == 401
    settings.PROVIDER_DEMO_SECRETS = True  # the demo: the same request is accepted
    response = Client().post(path, body, content_type="application/json", **headers)
    assert response.status_code == 200
