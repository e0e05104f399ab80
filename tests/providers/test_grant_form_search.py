"""The staff grant form's organization field at scale: no select of every organization, an htmx
search endpoint (staff only) that suggests organizations with an active membership, a plain-HTML
search page for browsers without JavaScript, and the choice validated on the server."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.providers.models import QuotaGrant
from tests.factories import OrganizationFactory, OrgRoleFactory, PoolPeriodFactory, UserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
SEARCH = reverse("providers:grant-org-search")
CREATE = reverse("providers:grant-create")


def _slugs(response) -> list[str]:
    assert response.status_code == 200
    return re.findall(r'<option value="([^"]*)"', response.content.decode())


@pytest.fixture
def orgs():
    made = [
        OrganizationFactory(slug=f"lab-{i:03d}", name_en=f"Lab {i:03d}", name_ja=f"研究所{i:03d}")
        for i in range(30)
    ]
    made.append(OrganizationFactory(slug="robo-ai", name_en="Robo AI", name_ja="ロボ株式会社"))
    made.append(
        OrganizationFactory(
            slug="robo-gone", name_en="Robo Gone", name_ja="ロボ休止", membership__status="suspended"
        )
    )
    return made


def test_form_page_does_not_list_the_organizations(staff_client, orgs, django_assert_max_num_queries):
    with django_assert_max_num_queries(20) as small:
        text = staff_client.get(CREATE).content.decode()
    assert "Lab 001" not in text and "lab-001" not in text
    assert 'list="organization-options"' in text and f'hx-get="{SEARCH}"' in text
    OrganizationFactory.create_batch(40)
    with django_assert_max_num_queries(len(small.captured_queries)):
        staff_client.get(CREATE)


def test_search_suggests_active_members_by_name_or_slug(staff_client, orgs):
    response = staff_client.get(SEARCH, {"organization": "ロボ"}, **HX)
    assert response.status_code == 200
    text = response.content.decode()
    assert text.strip().startswith("<option") and "<html" not in text
    assert 'value="robo-ai"' in text and "robo-gone" not in text  # suspended: cannot be granted
    assert response["Vary"] and "HX-Request" in response["Vary"]
    slugs = _slugs(staff_client.get(SEARCH, {"q": "LAB-00"}, **HX))
    assert slugs == [f"lab-{i:03d}" for i in range(10)]
    assert len(_slugs(staff_client.get(SEARCH, {"q": "lab"}, **HX))) == 20  # a limit
    assert _slugs(staff_client.get(SEARCH, {"q": ""}, **HX)) == []
    assert staff_client.get(SEARCH, {"q": "x" * 5000}, **HX).status_code == 200


def test_search_prefers_names_that_start_with_the_text(staff_client, orgs):
    OrganizationFactory(slug="zz-ai-robo", name_en="AAA Institute of Robo", name_ja="AAA研究所")
    slugs = _slugs(staff_client.get(SEARCH, {"q": "robo"}, **HX))
    assert slugs == ["robo-ai", "zz-ai-robo"]


def test_search_query_count_is_constant(staff_client, orgs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert len(_slugs(staff_client.get(SEARCH, {"q": "lab-001"}, **HX))) == 1
    with CaptureQueriesContext(connection) as twenty:
        assert len(_slugs(staff_client.get(SEARCH, {"q": "lab"}, **HX))) == 20
    assert len(one.captured_queries) == len(twenty.captured_queries)


def test_plain_search_page_links_back_to_the_form_filled_in(staff_client, orgs):
    text = staff_client.get(SEARCH, {"q": "robo"}).content.decode()
    assert "<html" in text and f"{CREATE}?organization=robo-ai" in text and "robo-gone" not in text
    form = staff_client.get(CREATE, {"organization": "robo-ai"}).content.decode()
    assert 'value="robo-ai"' in form


def test_search_is_staff_only(orgs):
    for user in (UserFactory(), OrgRoleFactory(organization=orgs[0], role="owner").user):
        client = Client()
        client.force_login(user)
        assert client.get(SEARCH, {"q": "lab"}, **HX).status_code == 404
        assert client.get(SEARCH, {"q": "lab"}).status_code == 404
    assert Client().get(SEARCH, {"q": "lab"}).status_code in (302, 404)


def test_the_chosen_organization_is_checked_on_the_server(staff_client, orgs):
    today = timezone.localdate()
    period = PoolPeriodFactory(
        starts_on=today.replace(day=1), ends_on=today.replace(day=1, year=today.year + 1)
    )
    data = {"period": period.pk, "gpu_hours": "10"}
    for bad in ("robo-gone", "no-such-org", "Robo Gone", "lab", "x" * 300, str(orgs[0].pk)):
        response = staff_client.post(CREATE, {**data, "organization": bad})
        assert response.status_code == 400, bad
        assert "organization" in response.context["form"].errors, bad
    assert not QuotaGrant.objects.exists()
    assert staff_client.post(CREATE, {**data, "organization": " robo-ai "}).status_code == 302
    assert staff_client.post(CREATE, {**data, "organization": "lab 007"}).status_code == 302  # exact name
    assert staff_client.post(CREATE, {**data, "organization": "研究所008"}).status_code == 302
    assert sorted(QuotaGrant.objects.values_list("organization__slug", flat=True)) == [
        "lab-007",
        "lab-008",
        "robo-ai",
    ]


@pytest.mark.parametrize("q", ["\x00", "ロボ\x00", "ro\x85bo", "\u202erobo", "r" * 101])
def test_a_search_text_the_fields_refuse_finds_nothing_and_never_fails(staff_client, orgs, q):
    # A NUL reached PostgreSQL (a 500) while the search read the raw query string.
    for params in ({"q": q}, {"organization": q}):
        assert _slugs(staff_client.get(SEARCH, params, **HX)) == []
        assert staff_client.get(SEARCH, params).status_code == 200


def test_the_form_field_name_searches_as_well(staff_client, orgs):
    assert _slugs(staff_client.get(SEARCH, {"organization": "robo"}, **HX)) == ["robo-ai"]
