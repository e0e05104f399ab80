"""Organization isolation: every endpoint answers 404 for another organization's data, also to a
token restricted to a subset of the user's organizations, and the other organization's data is
left as it was."""

import pytest

from apps.allocations import services as allocation_services
from apps.allocations.models import AllocationRequest
from apps.providers.models import QuotaGrant
from tests.api.conftest import api_client, grant_with_usage, submit
from tests.api.factories import TokenFactory
from tests.factories import (
    AllocationRoundFactory,
    FairSharePolicyFactory,
    OrganizationFactory,
    OrgRoleFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(staff, org, owner, other_org, rival_owner, pools):
    """Both organizations with a published round result, grants, usage and a request in an open
    round."""
    FairSharePolicyFactory(is_default=True)
    published = AllocationRoundFactory(created_by=staff)
    submit(published, org, owner, 300)
    submit(published, other_org, rival_owner, 300)
    allocation_services.round_close(round_id=published.pk, actor=staff)
    allocation_services.round_compute(round_id=published.pk, actor=staff)
    allocation_services.round_publish(round_id=published.pk, actor=staff)
    open_round = AllocationRoundFactory(
        created_by=staff, fiscal_year=2026, period_start="2026-07-01", period_end="2026-10-01"
    )
    return {
        "published": published,
        "open": open_round,
        "mine": submit(open_round, org, owner, 100),
        "theirs": submit(open_round, other_org, rival_owner, 100),
        "my_grant": grant_with_usage(org, pools["osaka"]),
        "their_grant": grant_with_usage(other_org, pools["osaka"]),
    }


def _their_endpoints(world, mine: str, theirs: str):
    """(method, url, body) of every organization-scoped endpoint, pointed at the other org's data:
    its slug, or one of its objects under our own slug."""
    pid = world["published"].pk
    their_request = world["theirs"].pk
    their_grant = world["their_grant"].public_id
    body = {"demand_gpu_hours": 5, "justification": "x"}
    create = body | {"round": world["open"].pk, "gpu_class": "B200"}
    return [
        ("get", f"/api/v1/organizations/{theirs}/", None),
        ("get", f"/api/v1/organizations/{theirs}/requests/", None),
        ("post", f"/api/v1/organizations/{theirs}/requests/", create),
        ("get", f"/api/v1/organizations/{theirs}/requests/{their_request}/", None),
        ("get", f"/api/v1/organizations/{mine}/requests/{their_request}/", None),
        ("put", f"/api/v1/organizations/{theirs}/requests/{their_request}/", body),
        ("put", f"/api/v1/organizations/{mine}/requests/{their_request}/", body),
        ("patch", f"/api/v1/organizations/{theirs}/requests/{their_request}/", body),
        ("patch", f"/api/v1/organizations/{mine}/requests/{their_request}/", body),
        ("delete", f"/api/v1/organizations/{theirs}/requests/{their_request}/", None),
        ("delete", f"/api/v1/organizations/{mine}/requests/{their_request}/", None),
        ("get", f"/api/v1/organizations/{theirs}/results/{pid}/", None),
        ("get", f"/api/v1/organizations/{theirs}/grants/", None),
        ("get", f"/api/v1/organizations/{theirs}/grants/{their_grant}/", None),
        ("get", f"/api/v1/organizations/{mine}/grants/{their_grant}/", None),
        ("get", f"/api/v1/organizations/{theirs}/usage/", None),
        ("get", f"/api/v1/organizations/{theirs}/usage/?month=2026-05", None),
        ("get", f"/api/v1/organizations/{theirs}/usage/summary/", None),
        ("get", f"/api/v1/organizations/{theirs}/statement/", None),
        ("get", f"/api/v1/organizations/{theirs}/statement/?period=FY2026", None),
    ]


ENDPOINT_COUNT = 20


@pytest.mark.parametrize("index", range(ENDPOINT_COUNT))
def test_another_organizations_data_answers_404(world, write_token, index):
    method, url, body = _their_endpoints(world, "kyoto-u", "rival-ai")[index]
    response = getattr(api_client(write_token), method)(url, body, format="json")
    assert response.status_code == 404, (method, url, response.content)
    assert response.json()["code"] == "not_found"
    theirs = AllocationRequest.objects.get(pk=world["theirs"].pk)
    assert theirs.demand_gpu_hours == 100
    assert QuotaGrant.objects.filter(organization__slug="rival-ai").count() == 2


@pytest.mark.parametrize("index", range(ENDPOINT_COUNT))
def test_a_restricted_token_gets_404_for_the_users_other_organizations(world, owner, other_org, index):
    """The owner is also an owner of rival-ai, but the token only reaches kyoto-u."""
    OrgRoleFactory(organization=other_org, user=owner, role="owner")
    org = world["mine"].organization
    token = TokenFactory(user=owner, scope="write", organizations=[org])
    method, url, body = _their_endpoints(world, "kyoto-u", "rival-ai")[index]
    response = getattr(api_client(token), method)(url, body, format="json")
    assert response.status_code == 404, (method, url, response.content)
    assert AllocationRequest.objects.get(pk=world["theirs"].pk).demand_gpu_hours == 100


def test_the_same_endpoints_answer_for_ones_own_organization(world, write_token):
    """The isolation test above is not vacuous: pointed at our own data, each endpoint works."""
    mine = world["mine"].pk
    grant = world["my_grant"].public_id
    client = api_client(write_token)
    for url in [
        "/api/v1/organizations/kyoto-u/",
        "/api/v1/organizations/kyoto-u/requests/",
        f"/api/v1/organizations/kyoto-u/requests/{mine}/",
        f"/api/v1/organizations/kyoto-u/results/{world['published'].pk}/",
        "/api/v1/organizations/kyoto-u/grants/",
        f"/api/v1/organizations/kyoto-u/grants/{grant}/",
        "/api/v1/organizations/kyoto-u/usage/",
        "/api/v1/organizations/kyoto-u/usage/summary/",
    ]:
        assert client.get(url).status_code == 200, url
    assert (
        client.patch(
            f"/api/v1/organizations/kyoto-u/requests/{mine}/", {"demand_gpu_hours": 7}, format="json"
        ).status_code
        == 200
    )
    assert client.delete(f"/api/v1/organizations/kyoto-u/requests/{mine}/").status_code == 204


def test_lists_show_only_ones_own_organizations_rows(world, write_token):
    client = api_client(write_token)
    orgs = client.get("/api/v1/organizations/").json()["results"]
    assert [o["slug"] for o in orgs] == ["kyoto-u"]
    requests = client.get("/api/v1/organizations/kyoto-u/requests/").json()["results"]
    assert {r["id"] for r in requests} == set(
        AllocationRequest.objects.filter(organization__slug="kyoto-u").values_list("pk", flat=True)
    )
    grants = client.get("/api/v1/organizations/kyoto-u/grants/").json()["results"]
    assert {g["id"] for g in grants} == {
        str(g)
        for g in QuotaGrant.objects.filter(organization__slug="kyoto-u").values_list("public_id", flat=True)
    }
    usage = client.get("/api/v1/organizations/kyoto-u/usage/").json()["results"]
    assert {u["grant"] for u in usage} == {str(world["my_grant"].public_id)}


def test_staff_reach_no_organization_through_the_api(world, staff):
    """The API is the members' own: the secretariat's flag opens nothing here."""
    token = TokenFactory(user=staff)
    client = api_client(token)
    assert client.get("/api/v1/organizations/").json()["results"] == []
    assert client.get("/api/v1/organizations/kyoto-u/grants/").status_code == 404


def test_an_organization_the_user_has_no_role_in_answers_404(world, owner):
    OrganizationFactory(slug="unrelated")
    token = TokenFactory(user=owner)
    assert api_client(token).get("/api/v1/organizations/unrelated/").status_code == 404


def _my_endpoints(world):
    mine = world["mine"].pk
    grant = world["my_grant"].public_id
    body = {"demand_gpu_hours": 5, "justification": "x"}
    create = body | {"round": world["open"].pk, "gpu_class": "B200"}
    return [
        ("get", "/api/v1/organizations/", None),
        ("get", "/api/v1/organizations/kyoto-u/", None),
        ("get", "/api/v1/rounds/", None),
        ("get", f"/api/v1/rounds/{world['open'].pk}/", None),
        ("get", "/api/v1/organizations/kyoto-u/requests/", None),
        ("post", "/api/v1/organizations/kyoto-u/requests/", create),
        ("get", f"/api/v1/organizations/kyoto-u/requests/{mine}/", None),
        ("put", f"/api/v1/organizations/kyoto-u/requests/{mine}/", body),
        ("patch", f"/api/v1/organizations/kyoto-u/requests/{mine}/", body),
        ("delete", f"/api/v1/organizations/kyoto-u/requests/{mine}/", None),
        ("get", f"/api/v1/organizations/kyoto-u/results/{world['published'].pk}/", None),
        ("get", "/api/v1/organizations/kyoto-u/grants/", None),
        ("get", f"/api/v1/organizations/kyoto-u/grants/{grant}/", None),
        ("get", "/api/v1/organizations/kyoto-u/usage/", None),
        ("get", "/api/v1/organizations/kyoto-u/usage/summary/", None),
    ]


@pytest.mark.parametrize("index", range(15))
def test_every_endpoint_needs_a_token(world, index):
    method, url, body = _my_endpoints(world)[index]
    response = getattr(api_client(), method)(url, body, format="json")
    assert response.status_code == 401, (method, url)
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("index", range(15))
def test_a_read_only_token_reads_everything_and_writes_nothing(world, read_token, index):
    method, url, body = _my_endpoints(world)[index]
    response = getattr(api_client(read_token), method)(url, body, format="json")
    if method == "get":
        assert response.status_code == 200, (url, response.content)
    else:
        assert response.status_code == 403, (method, url)
        assert response.json()["code"] == "read_only_token"
    mine = AllocationRequest.objects.get(pk=world["mine"].pk)
    assert mine.demand_gpu_hours == 100
    assert AllocationRequest.objects.filter(organization__slug="kyoto-u").count() == 2
