"""The OpenAPI schema generates without warnings and describes every endpoint; the Swagger UI
page loads its scripts and styles from files (strict CSP) — its rendering in a real browser is
tested in tests/e2e/test_api_docs.py."""

import re

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/v1/organizations/",
    "/api/v1/organizations/{slug}/",
    "/api/v1/organizations/{slug}/requests/",
    "/api/v1/organizations/{slug}/requests/{request_id}/",
    "/api/v1/organizations/{slug}/results/{round_id}/",
    "/api/v1/organizations/{slug}/grants/",
    "/api/v1/organizations/{slug}/grants/{grant_id}/",
    "/api/v1/organizations/{slug}/usage/",
    "/api/v1/organizations/{slug}/usage/summary/",
    "/api/v1/organizations/{slug}/statement/",
    "/api/v1/rounds/",
    "/api/v1/rounds/{round_id}/",
]


def test_the_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    # --fail-on-warn raises on any warning or error of drf-spectacular; --validate checks the
    # result against the OpenAPI 3 specification.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert sorted(schema["paths"]) == sorted(PATHS)
    assert schema["components"]["securitySchemes"]["personalAccessToken"]["scheme"] == "bearer"
    request_paths = schema["paths"]["/api/v1/organizations/{slug}/requests/{request_id}/"]
    assert set(request_paths) >= {"get", "put", "patch", "delete"}
    assert "400" in request_paths["put"]["responses"]
    params = {p["name"] for p in schema["paths"]["/api/v1/organizations/{slug}/grants/"]["get"]["parameters"]}
    assert {"state", "sync", "pool", "gpu_class", "provider", "valid_on", "page", "page_size"} <= params


def test_the_schema_is_served_without_a_token(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/organizations/{slug}/grants/" in response.content


def test_the_swagger_page_has_no_inline_script_or_style(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<style" not in html
    assert not re.search(r"<script(?![^>]*\ssrc=)[^>]*>", html), html
    assert "swagger-ui-bundle.js" in html
    script = re.search(r'<script src="([^"]*script=[^"]*)"', html).group(1).replace("&amp;", "&")
    js = client.get(script)
    assert js.status_code == 200
    assert js["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in js.content
    assert b"/api/schema/" in js.content
    assert "script-src 'self'" in response["Content-Security-Policy"]
