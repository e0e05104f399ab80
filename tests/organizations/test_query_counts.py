"""The list pages run a fixed number of SQL queries, however many rows they show.

Each test seeds a small data set (10 rows), measures the exact number of queries of the page, then
grows the data set to 200 rows and asserts the page runs exactly as many queries again. An N+1
(a query per row, e.g. a relation the selector forgot to ``select_related``) makes the second
count larger and the test fails, listing every query.

The pages paginate at 50 rows, so 200 rows also span several pages: the first page shows more rows
at 200 than at 10, and the last page is measured as well.
"""

import datetime
import secrets

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.organizations.models import Invitation, MembershipApplication, OrgRole
from apps.providers.models import Provider
from tests.factories import (
    ApplicationFactory,
    OrganizationFactory,
    OrgRoleFactory,
    ProviderFactory,
    StaffFactory,
    TermsFactory,
    UserFactory,
    valid_corporate_number,
)

pytestmark = pytest.mark.django_db

SMALL, LARGE = 10, 200
# A ceiling on the small page, so that a page that was always slow cannot pass by being
# consistently slow. The counts measured today are well below it.
QUERY_BUDGET = 15
KINDS = ["enterprise", "startup", "academic", "public_body"]
COMPANIES = ("enterprise", "startup")  # must have a corporate number


@pytest.fixture
def providers(db) -> list[Provider]:
    return [
        ProviderFactory(slug="kddi", name_ja="KDDI", name_en="KDDI"),
        ProviderFactory(slug="sakura", name_ja="さくら", name_en="Sakura"),
        ProviderFactory(slug="highreso", name_ja="ハイレゾ", name_en="HIGHRESO"),
    ]


def _org_kwargs(i: int, providers: list[Provider]) -> dict:
    """Every kind, every provider, with and without a description or a public website."""
    kind = KINDS[i % len(KINDS)]
    kwargs = {
        "kind": kind,
        "home_provider": providers[i % len(providers)],
        "description_ja": f"説明 {i}" if i % 2 else "",
        "show_website": bool(i % 3),
        "membership__tier": ["founding", "regular", "associate", "academic"][i % 4],
    }
    if kind not in COMPANIES and i % 2:
        kwargs["corporate_number"] = None
    return kwargs


def _get(client, url, max_queries, django_assert_max_num_queries, **params):
    with django_assert_max_num_queries(max_queries) as captured:
        response = client.get(url, params)
    assert response.status_code == 200, response
    return response, len(captured.captured_queries)


# --- public member directory -------------------------------------------------------------------


def test_directory_query_count_does_not_grow_with_organizations(
    client, providers, django_assert_max_num_queries, django_assert_num_queries
):
    url = reverse("organizations:directory")
    # Never shown, but present (and first by name if they were): the directory's filter.
    OrganizationFactory(
        name_ja="非掲載株式会社", name_en="AAA Hidden KK", is_listed=False, home_provider=providers[0]
    )
    OrganizationFactory(
        name_ja="停止中株式会社",
        name_en="AAA Suspended KK",
        membership__status="suspended",
        home_provider=providers[1],
    )

    small = [OrganizationFactory(**_org_kwargs(i, providers)) for i in range(SMALL)]
    client.get(url)  # warm-up: per-process caches (content types, translations…)
    response, n_small = _get(client, url, QUERY_BUDGET, django_assert_max_num_queries)
    page = response.context["page"]
    assert page.paginator.count == SMALL and len(page.object_list) == SMALL
    body = response.content.decode()
    assert all(org.name_ja in body for org in small)
    assert "非掲載株式会社" not in body and "停止中株式会社" not in body

    for i in range(SMALL, LARGE):
        OrganizationFactory(**_org_kwargs(i, providers))

    with django_assert_num_queries(n_small):
        response = client.get(url)
    page = response.context["page"]
    assert page.paginator.count == LARGE
    assert len(page.object_list) == 50
    body = response.content.decode()
    assert all(org.name_ja in body for org in page.object_list)
    assert body.count('<td><a href="/members/') == 50

    # The last page, a search and the filters: the same number of queries.
    with django_assert_num_queries(n_small):
        response = client.get(url, {"page": 4})
    assert response.context["page"].number == 4 and len(response.context["page"].object_list) == 50
    with django_assert_num_queries(n_small):
        response = client.get(url, {"q": "テスト", "kind": "enterprise", "provider": "kddi"})
    assert response.context["page"].paginator.count == len(range(0, LARGE, 12))  # i % 12 == 0
    with django_assert_num_queries(n_small):
        response = client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and len(response.context["page"].object_list) == 50


# --- secretariat review queue ------------------------------------------------------------------


def _application(i: int, providers: list[Provider], terms, reviewer) -> MembershipApplication:
    under_review = i % 2 == 1
    kind = KINDS[i % len(KINDS)]
    return ApplicationFactory(
        status="under_review" if under_review else "submitted",
        kind=kind,
        corporate_number=valid_corporate_number(900_000 + i) if kind in COMPANIES else "",
        home_provider=providers[i % len(providers)],
        accepted_terms=terms,
        terms_accepted_at=timezone.now() - datetime.timedelta(days=3),
        submitted_at=timezone.now() - datetime.timedelta(days=2, minutes=i),
        reviewer=reviewer if under_review else None,
    )


def test_review_queue_query_count_does_not_grow_with_applications(
    staff_client, staff, providers, django_assert_max_num_queries, django_assert_num_queries
):
    url = reverse("organizations:review-queue")
    terms = TermsFactory()
    reviewer = StaffFactory()
    # Outside the default queue: a draft and a decided application.
    ApplicationFactory(status="draft", name_ja="下書き株式会社", home_provider=providers[0])
    ApplicationFactory(
        status="rejected", name_ja="却下株式会社", home_provider=providers[1], submitted_at=timezone.now()
    )

    small = [_application(i, providers, terms, reviewer) for i in range(SMALL)]
    staff_client.get(url)  # warm-up
    response, n_small = _get(staff_client, url, QUERY_BUDGET, django_assert_max_num_queries)
    page = response.context["page"]
    assert page.paginator.count == SMALL and len(page.object_list) == SMALL
    body = response.content.decode()
    assert all(app.name_ja in body and app.applicant.email in body for app in small)
    assert "下書き株式会社" not in body and "却下株式会社" not in body
    assert body.count('id="application-') == SMALL

    for i in range(SMALL, LARGE):
        _application(i, providers, terms, reviewer)

    with django_assert_num_queries(n_small):
        response = staff_client.get(url)
    page = response.context["page"]
    assert page.paginator.count == LARGE and len(page.object_list) == 50
    body = response.content.decode()
    assert body.count('id="application-') == 50
    assert all(app.applicant.email in body for app in page.object_list)

    with django_assert_num_queries(n_small):
        response = staff_client.get(url, {"page": 4})
    assert response.context["page"].number == 4 and len(response.context["page"].object_list) == 50
    with django_assert_num_queries(n_small):
        response = staff_client.get(url, {"status": "under_review", "kind": "startup", "q": "申請"})
    assert response.context["page"].paginator.count == LARGE // 4  # i % 4 == 1
    with django_assert_num_queries(n_small):
        response = staff_client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.content.decode().count('id="application-') == 50


# --- member dashboard --------------------------------------------------------------------------


def _grow_dashboard(user, providers, start: int, stop: int) -> None:
    """Rows ``start``..``stop``: an organization where the user holds one or two roles alongside a
    colleague, an application of theirs, and a pending invitation to another organization."""
    for i in range(start, stop):
        org = OrganizationFactory(**_org_kwargs(i, providers))
        OrgRoleFactory(organization=org, user=user, role="owner" if i % 2 else "admin")
        if i % 3 == 0:
            OrgRoleFactory(organization=org, user=user, role="technical")
        OrgRoleFactory(organization=org, role="member")  # a colleague
        ApplicationFactory(
            applicant=user,
            status=["draft", "submitted", "under_review", "approved"][i % 4],
            home_provider=providers[i % len(providers)],
            submitted_at=None if i % 4 == 0 else timezone.now() - datetime.timedelta(days=i),
        )
        Invitation.objects.create(
            organization=OrganizationFactory(home_provider=providers[i % len(providers)]),
            email=user.email.upper() if i % 5 == 0 else user.email,  # matched case-insensitively
            role="member",
            token_hash=Invitation.hash_token(secrets.token_urlsafe(16)),
            expires_at=timezone.now() + datetime.timedelta(days=7),
        )


def test_dashboard_query_count_does_not_grow_with_organizations_applications_invitations(
    client, providers, django_assert_max_num_queries, django_assert_num_queries
):
    url = reverse("dashboard")
    user = UserFactory()
    other = UserFactory()
    # Other people's rows and stale invitations: never shown.
    OrgRoleFactory(user=other, role="owner", organization__home_provider=providers[0])
    ApplicationFactory(applicant=other, home_provider=providers[0])
    Invitation.objects.create(
        organization=OrganizationFactory(home_provider=providers[0]),
        email=user.email,
        role="member",
        token_hash=Invitation.hash_token("expired"),
        expires_at=timezone.now() - datetime.timedelta(days=1),
    )
    client.force_login(user)

    _grow_dashboard(user, providers, 0, SMALL)
    client.get(url)  # warm-up
    response, n_small = _get(client, url, QUERY_BUDGET, django_assert_max_num_queries)
    body = response.content.decode()
    orgs = list(response.context["organizations"])
    assert len(orgs) == SMALL
    assert all(org.name_ja in body for org in orgs)
    assert len(response.context["applications"]) == SMALL
    assert len(response.context["invitations"]) == SMALL
    assert body.count('<div class="card">') == SMALL  # one card per pending invitation

    _grow_dashboard(user, providers, SMALL, LARGE)
    with django_assert_num_queries(n_small):
        response = client.get(url)
    body = response.content.decode()
    orgs = list(response.context["organizations"])
    assert len(orgs) == 25 and response.context["orgs_page"].paginator.count == LARGE  # paginated
    assert all(org.name_ja in body for org in orgs)
    assert all(len(org.my_roles) in (1, 2) for org in orgs)
    for org in orgs:  # the roles and people shown are the page's organizations' own
        assert sorted(r.role for r in org.my_roles) == sorted(
            OrgRole.objects.filter(organization=org, user=user).values_list("role", flat=True)
        )
        assert org.people_count == OrgRole.objects.filter(organization=org).values("user").distinct().count()
    with django_assert_num_queries(n_small):  # the last page too
        last = client.get(url, {"orgs_page": 999})
    assert len(last.context["organizations"]) == LARGE % 25 or 25
    assert last.context["orgs_page"].number == 8
    assert len(response.context["applications"]) == 20  # the dashboard shows the latest 20
    assert len(response.context["invitations"]) == LARGE
    assert body.count('<div class="card">') == LARGE
    assert OrgRole.objects.filter(user=user).count() > LARGE
