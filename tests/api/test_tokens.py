"""Personal access tokens: the secret is shown once and only its hash is kept; revoked, expired
and unknown tokens answer 401, read-only tokens 403 on writes; creation and revocation are
audited; messages follow the token user's language."""

import datetime
import hashlib

import pytest
from django.utils import timezone

from apps.api import services
from apps.api.models import PersonalAccessToken
from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from tests.api.conftest import api_client
from tests.api.factories import TokenFactory
from tests.factories import OrganizationFactory, OrgRoleFactory, UserFactory

pytestmark = pytest.mark.django_db
ORGS = "/api/v1/organizations/"


def test_create_returns_the_secret_once_and_stores_only_its_hash(owner):
    token, secret = services.token_create(user=owner, name="nightly export", scope="read")
    assert secret.startswith("gap_")
    assert len(secret) > 40
    stored = PersonalAccessToken.objects.get(pk=token.pk)
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in {getattr(stored, f.attname) for f in stored._meta.concrete_fields}
    assert stored.token_hint == secret[:10]
    assert stored.expires_at is None
    assert not stored.restricted


def test_creation_and_revocation_are_audited_without_the_secret(owner, org):
    token, secret = services.token_create(
        user=owner, name="ci", scope="write", expires_in_days=30, organization_ids=[org.pk]
    )
    services.token_revoke(token_id=token.pk, actor=owner)
    events = list(AuditEvent.objects.filter(target_type="api.personalaccesstoken", target_id=str(token.pk)))
    assert [e.action for e in events] == ["api_token.created", "api_token.revoked"]
    assert events[0].after["organizations"] == ["kyoto-u"]
    assert events[0].after["scope"] == "write"
    assert events[1].after["revoked_at"]
    for event in events:
        assert secret not in str(event.before) + str(event.after)
        assert token.token_hash not in str(event.before) + str(event.after)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"name": "  "}, "invalid"),
        ({"name": "x" * 101}, "invalid"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"expires_in_days": 0}, "invalid"),
        ({"expires_in_days": 400}, "invalid"),
        ({"expires_in_days": "30"}, "invalid"),
    ],
)
def test_create_refuses_bad_input(owner, kwargs, code):
    with pytest.raises(ApplicationError) as exc:
        services.token_create(user=owner, **({"name": "ok", "scope": "read"} | kwargs))
    assert exc.value.code == code
    assert not PersonalAccessToken.objects.exists()


def test_a_token_cannot_be_limited_to_someone_elses_organization(owner, other_org):
    with pytest.raises(ApplicationError) as exc:
        services.token_create(user=owner, name="x", scope="read", organization_ids=[other_org.pk])
    assert exc.value.code == "invalid_organizations"
    assert not PersonalAccessToken.objects.exists()


def test_live_tokens_are_capped(owner, monkeypatch):
    monkeypatch.setattr(services, "MAX_LIVE_TOKENS", 2)
    TokenFactory(user=owner)
    revoked = TokenFactory(user=owner)
    services.token_revoke(token_id=revoked.pk, actor=owner)
    TokenFactory(user=owner)
    with pytest.raises(ApplicationError) as exc:
        services.token_create(user=owner, name="third", scope="read")
    assert exc.value.code == "too_many_tokens"


def test_only_the_owner_revokes_a_token_and_only_once(owner, write_token):
    with pytest.raises(ApplicationError) as exc:
        services.token_revoke(token_id=write_token.pk, actor=UserFactory())
    assert exc.value.code == "not_found"
    services.token_revoke(token_id=write_token.pk, actor=owner)
    with pytest.raises(ApplicationError) as exc:
        services.token_revoke(token_id=write_token.pk, actor=owner)
    assert exc.value.code == "already_revoked"


# --- authentication ------------------------------------------------------------------------------


def test_a_valid_token_authenticates_and_notes_when_it_was_used(org, write_token):
    assert write_token.last_used_at is None
    response = api_client(write_token).get(ORGS)
    assert response.status_code == 200
    assert [o["slug"] for o in response.json()["results"]] == ["kyoto-u"]
    write_token.refresh_from_db()
    assert write_token.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(org, write_token, django_assert_num_queries):
    client = api_client(write_token)
    client.get(ORGS)
    first = PersonalAccessToken.objects.get(pk=write_token.pk).last_used_at
    client.get(ORGS)
    assert PersonalAccessToken.objects.get(pk=write_token.pk).last_used_at == first
    PersonalAccessToken.objects.filter(pk=write_token.pk).update(
        last_used_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    client.get(ORGS)
    assert PersonalAccessToken.objects.get(pk=write_token.pk).last_used_at > first


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Bearer", "malformed_token"),
        ("Bearer a b", "malformed_token"),
        ("Bearer gap_not-a-real-token", "invalid_token"),
        ("Token gap_whatever", "not_authenticated"),
    ],
)
def test_missing_or_unknown_tokens_get_401_json(org, header, code):
    client = api_client()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(ORGS)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_a_revoked_token_gets_401(owner, write_token):
    client = api_client(write_token)
    assert client.get(ORGS).status_code == 200
    services.token_revoke(token_id=write_token.pk, actor=owner)
    response = client.get(ORGS)
    assert response.status_code == 401
    assert response.json() == {"detail": "This access token was revoked.", "code": "revoked_token"}


def test_an_expired_token_gets_401(owner):
    token = TokenFactory(user=owner, expires_in_days=1)
    client = api_client(token)
    assert client.get(ORGS).status_code == 200
    PersonalAccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    response = client.get(ORGS)
    assert response.status_code == 401
    assert response.json()["code"] == "expired_token"


def test_a_disabled_account_gets_401(owner, write_token):
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    response = api_client(write_token).get(ORGS)
    assert response.status_code == 401
    assert response.json()["code"] == "inactive_user"


def test_a_read_only_token_gets_403_on_writes_and_changes_nothing(org, read_token, open_round, pools):
    client = api_client(read_token)
    url = f"/api/v1/organizations/{org.slug}/requests/"
    response = client.post(
        url,
        {"round": open_round.pk, "gpu_class": "H200", "demand_gpu_hours": 10, "justification": "x"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["code"] == "read_only_token"
    assert client.get(url).status_code == 200
    assert not open_round.requests.exists()


def test_messages_follow_the_token_users_language(org):
    """The message of a bad filter value comes from Django's own catalogue (translated either way)."""
    url = "/api/v1/rounds/?status=computed"
    japanese = UserFactory(language="ja")
    OrgRoleFactory(organization=org, user=japanese, role="member")
    token = TokenFactory(user=japanese)
    response = api_client(token).get(url)
    assert response.status_code == 400
    assert "候補にありません" in response.json()["errors"]["status"][0]
    assert response["Content-Language"] == "ja"
    english = UserFactory(language="en")
    OrgRoleFactory(organization=org, user=english, role="member")
    response = api_client(TokenFactory(user=english)).get(url)
    assert "not one of the available choices" in response.json()["errors"]["status"][0]
    assert response["Content-Language"] == "en"
    # The language cookie (the switcher) wins, as on the web pages.
    response = api_client(token, language="en").get(url)
    assert "not one of the available choices" in response.json()["errors"]["status"][0]


def test_a_restricted_token_reaches_only_the_chosen_organizations(owner, org):
    second = OrganizationFactory(slug="second-org")
    OrgRoleFactory(organization=second, user=owner, role="member")
    restricted = TokenFactory(user=owner, organizations=[second])
    assert [o["slug"] for o in api_client(restricted).get(ORGS).json()["results"]] == ["second-org"]
    unrestricted = TokenFactory(user=owner)
    assert [o["slug"] for o in api_client(unrestricted).get(ORGS).json()["results"]] == [
        "kyoto-u",
        "second-org",
    ]


def test_leaving_an_organization_removes_it_from_every_token(owner, org):
    token = TokenFactory(user=owner, organizations=[org])
    owner.org_roles.all().delete()
    response = api_client(token).get(f"/api/v1/organizations/{org.slug}/")
    assert response.status_code == 404
    assert api_client(token).get(ORGS).json()["results"] == []


def test_too_many_requests_get_429_json(settings, org, write_token):
    settings.REST_FRAMEWORK = settings.REST_FRAMEWORK | {"DEFAULT_THROTTLE_RATES": {"api_user": "3/minute"}}
    client = api_client(write_token)
    assert [client.get(ORGS).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(ORGS)
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    # Per user: another user's token is not affected.
    other = TokenFactory(user=UserFactory())
    assert api_client(other).get(ORGS).status_code == 200
