"""Awards against real concurrency (threads on PostgreSQL) and the real provider simulator."""

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from apps.core.exceptions import ApplicationError
from apps.grants import services
from apps.grants.models import Application, AwardLine
from apps.providers.models import QuotaGrant
from tests.factories import PoolPeriodFactory, StaffFactory
from tests.grants.factories import ApplicationFactory, CallFactory


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the race is proven on PostgreSQL")
def test_concurrent_awards_never_exceed_the_call_budget():
    """12 threads, each on its own connection, award 300 h of a 1,000 h budget at once."""
    call = CallFactory(budget={"H200": 1000})
    today = timezone.localdate()
    period = PoolPeriodFactory(
        starts_on=today.replace(day=1), ends_on=services.add_months(today, 6), capacity_gpu_hours="50000"
    )
    applications = [
        ApplicationFactory(call=call, status=Application.Status.SUBMITTED, submitted_at=timezone.now())
        for _ in range(12)
    ]
    staff = StaffFactory()
    barrier = threading.Barrier(len(applications))
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker(application):
        try:
            barrier.wait()
            services.application_award(
                application_id=application.pk,
                actor=staff,
                lines=[(period.pk, "300")],
                valid_from=today,
                valid_until=services.add_months(today, 2),
            )
            result = "awarded"
        except ApplicationError as exc:
            result = exc.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker, args=(a,)) for a in applications]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes.count("awarded") == 3, outcomes
    assert outcomes.count("over_budget") == 9, outcomes
    assert sum(line.gpu_hours for line in AwardLine.objects.all()) == 900
    assert QuotaGrant.objects.filter(source=QuotaGrant.Source.AWARD).count() == 3
    assert Application.objects.filter(status=Application.Status.AWARDED).count() == 3


@pytest.mark.django_db
def test_an_award_is_pushed_to_the_provider_simulator(
    simulator, settings, django_capture_on_commit_callbacks
):
    settings.PROVIDER_SECRETS = {"sakura": simulator.secret}
    today = timezone.localdate()
    period = PoolPeriodFactory(starts_on=today.replace(day=1), ends_on=services.add_months(today, 6))
    provider = period.pool.provider
    provider.api_base_url = simulator.base_url
    provider.api_key_id = simulator.key_id
    provider.save()
    application = ApplicationFactory(status=Application.Status.SUBMITTED, submitted_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        award = services.application_award(
            application_id=application.pk,
            actor=StaffFactory(),
            lines=[(period.pk, "750")],
            valid_from=today,
            valid_until=services.add_months(today, 3),
        )
    grant = award.lines.get().grant
    grant.refresh_from_db()
    assert grant.state == QuotaGrant.State.ACTIVE and grant.applied_version == 1
    quota = simulator.state()["quotas"][str(grant.public_id)]
    assert quota["status"] == "active" and quota["gpu_hours"] == "750.00"
    assert quota["pool"] == period.pool.code
    assert quota["valid_until"].startswith(services.add_months(today, 3).isoformat())
