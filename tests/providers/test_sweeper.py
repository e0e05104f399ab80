"""The sweeper hands a row to the broker again only when no message for it can still be on its way:
a pending row enqueued less than OUTBOX_REENQUEUE_SECONDS ago (or whose countdown retry is not due
yet) is left alone; a row whose claim expired (its worker died) is re-enqueued at once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.providers import services
from apps.providers.models import GrantOutbox
from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def row(settings, django_capture_on_commit_callbacks):
    settings.OUTBOX_REENQUEUE_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=False):  # not delivered: the broker "lost" it
        grant = services.grant_create(
            organization=OrganizationFactory(),
            period_id=PoolPeriodFactory().pk,
            gpu_hours="5",
            actor=StaffFactory(),
        )
    return GrantOutbox.objects.get(grant=grant)


def _set(row, **fields):
    GrantOutbox.objects.filter(pk=row.pk).update(**fields)


def test_a_row_never_enqueued_is_swept_at_once(row):
    assert row.enqueued_at is None
    assert row.pk in services.outbox_due_ids()


def test_a_row_enqueued_recently_is_not_enqueued_again_until_the_window_passes(row):
    now = timezone.now()
    _set(row, enqueued_at=now - timedelta(seconds=30))
    assert row.pk not in services.outbox_due_ids()
    _set(row, enqueued_at=now - timedelta(seconds=61))
    assert row.pk in services.outbox_due_ids()


def test_a_countdown_retry_counts_from_when_it_is_due(row):
    _set(row, next_attempt_at=timezone.now())
    services.outbox_mark_enqueued(outbox_id=row.pk, due_in=600)  # a long backoff, message scheduled
    row.refresh_from_db()
    assert row.enqueued_at > timezone.now() + timedelta(seconds=590)
    assert row.pk not in services.outbox_due_ids()


def test_an_expired_claim_is_swept_whatever_was_enqueued(row):
    now = timezone.now()
    _set(row, state="in_flight", claimed_until=now - timedelta(seconds=1), enqueued_at=now)
    assert row.pk in services.outbox_due_ids()
    _set(row, claimed_until=now + timedelta(seconds=30))
    assert row.pk not in services.outbox_due_ids()


def test_sweeping_records_when_it_enqueued_so_the_next_sweep_skips_the_row(row):
    # Eager tasks: the sweep delivers at once (a provider without a URL fails it; beside the point).
    assert services.outbox_sweep() == 1
    row.refresh_from_db()
    assert row.enqueued_at is not None and row.attempts == 1
    _set(row, state="pending", next_attempt_at=timezone.now())  # due again, message "on its way"
    assert services.outbox_sweep() == 0
    _set(row, enqueued_at=timezone.now() - timedelta(seconds=61))
    assert services.outbox_sweep() == 1
