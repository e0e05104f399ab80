"""The provider simulator over real HTTP: protocol rules, signatures, idempotency, faults."""

import re
import subprocess
import sys
import threading
import time
from datetime import datetime

import pytest

from apps.providers import signing
from tests.providers.simulator_process import ROOT, SimulatorProcess

DECIMAL = re.compile(r"\d+(\.\d+)?")


def quota(grant_id: str, version: int = 1, **changes) -> dict:
    body = {
        "grant_id": grant_id,
        "version": version,
        "organization": {"id": "neuroforge-inc", "name": "株式会社ニューロフォージ"},
        "pool": "sakura-ishikari-h200",
        "gpu_class": "H200",
        "gpu_hours": "1200.00",
        "valid_from": "2026-04-01T00:00:00Z",
        "valid_until": "2026-07-01T00:00:00Z",
    }
    body.update(changes)
    return body


def put(sim, grant_id: str, version: int = 1, key: str | None = None, **changes):
    return sim.request("PUT", f"/quotas/{grant_id}", quota(grant_id, version, **changes), idempotency_key=key)


def delete(sim, grant_id: str, version: int, key: str | None = None):
    return sim.request("DELETE", f"/quotas/{grant_id}?version={version}", idempotency_key=key)


# ----- signatures ---------------------------------------------------------------------------------


def test_signed_request_accepted_within_the_window(simulator):
    assert simulator.request("GET", "/quotas", timestamp=int(time.time()) - 200).status == 200


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"secret": "wrong-secret"}, "signature does not match"),
        ({"key_id": "other"}, "unknown key id"),
        ({"timestamp_offset": -400}, "replay window"),
        ({"timestamp_offset": 400}, "replay window"),
        ({"headers": {signing.HEADER_SIGNATURE: None, signing.HEADER_TIMESTAMP: None}}, "missing"),
        ({"headers": {signing.HEADER_KEY_ID: None}}, "missing key id"),
        ({"headers": {signing.HEADER_SIGNATURE: "v1=" + "é" * 64}}, "signature does not match"),
        ({"headers": {signing.HEADER_SIGNATURE: "v2=abc"}}, "unknown signature version"),
    ],
)
def test_bad_signature_refused_with_nothing_applied(simulator, kwargs, reason):
    kwargs = dict(kwargs)
    if "timestamp_offset" in kwargs:  # relative to now, not to when the tests were collected
        kwargs["timestamp"] = int(time.time()) + kwargs.pop("timestamp_offset")
    response = simulator.request("PUT", "/quotas/g1", quota("g1"), **kwargs)
    assert response.status == 401
    assert response.json()["code"] == "bad_signature"
    assert reason in response.json()["error"]
    assert simulator.state()["quotas"] == {}


def test_signature_covers_body_and_query(simulator):
    signed_for = signing.sign(secret="test-secret", method="PUT", path="/v1/quotas/g1", body=b'{"a": 1}')
    headers = {signing.HEADER_KEY_ID: "test", signing.HEADER_IDEMPOTENCY_KEY: "k", **signed_for}
    tampered = simulator._http("PUT", "/v1/quotas/g1", b'{"a": 2}', headers, 5)
    assert tampered.status == 401
    signed_for = signing.sign(secret="test-secret", method="GET", path="/v1/quotas?limit=1", body=b"")
    headers = {signing.HEADER_KEY_ID: "test", **signed_for}
    assert simulator._http("GET", "/v1/quotas?limit=2", b"", headers, 5).status == 401
    assert simulator._http("GET", "/v1/quotas?limit=1", b"", headers, 5).status == 200


# ----- quotas: versions ---------------------------------------------------------------------------


def test_put_creates_and_same_version_is_a_noop(simulator):
    first = put(simulator, "g1")
    assert first.status == 200
    body = first.json()
    assert body["grant_id"] == "g1"
    assert body["version"] == 1
    assert body["status"] == "active"
    assert body["gpu_hours"] == "1200.00"
    assert body["organization"]["name"] == "株式会社ニューロフォージ"
    assert datetime.fromisoformat(body["applied_at"])

    again = put(simulator, "g1", gpu_hours="9.00")  # same version, another key: no change
    assert again.status == 200
    assert again.json() == body
    state = simulator.state()
    assert state["effects"] == {"g1:1:apply": 1}
    assert state["quotas"]["g1"]["gpu_hours"] == "1200.00"


def test_higher_version_replaces_and_lower_is_stale(simulator):
    put(simulator, "g1")
    replaced = put(simulator, "g1", 2, gpu_hours="1500.50", pool="other-pool")
    assert replaced.status == 200
    assert replaced.json()["version"] == 2
    assert replaced.json()["gpu_hours"] == "1500.50"

    stale = put(simulator, "g1", 1, gpu_hours="1.00")
    assert stale.status == 409
    assert stale.json()["code"] == "stale_version"
    assert stale.json()["current_version"] == 2
    state = simulator.state()
    assert state["quotas"]["g1"]["version"] == 2
    assert state["quotas"]["g1"]["pool"] == "other-pool"
    assert state["effects"] == {"g1:1:apply": 1, "g1:2:apply": 1}


def test_idempotency_key_replays_the_stored_answer_without_effect(simulator):
    first = put(simulator, "g1", 1, key="grant-g1-v1")
    put(simulator, "g1", 2, key="grant-g1-v2")
    replay = put(simulator, "g1", 1, key="grant-g1-v1")
    assert replay.status == 200
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == first.json()  # the stored answer, although the quota moved on to v2
    state = simulator.state()
    assert state["quotas"]["g1"]["version"] == 2
    assert state["effects"] == {"g1:1:apply": 1, "g1:2:apply": 1}


def test_idempotency_key_required_and_not_reusable_for_another_request(simulator):
    missing = simulator.request("PUT", "/quotas/g1", quota("g1"), auto_idempotency_key=False)
    assert missing.status == 400
    assert "Idempotency-Key" in missing.json()["error"]
    assert put(simulator, "g1", key="k1").status == 200
    reused = delete(simulator, "g1", 2, key="k1")
    assert reused.status == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert simulator.state()["quotas"]["g1"]["status"] == "active"


def test_same_version_pushed_concurrently_has_one_effect(simulator):
    answers = []

    def push(key):
        answers.append(put(simulator, "g1", 1, key=key).status)

    threads = [threading.Thread(target=push, args=(f"k{i % 4}",)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 16
    assert simulator.state()["effects"] == {"g1:1:apply": 1}


# ----- quotas: revocation -------------------------------------------------------------------------


def test_delete_revokes_idempotently(simulator):
    put(simulator, "g1")
    revoked = delete(simulator, "g1", 2, key="revoke-g1-v2")
    assert revoked.status == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["version"] == 2
    assert delete(simulator, "g1", 2).json()["status"] == "revoked"  # another key: no new effect
    replay = delete(simulator, "g1", 2, key="revoke-g1-v2")
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json() == revoked.json()
    state = simulator.state()
    assert state["quotas"]["g1"]["status"] == "revoked"
    assert state["effects"] == {"g1:1:apply": 1, "g1:2:revoke": 1}


def test_revoked_stays_revoked_up_to_the_revoked_version(simulator):
    put(simulator, "g1")
    delete(simulator, "g1", 2)
    late = put(simulator, "g1", 1)
    assert late.status == 409
    assert late.json()["current_version"] == 2
    same = put(simulator, "g1", 2)
    assert same.status == 200
    assert same.json()["status"] == "revoked"
    regranted = put(simulator, "g1", 3)
    assert regranted.json()["status"] == "active"
    assert simulator.state()["effects"] == {"g1:1:apply": 1, "g1:2:revoke": 1, "g1:3:apply": 1}


def test_revoking_an_unknown_quota_leaves_a_tombstone(simulator):
    revoked = delete(simulator, "g9", 3)
    assert revoked.status == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["version"] == 3
    assert put(simulator, "g9", 2).status == 409
    assert put(simulator, "g9", 3).json()["status"] == "revoked"
    assert simulator.state()["effects"] == {"g9:3:revoke": 1}


def test_revoking_with_an_older_version_than_the_active_one_is_stale(simulator):
    put(simulator, "g1", 5)
    stale = delete(simulator, "g1", 4)
    assert stale.status == 409
    assert stale.json()["current_version"] == 5
    assert simulator.state()["quotas"]["g1"]["status"] == "active"


# ----- validation and routing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (quota("other"), "grant_id"),
        (quota("g1", 0), "version"),
        (quota("g1", True), "version"),
        (quota("g1", organization="neuroforge"), "organization"),
        (quota("g1", organization={"name": "x"}), "organization.id"),
        (quota("g1", pool=""), "pool"),
        (quota("g1", gpu_hours=1200), "gpu_hours"),
        (quota("g1", gpu_hours="-1.00"), "gpu_hours"),
        (quota("g1", valid_from="2026-04-01"), "valid_from"),
        (quota("g1", valid_until="2026-03-01T00:00:00+09:00"), "valid_until"),
        ({k: v for k, v in quota("g1").items() if k != "gpu_class"}, "gpu_class"),
    ],
)
def test_invalid_quota_refused(simulator, body, field):
    if isinstance(body, bytes):
        response = simulator.request("PUT", "/quotas/g1", raw_body=body)
    else:
        response = simulator.request("PUT", "/quotas/g1", body)
    assert response.status == 400
    assert response.json()["code"] == "invalid"
    if field:
        assert field in response.json()["fields"]
        assert field in response.json()["error"]
    assert simulator.state()["quotas"] == {}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("DELETE", "/quotas/g1", 400),
        ("DELETE", "/quotas/g1?version=0", 400),
        ("DELETE", "/quotas/g1?version=x", 400),
        ("PUT", "/quotas/bad%20id", 400),
        ("GET", "/quotas?limit=0", 400),
        ("GET", "/quotas?limit=1001", 400),
        ("GET", "/quotas?cursor=%%%", 400),
        ("GET", "/usage?cursor=bm9wZQ", 400),
        ("GET", "/nothing", 404),
        ("POST", "/quotas/g1", 405),
        ("GET", "/quotas/g1", 405),
    ],
)
def test_bad_requests_answer_json_errors(simulator, method, path, status):
    response = simulator.request(method, path, quota("g1") if method == "PUT" else None)
    assert response.status == status
    assert response.json()["error"]
    if status == 405:
        assert "PUT" in response.headers["Allow"]


# ----- listing and usage --------------------------------------------------------------------------


def test_list_quotas_pages_by_grant_id_with_a_cursor(simulator):
    for grant_id in ["g-4", "g-2", "g-5", "g-1", "g-3"]:
        put(simulator, grant_id)
    delete(simulator, "g-3", 2)
    seen, cursor, pages = [], None, 0
    while True:
        response = simulator.request("GET", "/quotas?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert response.status == 200
        page = response.json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert [item["grant_id"] for item in seen] == ["g-1", "g-2", "g-3", "g-4", "g-5"]
    assert {item["status"] for item in seen if item["grant_id"] == "g-3"} == {"revoked"}
    item = seen[0]
    assert {"grant_id", "version", "status", "gpu_hours", "pool", "valid_from", "valid_until"} <= set(item)
    assert len(simulator.request("GET", "/quotas").json()["items"]) == 5


def test_usage_generation_and_cursor_paging(simulator):
    put(simulator, "g1", valid_from="2026-04-01T00:00:00Z", valid_until="2026-04-01T02:00:00Z")
    put(simulator, "g2")
    put(simulator, "g3")
    delete(simulator, "g3", 2)
    assert simulator.generate_usage(3) == {"created": 6, "total": 6}

    first = simulator.request("GET", "/usage?limit=4").json()
    assert len(first["records"]) == 4
    second = simulator.request("GET", f"/usage?limit=4&cursor={first['next_cursor']}").json()
    assert len(second["records"]) == 2
    records = first["records"] + second["records"]
    assert len({record["record_id"] for record in records}) == 6
    assert {record["grant_id"] for record in records} == {"g1", "g2"}  # revoked quotas use nothing
    for record in records:
        assert set(record) == {"record_id", "grant_id", "gpu_hours", "started_at", "ended_at"}
        assert DECIMAL.fullmatch(record["gpu_hours"])
        assert datetime.fromisoformat(record["started_at"]) < datetime.fromisoformat(record["ended_at"])
        if record["grant_id"] == "g1":
            assert record["started_at"] >= "2026-04-01T00:00:00Z"
            assert record["ended_at"] <= "2026-04-01T02:00:00Z"

    nothing_new = simulator.request("GET", f"/usage?cursor={second['next_cursor']}").json()
    assert nothing_new == {"records": [], "next_cursor": second["next_cursor"]}
    simulator.generate_usage(1, grant_ids=["g2"])
    newer = simulator.request("GET", f"/usage?cursor={second['next_cursor']}").json()
    assert [record["grant_id"] for record in newer["records"]] == ["g2"]
    assert newer["records"][0]["record_id"] not in {record["record_id"] for record in records}


def test_usage_cursor_from_before_a_reset_starts_over(simulator):
    put(simulator, "g1")
    simulator.generate_usage(2)
    cursor = simulator.request("GET", "/usage").json()["next_cursor"]
    simulator.reset()
    put(simulator, "g1")
    simulator.generate_usage(1)
    assert len(simulator.request("GET", f"/usage?cursor={cursor}").json()["records"]) == 1


# ----- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_error_faults_apply_nothing(simulator, status):
    simulator.configure(fail_rate=1, faults=[str(status)])
    response = put(simulator, "g1")
    assert response.status == status
    assert response.json()["error"]
    if status == 503:
        assert response.headers["Retry-After"] == "1"
    state = simulator.state()
    assert state["quotas"] == {}
    assert state["requests"]["by_fault"] == {str(status): 1}


def test_drop_fault_closes_without_answer_and_applies_nothing(simulator):
    simulator.configure(fail_rate=1, faults=["drop"])
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        simulator.request("PUT", "/quotas/g1", quota("g1"), timeout=2)
    assert time.monotonic() - started < 0.5
    assert simulator.state()["quotas"] == {}


def test_timeout_fault_hangs_then_closes_and_applies_nothing(simulator):
    simulator.configure(fail_rate=1, faults=["timeout"])  # hang_seconds=1 in the fixture
    with pytest.raises(TimeoutError):
        simulator.request("PUT", "/quotas/g1", quota("g1"), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        simulator.request("PUT", "/quotas/g1", quota("g1"), timeout=3)
    assert 0.9 < time.monotonic() - started < 2.5
    state = simulator.state()
    assert state["quotas"] == {}
    assert state["requests"]["by_fault"] == {"timeout": 2}
    assert state["requests"]["by_status"] == {"no_answer": 2}


def test_slow_fault_answers_late_but_normally(simulator):
    simulator.configure(fail_rate=1, faults=["slow"], slow_seconds=0.3)
    started = time.monotonic()
    assert put(simulator, "g1").status == 200
    assert time.monotonic() - started >= 0.3
    assert simulator.state()["effects"] == {"g1:1:apply": 1}


def test_lost_fault_applies_the_change_but_drops_the_answer(simulator):
    simulator.configure(fail_rate=1, faults=["lost"])
    with pytest.raises(ConnectionError):
        put(simulator, "g1", key="grant-g1-v1")
    state = simulator.state()
    assert state["quotas"]["g1"]["status"] == "active"
    assert state["effects"] == {"g1:1:apply": 1}

    simulator.configure(fail_rate=0)
    retry = put(simulator, "g1", key="grant-g1-v1")
    assert retry.status == 200
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json()["version"] == 1
    assert simulator.state()["effects"] == {"g1:1:apply": 1}


def test_latency_delays_the_api_but_not_the_control_endpoints(simulator):
    simulator.configure(latency=0.2, fail_rate=1, faults=["drop"])
    started = time.monotonic()
    simulator.health()
    assert simulator.state()["config"]["latency"] == 0.2  # control endpoints: never faulted, no latency
    assert time.monotonic() - started < 0.2
    simulator.configure(fail_rate=0)
    started = time.monotonic()
    assert simulator.request("GET", "/quotas").status == 200
    assert time.monotonic() - started >= 0.2


def test_fail_rate_mixes_enabled_faults(simulator):
    simulator.configure(fail_rate=0.5, faults=["500", "503"])
    statuses = [simulator.request("GET", "/quotas").status for _ in range(60)]
    faulted = sum(status != 200 for status in statuses)
    assert 10 < faulted < 50
    requests = simulator.state()["requests"]
    assert requests["total"] == 60
    assert requests["by_fault"]["none"] == 60 - faulted
    assert requests["by_fault"].get("500", 0) == statuses.count(500)
    assert requests["by_fault"].get("503", 0) == statuses.count(503)


def test_config_validated_and_reset_restores_start_settings(simulator):
    assert simulator.control("POST", "/config", {"fail_rate": 2}).status == 400
    assert simulator.control("POST", "/config", {"faults": ["nope"]}).status == 400
    assert simulator.control("POST", "/config", {"colour": "red"}).status == 400
    put(simulator, "g1")
    assert simulator.configure(fail_rate=0.7, faults="500,lost", latency=0.1)["faults"] == ["500", "lost"]
    simulator.reset()
    state = simulator.state()
    assert state["quotas"] == {}
    assert state["effects"] == {}
    assert state["requests"]["total"] == 0
    assert state["config"]["fail_rate"] == 0
    assert state["config"]["latency"] == 0
    assert state["config"]["faults"] == ["500", "503", "timeout", "drop", "slow", "lost"]


def test_forced_and_forgotten_quotas_make_drift(simulator):
    put(simulator, "g1")
    simulator.force_quota("g2", version=7, gpu_hours="5.00", pool="p")
    assert simulator.forget_quota("g1") is True
    items = simulator.request("GET", "/quotas").json()["items"]
    assert [(item["grant_id"], item["version"], item["gpu_hours"]) for item in items] == [("g2", 7, "5.00")]
    assert simulator.state()["effects"] == {"g1:1:apply": 1}  # forced changes are not effects


# ----- the OpenAPI description ------------------------------------------------------------------------


def test_answers_match_the_openapi_description(simulator):
    jsonschema = pytest.importorskip("jsonschema")  # both come with drf-spectacular
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load((ROOT / "docs" / "provider-api.openapi.yaml").read_text(encoding="utf-8"))

    def check(name, instance):
        schema = {"components": document["components"], "$ref": f"#/components/schemas/{name}"}
        jsonschema.Draft202012Validator(schema).validate(instance)

    check("QuotaRequest", quota("g1"))
    check("Quota", put(simulator, "g1").json())
    check("Quota", delete(simulator, "g1", 2).json())
    check("Quota", delete(simulator, "g2", 1).json())  # a tombstone
    stale = put(simulator, "g1", 1)
    assert stale.status == 409
    check("StaleVersionError", stale.json())
    check("ValidationError", put(simulator, "g4", gpu_hours="lots").json())
    check("Error", simulator.request("GET", "/quotas", secret="nope").json())
    check("QuotaPage", simulator.request("GET", "/quotas?limit=2").json())
    simulator.generate_usage(2)
    page = simulator.request("GET", "/usage").json()
    check("UsagePage", page)
    check("UsagePush", {"records": page["records"]})


# ----- the process --------------------------------------------------------------------------------


def test_sqlite_file_keeps_state_across_restarts(tmp_path):
    db = tmp_path / "provider.sqlite3"
    with SimulatorProcess(db=db) as sim:
        assert put(sim, "g1", key="grant-g1-v1").status == 200
        assert sim.stop() == 0  # SIGTERM: a clean shutdown
    with SimulatorProcess(db=db) as sim:
        assert sim.state()["quotas"]["g1"]["version"] == 1
        replay = put(sim, "g1", key="grant-g1-v1")
        assert replay.headers.get("Idempotent-Replayed") == "true"
        assert sim.state()["effects"] == {"g1:1:apply": 1}


def test_command_refuses_a_non_loopback_address():
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "provider_simulator",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--secret",
            "s",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "loopback" in result.stderr
