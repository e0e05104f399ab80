"""The token section of the profile page: create (the secret shown once), form errors, revoke,
with and without htmx; login required; other users' tokens answer 404; Japanese by default."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.api.models import PersonalAccessToken
from apps.governance.models import AuditEvent
from tests.api.conftest import api_client
from tests.api.factories import TokenFactory
from tests.factories import OrganizationFactory, OrgRoleFactory, UserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
PROFILE = "/accounts/profile/"
CREATE = "/accounts/tokens/new/"


@pytest.fixture
def web(owner):
    client = Client()
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(owner)
    return client


def _form(**fields):
    data = {"token-name": "nightly export", "token-scope": "read", "token-lifetime": "90"}
    return data | {f"token-{key}": value for key, value in fields.items()}


def test_the_profile_page_shows_the_token_section_in_japanese(owner):
    client = Client()
    client.force_login(UserFactory(language="ja"))
    page = client.get(PROFILE).content.decode()
    assert 'id="api-tokens"' in page
    assert f'action="{CREATE}"' in page
    assert 'lang="ja"' in page


def test_the_token_pages_require_login():
    client = Client()
    for response in (client.get("/accounts/tokens/"), client.post(CREATE, _form())):
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]
    assert not PersonalAccessToken.objects.exists()


def test_creating_a_token_shows_its_secret_once(web, owner, org):
    response = web.post(CREATE, _form(scope="write", organizations=[org.pk]), **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="api-tokens"') or 'id="api-tokens"' in html[:400]
    assert "<html" not in html  # the section alone, for htmx
    token = PersonalAccessToken.objects.get()
    secret = html.split('id="api-token-value" class="mono">')[1].split("<")[0]
    assert secret.startswith("gap_")
    assert token.token_hash == PersonalAccessToken.hash_secret(secret)
    assert token.scope == "write"
    assert token.restricted
    assert list(token.organizations.all()) == [org]
    assert "no-store" in response["Cache-Control"]
    assert response["Vary"] and "HX-Request" in response["Vary"]
    # The secret works, and is never shown again.
    client = api_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/organizations/").status_code == 200
    assert secret not in web.get(PROFILE).content.decode()
    assert secret not in web.get("/accounts/tokens/").content.decode()
    assert AuditEvent.objects.filter(action="api_token.created").count() == 1


def test_without_htmx_the_token_page_shows_the_secret(web):
    response = web.post(CREATE, _form())
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'id="api-token-value"' in html


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"scope": "root"}, "scope"),
        ({"lifetime": "7"}, "lifetime"),
        ({"organizations": ["abc"]}, "organizations"),
    ],
)
def test_invalid_forms_rerender_with_errors_and_create_nothing(web, fields, field):
    response = web.post(CREATE, _form(**fields), **HX)
    assert response.status_code == 400
    html = response.content.decode()
    assert "errorlist" in html
    assert f'name="token-{field}"' in html
    assert not PersonalAccessToken.objects.exists()


def test_someone_elses_organization_cannot_be_chosen(web):
    foreign = OrganizationFactory()
    response = web.post(CREATE, _form(organizations=[foreign.pk]), **HX)
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert not PersonalAccessToken.objects.exists()


def test_the_form_offers_only_the_users_organizations(web, owner, org, other_org):
    html = web.get("/accounts/tokens/").content.decode()
    assert f'value="{org.pk}"' in html
    assert "Rival AI" not in html


def test_revoking_a_token_with_htmx(web, owner):
    token = TokenFactory(user=owner)
    response = web.post(reverse("api:token-revoke", args=[token.pk]), **HX)
    assert response.status_code == 200
    assert "was revoked" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_client(token).get("/api/v1/organizations/").status_code == 401
    again = web.post(reverse("api:token-revoke", args=[token.pk]), **HX)
    assert again.status_code == 400
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1


def test_revoking_without_htmx_redirects_to_the_profile(web, owner):
    token = TokenFactory(user=owner)
    response = web.post(reverse("api:token-revoke", args=[token.pk]))
    assert response.status_code == 302
    assert response["Location"] == PROFILE


def test_someone_elses_token_answers_404(web):
    theirs = TokenFactory(user=UserFactory())
    response = web.post(reverse("api:token-revoke", args=[theirs.pk]), **HX)
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_revoke_only_accepts_post(web, owner):
    token = TokenFactory(user=owner)
    assert web.get(reverse("api:token-revoke", args=[token.pk])).status_code == 405


def test_tokens_list_shows_state_and_restriction(web, owner, org):
    OrgRoleFactory(organization=OrganizationFactory(slug="second"), user=owner, role="member")
    TokenFactory(user=owner, name="limited", organizations=[org])
    TokenFactory(user=owner, name="everything")
    html = web.get("/accounts/tokens/").content.decode()
    assert "limited" in html and "Kyoto University" in html
    assert "All your organizations" in html
