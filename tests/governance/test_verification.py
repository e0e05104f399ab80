"""The chain's verification against the providers' checkpoints runs in a worker and is kept, so the
audit log page and /metrics show the latest verdict without calling providers inside a request."""

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from apps.governance.checkpoints import audit_checkpoint_send
from apps.governance.models import AuditVerification
from apps.governance.services import audit_verification_request, audit_verification_run
from tests.factories import UserFactory
from tests.governance.test_checkpoints import _as_attacker, _events, _simulators, postgresql_only, simulators

pytestmark = pytest.mark.django_db
__all__ = ["_simulators", "simulators"]  # fixtures shared with test_checkpoints


def _verify_now(staff_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(reverse("reports:audit-verify"))
    assert response.status_code == 302
    return AuditVerification.objects.get()


def _intact_gauge(client) -> float:
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t")
    for family in text_string_to_metric_families(response.content.decode()):
        if family.name == "portal_audit_chain_intact":
            return family.samples[0].value
    raise AssertionError("portal_audit_chain_intact missing")


def test_verify_now_runs_in_a_worker_and_the_page_shows_the_verdict(
    simulators, staff_client, staff, django_capture_on_commit_callbacks, client, settings
):
    settings.METRICS_TOKEN = "t"
    assert _intact_gauge(client) == -1  # never verified
    _events(3)
    audit_checkpoint_send()
    verification = _verify_now(staff_client, django_capture_on_commit_callbacks)
    assert verification.outcome == AuditVerification.Outcome.INTACT
    assert verification.requested_by == staff
    assert verification.events_checked == 3
    assert verification.checkpoints_checked == 2  # one per provider
    assert sorted(verification.providers_checked) == ["KDDI (kddi)", "SAKURA (sakura)"]
    page = staff_client.get(reverse("reports:audit-log")).content.decode()
    assert "事業者のチェックポイントとの照合" in page
    assert "badge-verification-intact" in page
    assert "チェックポイント 2 件を照合しました" in page
    assert _intact_gauge(client) == 1


@postgresql_only
def test_a_rewritten_history_shows_as_broken_on_the_page_and_in_the_metrics(
    simulators, staff_client, django_capture_on_commit_callbacks, client, settings
):
    settings.METRICS_TOKEN = "t"
    _events(5)
    audit_checkpoint_send()
    _as_attacker(("DELETE FROM governance_auditevent", []), ("DELETE FROM governance_auditchainhead", []))
    _events(1)
    verification = _verify_now(staff_client, django_capture_on_commit_callbacks)
    assert verification.outcome == AuditVerification.Outcome.BROKEN
    assert len(verification.problems) == 2
    page = staff_client.get(reverse("reports:audit-log")).content.decode()
    assert "badge-verification-broken" in page
    assert "KDDI (kddi) holds checkpoint #5" in page
    assert _intact_gauge(client) == 0


def test_an_unreachable_provider_makes_the_verdict_incomplete(simulators, settings):
    _events(2)
    audit_checkpoint_send()
    from apps.providers.models import Provider

    Provider.objects.filter(slug="kddi").update(api_base_url="http://127.0.0.1:9/")
    verification = audit_verification_run()
    assert verification.outcome == AuditVerification.Outcome.INCOMPLETE
    assert verification.unreachable and "kddi" in verification.unreachable[0]
    assert verification.finished_at is not None


def test_a_second_request_while_one_runs_starts_nothing(simulators, staff):
    first = audit_verification_request(actor=staff)  # its task runs only after commit: still running
    again = audit_verification_request(actor=staff)
    assert again.pk == first.pk
    assert AuditVerification.objects.count() == 1
    # A retried task does not run a finished verification again.
    done = audit_verification_run(verification_id=first.pk)
    assert done.outcome == AuditVerification.Outcome.INTACT
    assert audit_verification_run(verification_id=first.pk).finished_at == done.finished_at


def test_only_staff_may_ask_and_only_by_post(staff_client):
    from django.test import Client

    client = Client()
    client.force_login(UserFactory())
    assert client.post(reverse("reports:audit-verify")).status_code == 404
    assert client.get(reverse("reports:audit-log")).status_code == 404
    assert staff_client.get(reverse("reports:audit-verify")).status_code == 405
    assert not AuditVerification.objects.exists()


def test_the_beat_verifies_the_chain_daily():
    entry = django_settings.CELERY_BEAT_SCHEDULE["audit-verify"]
    assert entry["task"] == "apps.governance.tasks.audit_verification_run_task"
