"""Filing, changing and withdrawing allocation requests through the API: the allocation services
do the work (audit events, the round must be open); bad input answers 400 with field errors and
writes nothing; plain members and read-only tokens may not write."""

import pytest

from apps.allocations import services as allocation_services
from apps.allocations.models import AllocationRequest
from apps.governance.models import AuditEvent
from tests.api.conftest import JUST, api_client, submit
from tests.api.factories import TokenFactory
from tests.factories import OrgRoleFactory, PoolPeriodFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/organizations/kyoto-u/requests/"


def _create(client, open_round, **fields):
    body = {"round": open_round.pk, "gpu_class": "H200", "demand_gpu_hours": 500, "justification": JUST}
    return client.post(URL, body | fields, format="json")


def test_a_request_is_filed_changed_and_withdrawn(client, owner, org, open_round, pools):
    response = _create(client, open_round, floor_gpu_hours=100, eligible_pools=["osaka-h200"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["round"] == open_round.pk
    assert body["round_status"] == "open"
    assert body["gpu_class"] == "H200"
    assert body["demand_gpu_hours"] == 500
    assert body["floor_gpu_hours"] == 100
    assert body["eligible_pools"] == ["osaka-h200"]
    request = AllocationRequest.objects.get(pk=body["id"])
    assert request.organization == org
    assert request.created_by == owner

    url = f"{URL}{request.pk}/"
    response = client.patch(url, {"demand_gpu_hours": 800}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["demand_gpu_hours"] == 800
    assert response.json()["floor_gpu_hours"] == 100  # kept: PATCH changes only what it is given
    assert response.json()["eligible_pools"] == ["osaka-h200"]

    response = client.put(url, {"demand_gpu_hours": 600, "justification": "推論"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["floor_gpu_hours"] is None  # PUT replaces: left out means none
    assert response.json()["eligible_pools"] == []
    assert response.json()["justification"] == "推論"

    assert client.get(url).json()["demand_gpu_hours"] == 600
    response = client.delete(url)
    assert response.status_code == 204
    assert not AllocationRequest.objects.filter(pk=request.pk).exists()
    actions = list(
        AuditEvent.objects.filter(target_type="allocations.allocationrequest", target_id=str(request.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "allocation_request.submitted",
        "allocation_request.updated",
        "allocation_request.updated",
        "allocation_request.withdrawn",
    ]


def test_a_closed_round_refuses_every_write_with_400(client, owner, org, staff, open_round, pools):
    existing = submit(open_round, org, owner, 100)
    allocation_services.round_close(round_id=open_round.pk, actor=staff)
    message = "Requests can only be filed or changed while the round is open."
    for response in [
        _create(client, open_round, gpu_class="B200"),
        client.patch(f"{URL}{existing.pk}/", {"demand_gpu_hours": 5}, format="json"),
        client.delete(f"{URL}{existing.pk}/"),
    ]:
        assert response.status_code == 400
        assert response.json() == {
            "detail": message,
            "code": "bad_transition",
            "errors": {"non_field_errors": [message]},
        }
    existing.refresh_from_db()
    assert existing.demand_gpu_hours == 100
    assert AllocationRequest.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"demand_gpu_hours": "many"}, "demand_gpu_hours"),
        ({"demand_gpu_hours": 0}, "demand_gpu_hours"),
        ({"demand_gpu_hours": -5}, "demand_gpu_hours"),
        ({"demand_gpu_hours": 1.5}, "demand_gpu_hours"),
        ({"demand_gpu_hours": 10**12}, "demand_gpu_hours"),
        ({"demand_gpu_hours": None}, "demand_gpu_hours"),
        ({"floor_gpu_hours": 900}, "floor_gpu_hours"),
        ({"floor_gpu_hours": -1}, "floor_gpu_hours"),
        ({"justification": ""}, "justification"),
        ({"justification": "x" * 5001}, "justification"),
        ({"eligible_pools": ["atlantis-h200"]}, "eligible_pools"),
        ({"eligible_pools": "osaka-h200"}, "eligible_pools"),
        ({"eligible_pools": [17]}, "eligible_pools"),
        ({"round": "first"}, "round"),
        ({"round": 10**20}, "round"),
        ({"round": 999999}, "round"),
        ({"gpu_class": "x" * 41}, "gpu_class"),
    ],
)
def test_invalid_input_gets_400_with_the_fields_errors(client, open_round, pools, fields, field):
    response = _create(client, open_round, **fields)
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"detail", "code", "errors"}
    assert field in body["errors"], body
    assert body["errors"][field]
    assert not AllocationRequest.objects.exists()


def test_an_unknown_pool_is_named_in_its_error(client, open_round, pools):
    response = _create(client, open_round, eligible_pools=["osaka-h200", "atlantis-h200"])
    assert response.status_code == 400
    errors = response.json()["errors"]["eligible_pools"]
    assert "atlantis-h200" in str(errors)


def test_refusals_of_the_service_get_400_with_their_code(client, owner, org, open_round, pools):
    response = _create(client, open_round, gpu_class="TPU-v9")
    assert (response.status_code, response.json()["code"]) == (400, "unknown_class")
    response = _create(client, open_round, eligible_pools=["tokyo-b200"])
    assert (response.status_code, response.json()["code"]) == (400, "invalid_pools")
    assert "tokyo-b200" in response.json()["detail"]
    submit(open_round, org, owner, 100)
    response = _create(client, open_round)
    assert (response.status_code, response.json()["code"]) == (400, "duplicate")
    assert AllocationRequest.objects.count() == 1


@pytest.mark.parametrize(
    "body", ["not json", "[1, 2]", '"text"', "{"], ids=["text", "list", "string", "truncated"]
)
def test_a_body_that_is_not_a_json_object_gets_400(client, open_round, pools, body):
    response = client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not AllocationRequest.objects.exists()


def test_other_content_types_get_415(client, open_round):
    response = client.post(URL, {"round": open_round.pk}, format="multipart")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_a_plain_member_reads_but_may_not_write(org, open_round, pools, owner):
    existing = submit(open_round, org, owner, 100)
    member = OrgRoleFactory(organization=org, role="member").user
    client = api_client(TokenFactory(user=member, scope="write"))
    assert client.get(URL).status_code == 200
    for response in [
        _create(client, open_round, gpu_class="B200"),
        client.patch(f"{URL}{existing.pk}/", {"demand_gpu_hours": 5}, format="json"),
        client.delete(f"{URL}{existing.pk}/"),
    ]:
        assert response.status_code == 403
        assert response.json()["code"] == "permission_denied"
        assert "オーナーか管理者" in response.json()["detail"]  # the member's language: Japanese
    existing.refresh_from_db()
    assert existing.demand_gpu_hours == 100


def test_an_administrator_may_write(org, open_round, pools):
    admin = OrgRoleFactory(organization=org, role="admin").user
    response = _create(api_client(TokenFactory(user=admin, scope="write")), open_round)
    assert response.status_code == 201


def test_inactive_pools_are_unknown(client, open_round, pools):
    inactive = PoolPeriodFactory(pool__code="retired-h200", pool__is_active=False).pool
    response = _create(client, open_round, eligible_pools=[inactive.code])
    assert response.status_code == 400
    assert "eligible_pools" in response.json()["errors"]


def test_patch_validates_against_the_stored_values(client, owner, org, open_round, pools):
    existing = submit(open_round, org, owner, 500, floor_gpu_hours=400)
    response = client.patch(f"{URL}{existing.pk}/", {"demand_gpu_hours": 100}, format="json")
    assert response.status_code == 400
    assert "floor_gpu_hours" in response.json()["errors"]
    existing.refresh_from_db()
    assert existing.demand_gpu_hours == 500


def test_unknown_request_ids_get_404(client, open_round):
    for method in ("get", "put", "patch", "delete"):
        response = getattr(client, method)(f"{URL}987654/", {}, format="json")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_the_round_and_class_of_a_request_cannot_change(client, owner, org, open_round, pools):
    existing = submit(open_round, org, owner, 100)
    url = f"{URL}{existing.pk}/"
    response = client.patch(url, {"gpu_class": "B200"}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["gpu_class"]
    response = client.put(
        url, {"round": open_round.pk + 1, "demand_gpu_hours": 5, "justification": "x"}, format="json"
    )
    assert list(response.json()["errors"]) == ["round"]
    # Sending them unchanged (as read from GET) is fine.
    body = client.get(url).json() | {"demand_gpu_hours": 150}
    response = client.put(url, body, format="json")
    assert response.status_code == 200, response.content
    existing.refresh_from_db()
    assert (existing.gpu_class, existing.demand_gpu_hours) == ("H200", 150)
