"""The control-character refusal where people actually type: a page's form answers with a form
error (in Japanese), the API with a 400 whose body names the field; nothing is saved. Multi-line
text keeps its line breaks."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from apps.allocations.models import AllocationRequest
from tests.api.conftest import api_client
from tests.api.factories import TokenFactory
from tests.factories import AllocationRoundFactory, OrganizationFactory, OrgRoleFactory, PoolPeriodFactory

pytestmark = pytest.mark.django_db


def _profile(org, **overrides):
    return {
        "name_ja": org.name_ja,
        "name_en": org.name_en,
        "postal_code": "",
        "address": org.address,
        "website": org.website,
        "show_website": "on",
        "description_ja": "説明",
        "description_en": "About",
    } | overrides


@pytest.mark.parametrize(
    "bad", ["株式会社\x1bテスト", "株式会社\u202eトステ", "株式会社\nテスト", "Te\x85st"]
)
def test_the_organization_profile_form_refuses_a_control_character_in_the_name(client, bad):
    org = OrganizationFactory(name_ja="株式会社テスト")
    client.force_login(OrgRoleFactory(organization=org, role="owner").user)
    response = client.post(reverse("organizations:org-profile", args=[org.slug]), _profile(org, name_ja=bad))
    assert response.status_code == 200
    assert "制御文字" in response.content.decode()
    org.refresh_from_db()
    assert org.name_ja == "株式会社テスト"


def test_a_multi_line_description_keeps_its_line_breaks(client):
    org = OrganizationFactory()
    client.force_login(OrgRoleFactory(organization=org, role="owner").user)
    text = "一行目\r\n二行目\tタブ"
    response = client.post(
        reverse("organizations:org-profile", args=[org.slug]), _profile(org, description_ja=text)
    )
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.description_ja.replace("\r\n", "\n") == "一行目\n二行目\tタブ"
    response = client.post(
        reverse("organizations:org-profile", args=[org.slug]), _profile(org, description_ja="説明\x07")
    )
    assert response.status_code == 200 and "U+0007" in response.content.decode()


@pytest.fixture
def api(db):
    org = OrganizationFactory(slug="kyoto-u")
    owner = OrgRoleFactory(organization=org, role="owner").user
    PoolPeriodFactory(pool__code="osaka-h200", capacity_gpu_hours="400.00")
    return api_client(TokenFactory(user=owner, scope="write")), AllocationRoundFactory()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("justification", "学習\x00"),
        ("justification", "学習\x1b[31m"),
        ("justification", "\ud800"),
        ("gpu_class", "H2\n00"),
    ],
)
def test_the_api_answers_400_naming_the_field_and_saves_nothing(api, field, value):
    client, allocation_round = api
    body = {
        "round": allocation_round.pk,
        "gpu_class": "H200",
        "demand_gpu_hours": 100,
        "justification": "学習",
    }
    raw = json.dumps(body | {field: value})  # "\ud800" travels escaped, as a client would send it
    response = client.post("/api/v1/organizations/kyoto-u/requests/", raw, content_type="application/json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not AllocationRequest.objects.exists()


def test_the_api_keeps_line_breaks_in_a_justification(api):
    client, allocation_round = api
    body = {
        "round": allocation_round.pk,
        "gpu_class": "H200",
        "demand_gpu_hours": 100,
        "justification": "一\n二\tb",
    }
    response = client.post("/api/v1/organizations/kyoto-u/requests/", body, format="json")
    assert response.status_code == 201, response.content
    assert AllocationRequest.objects.get().justification == "一\n二\tb"
