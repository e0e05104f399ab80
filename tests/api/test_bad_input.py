"""Odd query strings and bodies on every endpoint answer 200, 400 or 404 in JSON: never a 500."""

import pytest

from apps.allocations.models import AllocationRequest

pytestmark = pytest.mark.django_db
ORG = "/api/v1/organizations/kyoto-u/"
QUERIES = [
    "round=abc",
    "round=1e400",
    "round=99999999999999999999999",
    "round=-1",
    "round=NaN",
    "round=1.5",
    "fiscal_year=99999999999999999999",
    "fiscal_year=NaN",
    "fiscal_year=Infinity",
    "valid_on=9999-99-99",
    "page_size=-5",
    "page=1e3",
    "gpu_class=%00",
    "pool=%00",
    "month=2026-04%00",
    "grant=%00",
    "status=%00",
    "sync=%00&state=%00",
]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/organizations/",
        "/api/v1/rounds/",
        f"{ORG}requests/",
        f"{ORG}grants/",
        f"{ORG}usage/",
        f"{ORG}usage/summary/",
    ],
)
def test_odd_query_strings_never_fail(client, org, url):
    for query in QUERIES:
        response = client.get(f"{url}?{query}")
        assert response.status_code in (200, 400, 404), (url, query, response.status_code)
        assert response["Content-Type"] == "application/json", (url, query)


@pytest.mark.parametrize(
    "fields",
    [
        {"gpu_class": "H\x00200"},
        {"justification": "\x00"},
        {"eligible_pools": ["osaka\x00"]},
        {"eligible_pools": [None]},
        {"eligible_pools": [["osaka-h200"]]},
        {"eligible_pools": {"a": 1}},
        {"floor_gpu_hours": "1e3"},
        {"demand_gpu_hours": True},
        {"demand_gpu_hours": "NaN"},
        {"round": None},
        {"round": [1]},
    ],
)
def test_odd_bodies_get_400(client, open_round, pools, fields):
    body = {"round": open_round.pk, "gpu_class": "H200", "demand_gpu_hours": 10, "justification": "x"}
    response = client.post(f"{ORG}requests/", body | fields, format="json")
    assert response.status_code == 400, (fields, response.content)
    assert response.json()["errors"]
    assert not AllocationRequest.objects.exists()
