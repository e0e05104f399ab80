import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from apps.governance.models import AuditEvent
from apps.governance.services import audit_chain_verify, audit_record
from tests.factories import OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def _events(n=5):
    actor = UserFactory()
    org = OrganizationFactory()
    return [
        audit_record(
            actor=actor, action=f"test.step{i}", target=org, before={"i": i}, after={"i": i + 1, "名": "組織"}
        )
        for i in range(n)
    ]


def _tamper(sql, params):
    """Change a row behind the application's back, as an attacker with database access would."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The append-only trigger stops ordinary UPDATEs; a superuser can switch triggers off.
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")


def test_chain_links_each_event_to_its_predecessor():
    events = _events()
    for prev, event in itertools.pairwise(events):
        assert event.prev_hash == prev.hash
    assert events[0].prev_hash == "0" * 64
    report = audit_chain_verify()
    assert report.ok and report.checked == 5


def test_a_tampered_row_is_detected_and_named():
    events = _events()
    _tamper("UPDATE governance_auditevent SET after = %s WHERE id = %s", ['{"i": 999}', events[2].pk])
    report = audit_chain_verify()
    assert not report.ok and report.broken_event_id == events[2].pk
    assert "hash" in report.reason


def test_a_tampered_actor_is_detected():
    events = _events()
    _tamper("UPDATE governance_auditevent SET action = %s WHERE id = %s", ["test.innocent", events[0].pk])
    assert audit_chain_verify().broken_event_id == events[0].pk


def test_a_deleted_row_breaks_the_link_of_the_next_one():
    events = _events()
    _tamper("DELETE FROM governance_auditevent WHERE id = %s", [events[1].pk])
    report = audit_chain_verify()
    assert not report.ok and report.broken_event_id == events[2].pk


def test_truncating_the_tail_is_detected():
    events = _events()
    _tamper("DELETE FROM governance_auditevent WHERE id = %s", [events[-1].pk])
    assert not audit_chain_verify().ok


def test_the_orm_refuses_to_change_or_delete_events():
    event = _events(1)[0]
    event.action = "changed"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
def test_postgresql_refuses_update_and_delete_in_sql():
    event = _events(1)[0]
    for sql in (
        "UPDATE governance_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM governance_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute(sql, [event.pk])


def test_verify_command_reports_the_first_broken_link(capsys):
    events = _events(3)
    call_command("verify_audit_chain")
    assert "3 events" in capsys.readouterr().out
    _tamper("UPDATE governance_auditevent SET target_repr = %s WHERE id = %s", ["forged", events[1].pk])
    with pytest.raises(CommandError, match=f"#{events[1].pk}"):
        call_command("verify_audit_chain")
