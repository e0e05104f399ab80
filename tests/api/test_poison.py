"""Poison input to the member API: every error is JSON, every 400 carries ``errors``, invalid query
values and unknown parameters are refused rather than ignored, and fuzzed bodies and queries never
write anything or answer 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.allocations.models import AllocationRequest

pytestmark = pytest.mark.django_db
ORG = "/api/v1/organizations/kyoto-u/"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/organizations/kyoto-u%0A/",
        "/api/v1/organizations/kyoto-u/grants/%0A/",
        "/api/v1/%0A",
        "/api/v1/rounds/1%0A/",
        "/api/%0A%0D",
        "/api/nothing-here",
        "/api/v2/organizations/",
    ],
)
def test_odd_paths_under_api_get_a_json_404(client, org, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/rounds/?statuss=open", "statuss"),  # a misspelt filter returned every round
        (f"{ORG}grants/?stat=active", "stat"),
        (f"{ORG}?page=1", "page"),  # not a list
        (f"{ORG}usage/summary/?page_size=5", "page_size"),
        ("/api/v1/rounds/?status=", "status"),
        (f"{ORG}grants/?state=", "state"),
        (f"{ORG}requests/?round=1.5", "round"),
        (f"{ORG}requests/?round=1e3", "round"),
        (f"{ORG}requests/?round=0", "round"),
        (f"{ORG}requests/?round=%205", "round"),
        (f"{ORG}requests/?round=%EF%BC%95", "round"),  # a full-width digit
        ("/api/v1/rounds/?fiscal_year=1999", "fiscal_year"),
        ("/api/v1/rounds/?fiscal_year=2026.0", "fiscal_year"),
        (f"{ORG}grants/?valid_on=2026-4-2", "valid_on"),
        (f"{ORG}grants/?valid_on=04/02/2026", "valid_on"),
        (f"{ORG}grants/?valid_on=2026-02-30", "valid_on"),
        (f"{ORG}grants/?pool=osaka%20h200", "pool"),
        (f"{ORG}grants/?provider=sakura%0A", "provider"),
        (f"{ORG}grants/?gpu_class=H%00200", "gpu_class"),
        (f"{ORG}usage/?grant=%7B12345678-1234-1234-1234-123456789012%7D", "grant"),
        (f"{ORG}usage/?month=%202026-04", "month"),
        (f"{ORG}usage/?month=2026-4", "month"),
        (f"{ORG}usage/summary/?month=2026-04%0A", "month"),
    ],
)
def test_invalid_query_values_get_400_with_errors(client, org, url, field):
    response = client.get(url)
    assert response.status_code == 400, (url, response.content)
    assert field in response.json()["errors"], response.json()


def test_an_invalid_period_gets_400(client, org):
    response = client.get(f"{ORG}statement/?period=FY2026%0A")
    assert response.status_code == 400 and response.json()["errors"]["period"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b'{"round": NaN}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        b"\xff",
    ],
)
def test_malformed_bodies_get_400_with_errors(client, org, open_round, body):
    response = client.generic("POST", f"{ORG}requests/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"]
    assert not AllocationRequest.objects.exists()


def test_a_service_refusal_carries_errors_too(client, org, open_round):
    body = {"round": open_round.pk, "gpu_class": "NOPE", "demand_gpu_hours": 5, "justification": "x"}
    response = client.post(f"{ORG}requests/", body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["non_field_errors"]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "round": JSON,
        "gpu_class": JSON,
        "demand_gpu_hours": JSON,
        "floor_gpu_hours": JSON,
        "justification": JSON,
        "eligible_pools": JSON,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=FIELDS | JSON)
def test_fuzzed_request_bodies_get_400_and_write_nothing(client, org, body):
    """No round is open, so nothing can be valid: every body is refused with errors."""
    response = client.generic("POST", f"{ORG}requests/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"]
    assert not AllocationRequest.objects.exists()


QUERY_NAMES = st.sampled_from(
    ["state", "sync", "pool", "gpu_class", "provider", "source", "valid_on", "page", "page_size", "x"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.lists(st.tuples(QUERY_NAMES, st.text(max_size=12)), max_size=4))
def test_fuzzed_queries_answer_json_200_or_400_never_500(client, org, query):
    from urllib.parse import urlencode

    encoded = urlencode([(name, value.encode("utf-8", "surrogatepass")) for name, value in query])
    response = client.get(f"{ORG}grants/?{encoded}")
    assert response.status_code in (200, 400, 404), response.content
    assert response["Content-Type"] == "application/json"
    if response.status_code == 400:
        assert response.json()["errors"]
