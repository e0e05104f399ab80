"""Read endpoints: what each returns, the filters and pagination (bad values answer 400/404 JSON,
never 500), published results only, JSON 404 for unknown paths, and query counts that do not grow
with the rows."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.allocations import services as allocation_services
from tests.api.conftest import api_client, grant_with_usage, submit
from tests.api.factories import TokenFactory
from tests.factories import (
    AllocationRoundFactory,
    FairSharePolicyFactory,
    OrganizationFactory,
    OrgRoleFactory,
    PoolPeriodFactory,
    UsageRecordFactory,
)

pytestmark = pytest.mark.django_db
ORG = "/api/v1/organizations/kyoto-u/"
TOKYO = datetime.timezone(datetime.timedelta(hours=9))


# --- organizations -------------------------------------------------------------------------------


def test_an_organization_shows_its_membership_and_the_users_roles(client, org, owner):
    OrgRoleFactory(organization=org, user=owner, role="technical")
    body = client.get(ORG).json()
    assert body["slug"] == "kyoto-u"
    assert body["name"] == "Kyoto University"  # in the token user's language (English here)
    assert body["name_ja"] == "京都大学"
    assert body["name_en"] == "Kyoto University"
    assert body["kind"] == "academic"
    assert body["membership"]["status"] == "active"
    assert body["membership"]["tier"] == "regular"
    assert body["home_provider"]["slug"] == "kddi"
    assert sorted(body["my_roles"]) == ["owner", "technical"]
    assert body["can_file_requests"] is True


def test_a_plain_member_is_told_it_cannot_file_requests(org):
    member = OrgRoleFactory(organization=org, role="member").user
    body = api_client(TokenFactory(user=member)).get(ORG).json()
    assert body["my_roles"] == ["member"]
    assert body["can_file_requests"] is False


# --- rounds --------------------------------------------------------------------------------------


def test_rounds_show_open_closed_and_published_ones_only(client, staff):
    made = {
        status: AllocationRoundFactory(status=status, name=status)
        for status in ("open", "closed", "computed", "published")
    }
    body = client.get("/api/v1/rounds/").json()
    assert {r["name"] for r in body["results"]} == {"open", "closed", "published"}
    assert body["count"] == 3
    assert client.get(f"/api/v1/rounds/{made['computed'].pk}/").status_code == 404
    detail = client.get(f"/api/v1/rounds/{made['open'].pk}/").json()
    assert detail["accepts_requests"] is True
    assert detail["period_start"] == "2026-04-01"
    assert client.get("/api/v1/rounds/?status=open").json()["count"] == 1
    assert client.get("/api/v1/rounds/?fiscal_year=2025").json()["count"] == 0


@pytest.mark.parametrize(
    "query",
    ["status=computed", "status=", "fiscal_year=abc", "fiscal_year=1e999999"],
)
def test_bad_round_filters_get_400_or_are_ignored_never_500(client, query):
    response = client.get(f"/api/v1/rounds/?{query}")
    assert response.status_code in (200, 400)
    assert response["Content-Type"] == "application/json"
    if response.status_code == 400:
        assert response.json()["errors"]


# --- results -------------------------------------------------------------------------------------


@pytest.fixture
def published_round(staff, org, owner, other_org, rival_owner, pools):
    FairSharePolicyFactory(is_default=True)
    allocation_round = AllocationRoundFactory(created_by=staff)
    submit(allocation_round, org, owner, 700)
    submit(allocation_round, other_org, rival_owner, 600, eligible_pool_ids=[pools["osaka"].pool.pk])
    allocation_services.round_close(round_id=allocation_round.pk, actor=staff)
    allocation_services.round_compute(round_id=allocation_round.pk, actor=staff)
    return allocation_round


def test_a_result_is_shown_once_published_with_its_explanation(client, staff, published_round):
    url = f"{ORG}results/{published_round.pk}/"
    response = client.get(url)
    assert response.status_code == 404  # computed, not yet published
    assert response.json()["code"] == "not_found"
    allocation_services.round_publish(round_id=published_round.pk, actor=staff)
    body = client.get(url).json()
    assert body["round"]["status"] == "published"
    [h200] = body["classes"]
    assert h200["gpu_class"] == "H200"
    assert h200["requested_gpu_hours"] == 700
    assert h200["granted_gpu_hours"] == sum(p["gpu_hours"] for p in h200["placements"])
    assert h200["granted_gpu_hours"] > 0
    assert h200["stopped_reason"] in ("demand_met", "pools_exhausted")
    assert {p["pool"] for p in h200["placements"]} <= {"hokkaido-h200", "osaka-h200"}
    assert body["weight"]["derivation"]["tier"] == "regular"
    assert float(body["weight"]["weight"]) > 0
    assert [r["gpu_class"] for r in body["requests"]] == ["H200"]
    assert body["excluded"] is False


def test_an_open_rounds_result_is_not_found(client, open_round):
    assert client.get(f"{ORG}results/{open_round.pk}/").status_code == 404
    assert client.get(f"{ORG}results/987654/").status_code == 404


# --- grants --------------------------------------------------------------------------------------


def test_grants_carry_usage_and_sync_state_and_filter(client, org, pools):
    osaka = grant_with_usage(org, pools["osaka"], records=2)
    tokyo = grant_with_usage(org, pools["tokyo"], records=0)
    body = client.get(f"{ORG}grants/").json()
    assert body["count"] == 2
    by_id = {g["id"]: g for g in body["results"]}
    assert by_id[str(osaka.public_id)]["used_gpu_hours"] == "20.0000"
    assert by_id[str(osaka.public_id)]["sync_state"] == "sending"  # its outbox row is still pending
    assert by_id[str(osaka.public_id)]["pool"]["code"] == "osaka-h200"
    assert by_id[str(tokyo.public_id)]["pool"]["gpu_class"] == "B200"

    def ids(query):
        response = client.get(f"{ORG}grants/?{query}")
        assert response.status_code == 200, response.content
        return {g["id"] for g in response.json()["results"]}

    assert ids("pool=osaka-h200") == {str(osaka.public_id)}
    assert ids("gpu_class=B200") == {str(tokyo.public_id)}
    assert ids("provider=kddi") == {str(tokyo.public_id)}
    assert ids("state=active") == {str(osaka.public_id), str(tokyo.public_id)}
    assert ids("state=revoked") == set()
    assert ids("valid_on=2026-05-01") == {str(osaka.public_id), str(tokyo.public_id)}
    assert ids("valid_on=2026-07-01") == set()
    assert ids("sync=in_sync") == set()

    detail = client.get(f"{ORG}grants/{osaka.public_id}/").json()
    assert detail["gpu_hours"] == "100.00"
    assert detail["period_start"] == "2026-04-01"


@pytest.mark.parametrize(
    "query", ["state=lost", "sync=maybe", "valid_on=tomorrow", "valid_on=2026-02-30", "source=x"]
)
def test_bad_grant_filters_get_400_with_the_field(client, org, query):
    response = client.get(f"{ORG}grants/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()["errors"]


@pytest.mark.parametrize("grant_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1"])
def test_unknown_grant_ids_get_404(client, org, grant_id):
    response = client.get(f"{ORG}grants/{grant_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


# --- usage ---------------------------------------------------------------------------------------


def test_usage_records_filter_by_month_pool_and_grant(client, org, pools):
    may = datetime.datetime(2026, 5, 31, 23, 30, tzinfo=TOKYO)  # 14:30 UTC: still May in Japan
    june = datetime.datetime(2026, 6, 1, 0, 30, tzinfo=TOKYO)  # 31 May in UTC, June in Japan
    osaka = grant_with_usage(org, pools["osaka"], started_at=may, gpu_hours="3.5000")
    UsageRecordFactory(grant=osaka, started_at=june, ended_at=june + datetime.timedelta(hours=1))
    tokyo = grant_with_usage(org, pools["tokyo"], started_at=june, gpu_hours="2.0000")

    def rows(query=""):
        response = client.get(f"{ORG}usage/?{query}")
        assert response.status_code == 200, response.content
        return response.json()["results"]

    assert len(rows()) == 3
    [record] = rows("month=2026-05")
    assert record["gpu_hours"] == "3.5000"
    assert record["pool"] == "osaka-h200"
    assert record["grant"] == str(osaka.public_id)
    assert len(rows("month=2026-06")) == 2
    assert len(rows("month=2026-06&pool=tokyo-b200")) == 1
    assert len(rows(f"grant={tokyo.public_id}")) == 1
    assert len(rows("provider=kddi")) == 1

    summary = client.get(f"{ORG}usage/summary/?month=2026-06").json()
    assert summary["month"] == "2026-06"
    assert summary["gpu_hours"] == "12.0000"
    assert [(p["pool"], p["gpu_hours"], p["records"]) for p in summary["pools"]] == [
        ("osaka-h200", "10.0000", 1),
        ("tokyo-b200", "2.0000", 1),
    ]
    assert client.get(f"{ORG}usage/summary/?month=2026-05").json()["gpu_hours"] == "3.5000"


def test_the_summary_defaults_to_the_current_month(client, org, pools):
    grant_with_usage(org, pools["osaka"], started_at=timezone.now() - datetime.timedelta(minutes=5))
    body = client.get(f"{ORG}usage/summary/").json()
    assert body["month"] == f"{timezone.localdate():%Y-%m}"


@pytest.mark.parametrize("month", ["2026-13", "2026-5", "May", "2026-05-01", "1999-12", "0000-00"])
def test_a_bad_month_gets_400_with_the_field(client, org, month):
    for url in (f"{ORG}usage/?month={month}", f"{ORG}usage/summary/?month={month}"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.json()["errors"]["month"] == ["Enter a month as YYYY-MM, for example 2026-04."]


@pytest.mark.parametrize("grant", ["abc", "123"])
def test_a_bad_grant_filter_gets_400(client, org, grant):
    response = client.get(f"{ORG}usage/?grant={grant}")
    assert response.status_code == 400
    assert "grant" in response.json()["errors"]


def test_the_statement_is_the_statement_pages_figures(client, org, pools):
    may = datetime.datetime(2026, 5, 10, 10, 0, tzinfo=TOKYO)
    grant = grant_with_usage(org, pools["osaka"], started_at=may, gpu_hours="3.5000")
    body = client.get(f"{ORG}statement/?period=FY2026").json()
    assert (body["period"], body["starts_on"], body["ends_on"]) == ("FY2026", "2026-04-01", "2027-04-01")
    [line] = body["lines"]
    assert (line["section"], line["pool"], line["used_gpu_hours"]) == ("allocation", "osaka-h200", "3.5000")
    assert line["granted_gpu_hours"] == f"{grant.gpu_hours:.2f}"
    assert [m["month"] for m in body["months"]][:2] == ["2026-04", "2026-05"]
    assert body["months"][1]["used_gpu_hours"] == "3.5000"
    month = client.get(f"{ORG}statement/?period=2026-05").json()
    assert month["period"] == "2026-05" and len(month["months"]) == 1
    bad = client.get(f"{ORG}statement/?period=2026")
    assert bad.status_code == 400 and "period" in bad.json()["errors"]


# --- pagination and unknown paths ----------------------------------------------------------------


def test_pages_and_page_sizes(client, org, pools):
    for _ in range(3):
        grant_with_usage(org, pools["osaka"], records=0)
    first = client.get(f"{ORG}grants/?page_size=2").json()
    assert first["count"] == 3
    assert len(first["results"]) == 2
    assert first["next"].endswith("page=2&page_size=2")
    second = client.get(f"{ORG}grants/?page_size=2&page=2").json()
    assert len(second["results"]) == 1
    assert second["next"] is None
    assert len(client.get(f"{ORG}grants/?page_size=200").json()["results"]) == 3


@pytest.mark.parametrize("size", ["abc", "0", "-1", "201", "100000", "1.5", "", " 5", "５"])
def test_a_page_size_that_is_not_1_to_200_gets_400_not_the_default(client, org, size):
    """It used to fall back to the default (or be capped) silently."""
    response = client.get(f"{ORG}grants/?page_size={size}")
    assert response.status_code == 400
    assert response.json()["errors"]["page_size"]


@pytest.mark.parametrize("page", ["abc", "0", "-1", "1.5", "last", "", "1e3"])
def test_a_page_that_is_not_a_page_number_gets_400(client, org, page):
    response = client.get(f"{ORG}grants/?page={page}")
    assert response.status_code == 400
    assert response.json()["errors"]["page"]


def test_a_page_after_the_last_gets_404_json(client, org):
    response = client.get(f"{ORG}grants/?page=99")
    assert response.status_code == 404
    assert response.json() == {"detail": "This page does not exist.", "code": "not_found"}


@pytest.mark.parametrize(
    "path",
    ["/api/v1/", "/api/v1/nothing/", "/api/v1/rounds/abc/", "/api/v1/organizations/kyoto-u/requests/x/"],
)
def test_unknown_api_paths_get_404_json(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


def test_a_missing_trailing_slash_is_pointed_out(client):
    response = client.get("/api/v1/rounds")
    assert response.status_code == 404
    assert "/api/v1/rounds/" in response.json()["detail"]
    # Also for writes, which carry no CSRF token.
    csrf_checking = api_client(enforce_csrf_checks=True)
    response = csrf_checking.post("/api/v1/organizations/kyoto-u/requests", {}, format="json")
    assert response.status_code == 404
    assert "/api/v1/organizations/kyoto-u/requests/" in response.json()["detail"]


def test_methods_that_do_not_exist_get_405_json(client):
    response = client.post("/api/v1/rounds/", {}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


# --- query counts --------------------------------------------------------------------------------


def _queries(client, url) -> int:
    client.get(url)  # the token's first use of the minute writes last_used_at: not a per-row cost
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(ctx.captured_queries)


def _grow(n, org, owner, pools, staff):
    """n organizations of the owner, n rounds with a request each, n grants with usage."""
    for i in range(n):
        OrgRoleFactory(organization=OrganizationFactory(), user=owner, role="member")
        allocation_round = AllocationRoundFactory(created_by=staff, status="open", name=f"r{i}")
        request = submit(allocation_round, org, owner, 10 + i, eligible_pool_ids=[pools["osaka"].pool.pk])
        assert request.pk
        period = PoolPeriodFactory(capacity_gpu_hours="1000.00")
        grant_with_usage(org, period, records=1)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/organizations/",
        "/api/v1/rounds/",
        f"{ORG}requests/",
        f"{ORG}grants/",
        f"{ORG}usage/",
        f"{ORG}usage/summary/?month=2026-04",
    ],
)
def test_list_query_counts_do_not_grow_with_the_rows(client, org, owner, pools, staff, url):
    _grow(2, org, owner, pools, staff)
    if "summary" not in url:  # a list: its largest page
        url += ("&" if "?" in url else "?") + "page_size=200"
    few = _queries(client, url)
    _grow(18, org, owner, pools, staff)
    many = _queries(client, url)
    assert few == many, (few, many)


@pytest.mark.parametrize(
    "path",
    [
        f"{ORG}requests/99999999999999999999/",
        f"{ORG}results/99999999999999999999/",
        "/api/v1/rounds/99999999999999999999/",
        "/api/v1/rounds/999999999999999999/",
    ],
)
def test_ids_too_large_for_the_database_get_404_not_500(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_the_grant_list_computes_usage_and_sync_for_the_page_only(client, org, pools):
    from apps.providers import selectors as provider_selectors

    for i in range(7):
        grant_with_usage(org, pools["hokkaido"], records=i % 3)
    expected = {
        str(g.public_id): (f"{g.used_hours:.4f}", g.sync_state)
        for g in provider_selectors.grant_list_for_org(organization=org)
    }
    shown = {}
    for page in (1, 2, 3):
        client.get(f"{ORG}grants/?page_size=3&page={page}")  # the token's last_used_at write
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(f"{ORG}grants/?page_size=3&page={page}")
        assert response.status_code == 200, response.content
        limited = [q["sql"] for q in ctx.captured_queries if "LIMIT" in q["sql"]]
        page_query = [sql for sql in limited if "providers_quotagrant" in sql.split("FROM", 1)[1][:60]]
        assert page_query and all("SUM(" not in sql.upper() for sql in page_query), page_query
        for g in response.json()["results"]:
            shown[g["id"]] = (g["used_gpu_hours"], g["sync_state"])
    assert shown == expected
    # Filtering by sync state still works (it needs the figures of every grant).
    states = {state for _, state in expected.values()}
    for state in states:
        body = client.get(f"{ORG}grants/?sync={state}&page_size=200").json()
        assert {g["id"] for g in body["results"]} == {k for k, (_, s) in expected.items() if s == state}
