"""Concurrent round creations: only one unpublished round may cover a month, also under a race."""

import datetime
import threading
from itertools import combinations

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.db import connection
from django.test import Client
from django.urls import reverse

from apps.allocations import services
from apps.allocations.models import AllocationRound
from apps.core.exceptions import ApplicationError
from apps.governance.models import AuditEvent
from apps.governance.services import audit_chain_verify
from tests.factories import FairSharePolicyFactory, StaffFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"),
]

Q1 = (datetime.date(2026, 4, 1), datetime.date(2026, 7, 1))
Q2 = (datetime.date(2026, 7, 1), datetime.date(2026, 10, 1))


def _race(work, arguments):
    """Run ``work(argument)`` in one thread per argument, all released at once; their outcomes
    (a result or the exception raised) in the order of ``arguments``."""
    barrier = threading.Barrier(len(arguments))
    outcomes = [None] * len(arguments)

    def run(index, argument):
        try:
            barrier.wait(timeout=30)
            outcomes[index] = work(argument)
        except Exception as exc:
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(arguments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def _create(staff, name, period):
    return services.round_create(
        name=name, fiscal_year=2026, period_start=period[0], period_end=period[1], actor=staff
    )


def test_ten_concurrent_creators_for_the_same_months_one_wins():
    FairSharePolicyFactory(is_default=True)
    staff = StaffFactory()
    outcomes = _race(lambda i: _create(staff, f"R{i}", Q1), list(range(10)))
    winners = [o for o in outcomes if isinstance(o, AllocationRound)]
    losers = [o for o in outcomes if not isinstance(o, AllocationRound)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 9
    for exc in losers:
        assert isinstance(exc, ApplicationError) and exc.code == "overlapping_round", exc
        assert winners[0].name in exc.message
    assert list(AllocationRound.objects.values_list("pk", flat=True)) == [winners[0].pk]
    assert AuditEvent.objects.filter(action="round.created").count() == 1
    assert audit_chain_verify().ok


def test_concurrent_creators_of_adjacent_periods_each_get_one_round():
    FairSharePolicyFactory(is_default=True)
    staff = StaffFactory()
    periods = [Q1, Q2] * 5 + [(datetime.date(2026, 6, 1), datetime.date(2026, 8, 1))] * 2
    outcomes = _race(lambda i: _create(staff, f"R{i}", periods[i]), list(range(len(periods))))
    assert all(isinstance(o, AllocationRound | ApplicationError) for o in outcomes), outcomes
    rounds = list(AllocationRound.objects.all())
    for a, b in combinations(rounds, 2):
        assert a.period_end <= b.period_start or b.period_end <= a.period_start, (a, b)
    # The straddling June-July round excludes both quarters or is excluded by them: 1 or 2 rounds.
    assert 1 <= len(rounds) <= 2
    assert len(rounds) == sum(isinstance(o, AllocationRound) for o in outcomes)


def test_concurrent_form_posts_get_one_round_and_form_errors():
    FairSharePolicyFactory(is_default=True)
    staff = StaffFactory()
    TOTP.activate(staff, generate_totp_secret())
    url = reverse("allocations:round-list")

    def post(i):
        client = Client()
        client.force_login(staff)
        return client.post(
            url,
            {
                "name": f"R{i}",
                "fiscal_year": 2026,
                "period_start": Q1[0].isoformat(),
                "period_end": Q1[1].isoformat(),
                "policy": "",
            },
        )

    responses = _race(post, list(range(10)))
    statuses = sorted(getattr(r, "status_code", r) for r in responses)
    assert statuses == [302] + [400] * 9, statuses
    winner = AllocationRound.objects.get()
    for response in responses:
        if response.status_code == 400:
            page = response.content.decode()
            assert f"ラウンド「{winner.name}」" in page and "この期間の一部をすでに対象としています" in page
