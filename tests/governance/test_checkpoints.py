"""The audit chain is tamper-evident: TRUNCATE is refused, an emptied chain fails, and the chain is
compared with the signed checkpoints every provider keeps (real simulators over HTTP)."""

import time

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from hypothesis import given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st

from apps.governance.checkpoints import audit_checkpoint_send
from apps.governance.models import AuditChainHead, AuditEvent
from apps.governance.services import audit_chain_verify, audit_record
from apps.governance.tasks import audit_checkpoint_send_task
from apps.providers import signing
from tests.factories import OrganizationFactory, ProviderFactory, UserFactory
from tests.providers.simulator_process import SimulatorProcess

pytestmark = pytest.mark.django_db
postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the triggers exist on PostgreSQL only"
)


@pytest.fixture(scope="module")
def _simulators():
    with (
        SimulatorProcess(secret="kddi-secret", key_id="kddi-key") as kddi,
        SimulatorProcess(secret="sakura-secret", key_id="sakura-key") as sakura,
    ):
        yield {"kddi": kddi, "sakura": sakura}


@pytest.fixture
def simulators(_simulators, settings):
    """Two providers, each served by its own simulator (own secret and key id), emptied per test."""
    for sim in _simulators.values():
        sim.reset()
    settings.PROVIDER_SECRETS = {slug: sim.secret for slug, sim in _simulators.items()}
    for slug, sim in _simulators.items():
        ProviderFactory(slug=slug, name_en=slug.upper(), api_base_url=sim.base_url, api_key_id=sim.key_id)
    return _simulators


def _events(n):
    actor = UserFactory()
    org = OrganizationFactory()
    return [audit_record(actor=actor, action=f"test.step{i}", target=org, after={"i": i}) for i in range(n)]


def _as_attacker(*statements):
    """SQL run by someone with full database access, with the triggers switched off (superuser)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        for sql, params in statements:
            cursor.execute(sql, params)
        cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def _held(sim):
    response = sim.request("GET", "/audit/checkpoints?limit=1000")
    assert response.status == 200, response.body
    return response.json()["items"]


# ----- the database refuses --------------------------------------------------------------------------


@postgresql_only
@pytest.mark.parametrize(
    "sql",
    [
        "TRUNCATE governance_auditevent",
        "TRUNCATE governance_auditevent RESTART IDENTITY CASCADE",
        "TRUNCATE governance_auditchainhead",
        "DELETE FROM governance_auditchainhead",
        "UPDATE governance_auditchainhead SET length = 0",
        "UPDATE governance_auditchainhead SET length = length - 1",
    ],
)
def test_postgresql_refuses_to_truncate_or_rewind_the_chain(sql):
    _events(3)
    with (
        pytest.raises(DatabaseError, match=r"append-only|permanent|only grow"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert AuditEvent.objects.count() == 3
    assert AuditChainHead.objects.get().length == 3
    assert audit_chain_verify().ok


@postgresql_only
def test_flush_is_refused_in_production(settings):
    _events(2)
    settings.PRODUCTION = True
    with pytest.raises(CommandError):
        call_command("flush", interactive=False, verbosity=0)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_flush_empties_the_audit_log_outside_production():
    # Every transactional test ends with a flush: it must get past the TRUNCATE triggers.
    _events(2)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists() and not AuditChainHead.objects.exists()


# ----- the chain knows its length ----------------------------------------------------------------------


def test_the_head_counts_the_events_of_the_chain():
    _events(4)
    head = AuditChainHead.objects.get()
    assert head.length == 4 and head.last_hash == AuditEvent.objects.order_by("-id")[0].hash


@postgresql_only
def test_an_emptied_chain_with_a_history_fails_verification(capsys):
    _events(5)
    _as_attacker(("DELETE FROM governance_auditevent", []))
    report = audit_chain_verify()
    assert not report.ok and report.checked == 0
    assert "has 0 events but its head records 5" in report.reason
    with pytest.raises(CommandError, match="head records 5"):
        call_command("verify_audit_chain", "--local")


@postgresql_only
def test_rows_added_behind_the_heads_back_fail_verification():
    [event] = _events(1)
    forged = AuditEvent(
        occurred_at=event.occurred_at, actor_label="x", action="forged", target_type="t", target_id="1"
    )
    forged.prev_hash = event.hash
    forged.hash = forged.compute_hash()
    forged.save(force_insert=True)  # a valid link, but the head was not moved
    report = audit_chain_verify()
    assert not report.ok and "added behind the head" in report.reason
    with pytest.raises(
        CommandError, match="Audit chain broken: the chain has 2 events but its head records 1"
    ):
        call_command("verify_audit_chain", "--local")


# ----- checkpoints at every provider ----------------------------------------------------------------------


def test_every_provider_keeps_a_signed_checkpoint_of_the_head(simulators):
    events = _events(3)
    result = audit_checkpoint_send()
    assert result.sequence == 3 and sorted(result.sent) == ["kddi", "sakura"] and not result.failed
    for sim in simulators.values():
        [held] = _held(sim)
        assert held["sequence"] == 3 and held["hash"] == events[-1].hash
        assert signing.checkpoint_signature_valid(
            secret=sim.secret,
            key_id=sim.key_id,
            sequence=3,
            hash=held["hash"],
            issued_at=held["issued_at"],
            signature=held["signature"],
        )
    report = audit_chain_verify(check_providers=True)
    assert report.ok and report.complete and report.checkpoints_checked == 2
    assert len(report.providers_checked) == 2


def test_the_command_compares_with_every_provider(simulators, capsys):
    _events(2)
    audit_checkpoint_send()
    _events(2)
    audit_checkpoint_send()
    call_command("verify_audit_chain")
    assert "4 events. 4 checkpoints from 2 providers agree" in capsys.readouterr().out


def test_nothing_is_sent_for_an_empty_chain(simulators):
    assert audit_checkpoint_send().sequence is None
    assert all(_held(sim) == [] for sim in simulators.values())


@postgresql_only
def test_delete_all_and_rewrite_is_detected_through_the_checkpoints(simulators):
    _events(5)
    audit_checkpoint_send()
    # The attacker empties the log and its head, then the portal writes on: a fresh chain of one
    # event that verifies on its own.
    _as_attacker(("DELETE FROM governance_auditevent", []), ("DELETE FROM governance_auditchainhead", []))
    _events(1)
    assert audit_chain_verify().ok
    report = audit_chain_verify(check_providers=True)
    assert not report.ok
    assert len(report.checkpoint_problems) == 2
    for name in ("KDDI (kddi)", "SAKURA (sakura)"):
        assert any(
            p.startswith(name) and "checkpoint #5" in p and "ends at event #1" in p
            for p in report.checkpoint_problems
        )
    with pytest.raises(CommandError, match=r"(?s)KDDI \(kddi\) holds checkpoint #5.*SAKURA") as exc:
        call_command("verify_audit_chain")
    assert exc.value.returncode == 1


@postgresql_only
def test_a_rewrite_of_the_same_length_is_detected(simulators):
    _events(4)
    audit_checkpoint_send()
    _as_attacker(("DELETE FROM governance_auditevent", []), ("DELETE FROM governance_auditchainhead", []))
    _events(4)  # four other events: the same length, another history
    assert audit_chain_verify().ok
    report = audit_chain_verify(check_providers=True)
    assert not report.ok
    assert all("checkpoint #4" in p and "was rewritten" in p for p in report.checkpoint_problems)
    assert len(report.checkpoint_problems) == 2
    # The providers keep the first checkpoint they were shown: the rewritten head cannot replace it.
    result = audit_checkpoint_send()
    assert sorted(result.failed) == ["kddi", "sakura"]
    assert all("409" in message for message in result.failed.values())
    assert not audit_chain_verify(check_providers=True).ok


@postgresql_only
def test_a_tampered_row_is_detected_even_with_every_hash_recomputed(simulators):
    events = _events(4)
    audit_checkpoint_send()
    # Plain tampering breaks the chain at the row.
    _as_attacker(("UPDATE governance_auditevent SET after = %s WHERE id = %s", ['{"i": 99}', events[1].pk]))
    report = audit_chain_verify(check_providers=True)
    assert not report.ok and report.broken_event_id == events[1].pk
    # A careful attacker recomputes every hash from there on and moves the head: the chain verifies
    # locally, but the providers' checkpoint of event #4 no longer matches.
    prev = events[0].hash
    statements = []
    for event in AuditEvent.objects.order_by("id")[1:]:
        event.prev_hash = prev
        prev = event.compute_hash()
        statements.append(
            (
                "UPDATE governance_auditevent SET prev_hash = %s, hash = %s WHERE id = %s",
                [event.prev_hash, prev, event.pk],
            )
        )
    statements.append(("UPDATE governance_auditchainhead SET last_hash = %s", [prev]))
    _as_attacker(*statements)
    assert audit_chain_verify().ok
    report = audit_chain_verify(check_providers=True)
    assert not report.ok and len(report.checkpoint_problems) == 2
    assert all("#4" in p and "was rewritten" in p for p in report.checkpoint_problems)


def test_a_forged_checkpoint_is_reported_with_its_provider(simulators):
    events = _events(3)
    audit_checkpoint_send()
    # Somebody at (or pretending to be) one provider slips in checkpoints the portal never signed.
    simulators["sakura"].control(
        "PUT",
        "/audit/checkpoints/2",
        {"hash": events[1].hash, "issued_at": "2026-01-01T00:00:00Z", "signature": "v1=" + "0" * 64},
    )
    other_key = signing.sign_checkpoint(
        secret="kddi-secret",
        key_id="kddi-key",
        sequence=1,
        hash=events[0].hash,
        issued_at="2026-01-01T00:00:00Z",
    )
    simulators["sakura"].control(
        "PUT",
        "/audit/checkpoints/1",
        {"hash": events[0].hash, "issued_at": "2026-01-01T00:00:00Z", "signature": other_key},
    )
    report = audit_chain_verify(check_providers=True)
    assert not report.ok
    assert len(report.checkpoint_problems) == 2
    assert all(
        p.startswith("SAKURA (sakura)") and "signature is not the portal's" in p
        for p in report.checkpoint_problems
    )
    assert {"#1" in p for p in report.checkpoint_problems} == {True, False}
    with pytest.raises(CommandError, match=r"SAKURA \(sakura\) holds checkpoint #2"):
        call_command("verify_audit_chain")


def test_an_unreachable_provider_is_reported_not_passed(simulators, settings, capsys):
    _events(2)
    audit_checkpoint_send()
    ProviderFactory(slug="down", name_en="DOWN", api_base_url="http://127.0.0.1:9/v1", api_key_id="k")
    settings.PROVIDER_SECRETS = {**settings.PROVIDER_SECRETS, "down": "s"}
    report = audit_chain_verify(check_providers=True)
    assert report.ok and not report.complete
    assert len(report.unreachable) == 1 and report.unreachable[0].startswith("DOWN (down): connection failed")
    with pytest.raises(CommandError, match=r"(?s)could not be read from:\n  - DOWN \(down\)") as exc:
        call_command("verify_audit_chain")
    assert exc.value.returncode == 2
    call_command("verify_audit_chain", "--local")
    assert "Audit chain intact: 2 events." in capsys.readouterr().out


def test_a_provider_without_a_secret_is_reported(simulators, settings):
    _events(1)
    settings.PROVIDER_SECRETS = {"kddi": "kddi-secret"}
    settings.PROVIDER_DEMO_SECRETS = False
    assert audit_checkpoint_send().failed == {"sakura": "no shared secret is configured"}
    report = audit_chain_verify(check_providers=True)
    assert report.unreachable == ["SAKURA (sakura): no shared secret is configured"]


def test_a_checkpoint_is_sent_after_every_n_events(simulators, settings, django_capture_on_commit_callbacks):
    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 3
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _events(2)
    assert callbacks == []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _events(2)
    assert len(callbacks) == 1  # the 3rd event crossed the line; the checkpoint names the head then
    for sim in simulators.values():
        assert [c["sequence"] for c in _held(sim)] == [4]


def test_the_beat_schedule_runs_the_checkpoint_task(simulators):
    entry = django_settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert entry["task"] == audit_checkpoint_send_task.name
    _events(2)
    audit_checkpoint_send_task.delay()
    for sim in simulators.values():
        assert [c["sequence"] for c in _held(sim)] == [2]


# ----- the provider's side of the protocol --------------------------------------------------------------


def _signed(sim, sequence, hash, issued_at="2026-12-01T00:00:00Z"):
    return {
        "sequence": sequence,
        "hash": hash,
        "issued_at": issued_at,
        "signature": signing.sign_checkpoint(
            secret=sim.secret, key_id=sim.key_id, sequence=sequence, hash=hash, issued_at=issued_at
        ),
    }


def test_the_simulator_keeps_the_first_checkpoint_of_each_sequence(simulators):
    sim = simulators["kddi"]
    first = _signed(sim, 7, "a" * 64)
    assert sim.request("PUT", "/audit/checkpoints/7", first).status == 200
    again = sim.request("PUT", "/audit/checkpoints/7", _signed(sim, 7, "a" * 64, "2026-12-02T00:00:00Z"))
    assert again.status == 200 and again.json()["issued_at"] == "2026-12-01T00:00:00Z"
    conflict = sim.request("PUT", "/audit/checkpoints/7", _signed(sim, 7, "b" * 64))
    assert conflict.status == 409 and conflict.json()["code"] == "checkpoint_conflict"
    assert conflict.json()["held"]["hash"] == "a" * 64
    assert [(c["sequence"], c["hash"]) for c in _held(sim)] == [(7, "a" * 64)]


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        (
            "/audit/checkpoints/3",
            {"sequence": 4, "hash": "a" * 64, "issued_at": "2026-12-01T00:00:00Z"},
            "invalid",
        ),
        (
            "/audit/checkpoints/0",
            {"sequence": 0, "hash": "a" * 64, "issued_at": "2026-12-01T00:00:00Z"},
            "invalid",
        ),
        (
            "/audit/checkpoints/x",
            {"sequence": 1, "hash": "a" * 64, "issued_at": "2026-12-01T00:00:00Z"},
            "invalid",
        ),
        (
            "/audit/checkpoints/3",
            {"sequence": 3, "hash": "A" * 64, "issued_at": "2026-12-01T00:00:00Z"},
            "invalid",
        ),
        ("/audit/checkpoints/3", {"sequence": 3, "hash": "a" * 64, "issued_at": "yesterday"}, "invalid"),
        (
            "/audit/checkpoints/3",
            {"sequence": True, "hash": "a" * 64, "issued_at": "2026-12-01T00:00:00Z"},
            "invalid",
        ),
    ],
)
def test_the_simulator_refuses_malformed_checkpoints(simulators, path, body, code):
    sim = simulators["kddi"]
    response = sim.request("PUT", path, {**body, "signature": "v1=00"})
    assert response.status == 400 and response.json()["code"] == code
    assert _held(sim) == []


def test_the_simulator_refuses_a_checkpoint_the_portal_did_not_sign(simulators):
    kddi, sakura = simulators["kddi"], simulators["sakura"]
    # Signed for the other provider: a valid request, but not a checkpoint for this key.
    response = kddi.request("PUT", "/audit/checkpoints/3", _signed(sakura, 3, "c" * 64))
    assert response.status == 400 and response.json()["code"] == "bad_checkpoint_signature"
    unsigned_request = kddi.request("PUT", "/audit/checkpoints/3", _signed(kddi, 3, "c" * 64), secret="wrong")
    assert unsigned_request.status == 401
    assert _held(kddi) == []


def test_checkpoints_are_listed_in_pages(simulators):
    sim = simulators["kddi"]
    for sequence in (5, 1, 3):
        assert (
            sim.request("PUT", f"/audit/checkpoints/{sequence}", _signed(sim, sequence, "d" * 64)).status
            == 200
        )
    page = sim.request("GET", "/audit/checkpoints?limit=2").json()
    assert [c["sequence"] for c in page["items"]] == [1, 3] and page["next_cursor"]
    rest = sim.request("GET", f"/audit/checkpoints?limit=2&cursor={page['next_cursor']}").json()
    assert [c["sequence"] for c in rest["items"]] == [5] and rest["next_cursor"] is None
    assert sim.request("GET", "/audit/checkpoints?cursor=!!").status == 400
    assert sim.request("POST", "/audit/checkpoints").status == 405


def test_checkpoint_answers_match_the_openapi_description(simulators):
    jsonschema = pytest.importorskip("jsonschema")
    yaml = pytest.importorskip("yaml")
    document = yaml.safe_load(
        (django_settings.BASE_DIR / "docs" / "provider-api.openapi.yaml").read_text(encoding="utf-8")
    )

    def check(name, instance):
        schema = {"components": document["components"], "$ref": f"#/components/schemas/{name}"}
        jsonschema.Draft202012Validator(schema).validate(instance)

    sim = simulators["kddi"]
    body = _signed(sim, 2, "e" * 64)
    check("CheckpointRequest", body)
    check("Checkpoint", sim.request("PUT", "/audit/checkpoints/2", body).json())
    conflict = sim.request("PUT", "/audit/checkpoints/2", _signed(sim, 2, "f" * 64))
    assert conflict.status == 409
    check("CheckpointConflictError", conflict.json())
    check("CheckpointPage", sim.request("GET", "/audit/checkpoints").json())
    check("ValidationError", sim.request("PUT", "/audit/checkpoints/2", {"sequence": 2}).json())
    check(
        "Error",
        sim.request("PUT", "/audit/checkpoints/3", {**_signed(sim, 3, "e" * 64), "signature": "v1=0"}).json(),
    )
    operations = document["paths"]["/audit/checkpoints/{sequence}"], document["paths"]["/audit/checkpoints"]
    assert "put" in operations[0] and "get" in operations[1]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_sends_the_checkpoint_after_n_events_and_on_the_beat(simulators, settings):
    from tests.providers.worker_process import CeleryWorker, RedisServer, publishing_to

    settings.AUDIT_CHECKPOINT_EVERY_EVENTS = 3
    redis_server = RedisServer().start()
    worker = None
    try:
        with publishing_to(redis_server.url):
            worker = CeleryWorker(
                broker_url=redis_server.url,
                env={"PROVIDER_SECRETS": "kddi=kddi-secret,sakura=sakura-secret"},
                concurrency=2,
            ).start()
            events = _events(3)  # the third one crosses the line: the task is enqueued on commit

            def held_sequences():
                return {slug: [c["sequence"] for c in _held(sim)] for slug, sim in simulators.items()}

            deadline = time.monotonic() + 60
            while held_sequences() != {"kddi": [3], "sakura": [3]} and time.monotonic() < deadline:
                time.sleep(0.2)
            assert held_sequences() == {"kddi": [3], "sakura": [3]}
            assert _held(simulators["kddi"])[0]["hash"] == events[-1].hash

            _events(1)  # below the next line: nothing sent until the beat runs the task
            audit_checkpoint_send_task.delay()
            deadline = time.monotonic() + 60
            while held_sequences() != {"kddi": [3, 4], "sakura": [3, 4]} and time.monotonic() < deadline:
                time.sleep(0.2)
            assert held_sequences() == {"kddi": [3, 4], "sakura": [3, 4]}
        assert audit_chain_verify(check_providers=True).ok
    finally:
        if worker is not None:
            worker.stop()
        redis_server.close()


def test_checkpoints_survive_a_restart_and_a_secret_rotation(settings, tmp_path):
    db = tmp_path / "provider.sqlite3"
    provider = ProviderFactory(slug="rot", name_en="ROT", api_key_id="key-1")
    settings.PROVIDER_SECRETS = {"rot": "secret-1"}
    with SimulatorProcess(secret="secret-1", key_id="key-1", db=db) as sim:
        provider.api_base_url = sim.base_url
        provider.save()
        _events(2)
        assert audit_checkpoint_send().sent == ["rot"]
    # The provider restarts with a new secret and key id; it still holds what it was shown.
    with SimulatorProcess(secret="secret-2", key_id="key-2", db=db) as sim:
        provider.api_base_url, provider.api_key_id = sim.base_url, "key-2"
        provider.save()
        settings.PROVIDER_SECRETS = {"rot": "secret-2"}
        _events(1)
        assert audit_checkpoint_send().sent == ["rot"]
        assert [c["sequence"] for c in _held(sim)] == [2, 3]
        # Without the retired key the old checkpoint cannot be told from a forgery: reported.
        report = audit_chain_verify(check_providers=True)
        assert not report.ok
        assert len(report.checkpoint_problems) == 1
        assert report.checkpoint_problems[0].startswith("ROT (rot) holds checkpoint #2")
        assert "signature is not the portal's" in report.checkpoint_problems[0]
        settings.AUDIT_CHECKPOINT_RETIRED_KEYS = {"rot": [("key-1", "secret-1")]}
        report = audit_chain_verify(check_providers=True)
        assert report.ok and report.checkpoints_checked == 2


def test_the_command_says_when_no_provider_holds_checkpoints(capsys):
    _events(2)
    ProviderFactory(slug="no-api", api_base_url="")  # no API: nothing to ask
    call_command("verify_audit_chain")
    assert "2 events. No provider has an API to hold checkpoints" in capsys.readouterr().out


# ----- hostile answers and input ----------------------------------------------------------------------


@pytest.fixture
def hostile_provider(settings):
    """A provider whose API answers GET /v1/audit/checkpoints with whatever ``answer["body"]`` is (a
    real HTTP server on loopback, standing in for a broken or malicious provider)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answer = {"body": {"items": [], "next_cursor": None}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            payload = (
                answer["body"] if isinstance(answer["body"], bytes) else json.dumps(answer["body"]).encode()
            )
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.PROVIDER_SECRETS = {"bad": "bad-secret"}
    ProviderFactory(
        slug="bad", name_en="BAD", api_base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key_id="k"
    )
    yield answer
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"items": [], "next_cursor": "again"}, "cursor does not advance"),
        ({"items": [{"sequence": "1", "hash": "a"}], "next_cursor": None}, "unexpected checkpoint"),
        (
            {"items": [{"sequence": True, "hash": "a", "issued_at": "x", "signature": "y"}]},
            "unexpected checkpoint",
        ),
        ({"items": "all of them"}, "unexpected answer"),
        ([1, 2, 3], "not an object"),
        (b"<html>", "invalid JSON"),
    ],
)
def test_a_provider_answering_nonsense_is_reported_by_name(hostile_provider, body, expected):
    _events(1)
    hostile_provider["body"] = body
    report = audit_chain_verify(check_providers=True)
    assert report.ok and not report.complete
    assert len(report.unreachable) == 1
    assert report.unreachable[0].startswith("BAD (bad): ") and expected in report.unreachable[0]


def test_checkpoints_of_a_provider_the_portal_never_signed_are_each_reported(hostile_provider):
    _events(1)
    hostile_provider["body"] = {
        "items": [
            {"sequence": n, "hash": h, "issued_at": "2026-01-01T00:00:00Z", "signature": s}
            for n, h, s in [(1, "0" * 64, "v1=" + "0" * 64), (2, {"a": 1}, ["x"]), (-5, "", "")]
        ],
        "next_cursor": None,
    }
    report = audit_chain_verify(check_providers=True)
    assert not report.ok and len(report.checkpoint_problems) == 3
    assert all("BAD (bad)" in p and "signature is not the portal's" in p for p in report.checkpoint_problems)


@settings_hypothesis(max_examples=60, deadline=None)
@given(
    body=st.one_of(
        st.dictionaries(
            st.sampled_from(["sequence", "hash", "issued_at", "signature", "x"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
                lambda children: (
                    st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children)
                ),
                max_leaves=5,
            ),
        ),
        st.lists(st.integers(), max_size=3),
        st.text(max_size=40),
    ),
    sequence=st.sampled_from(["1", "0", "-1", "x", "99999999999999999999", "%00", "1.5"]),
)
def test_the_simulator_refuses_any_bad_checkpoint_with_a_4xx(_simulators, body, sequence):
    sim = _simulators["kddi"]
    before = sim.request("GET", "/audit/checkpoints?limit=1000").json()["items"]
    response = sim.request("PUT", f"/audit/checkpoints/{sequence}", body)
    # Nothing the portal did not sign is stored, whatever the body: a clear 4xx, never a 500.
    assert 400 <= response.status < 500, response.body
    assert response.json()["code"] in ("invalid", "bad_checkpoint_signature", "not_found")
    assert sim.request("GET", "/audit/checkpoints?limit=1000").json()["items"] == before
