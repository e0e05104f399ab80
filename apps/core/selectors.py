"""Operational reads: is anything consuming the delivery queue? Constant query counts: the health
endpoint is polled by load balancers and must stay cheap whatever the size of the tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.utils import timezone


@dataclass
class DeliveryHealth:
    pending: int  # outbox rows waiting to be delivered (pending or in flight)
    oldest_pending_at: datetime | None  # when the oldest of them was written
    overdue_since: datetime | None  # the earliest moment one of them became due (and is still waiting)
    workers_alive: int
    worker_last_seen_at: datetime | None
    worker_required: bool  # False when tasks run in the web process (no broker configured)
    now: datetime

    @property
    def oldest_pending_age(self) -> float | None:
        return (self.now - self.oldest_pending_at).total_seconds() if self.oldest_pending_at else None

    @property
    def overdue_seconds(self) -> float:
        return max(0.0, (self.now - self.overdue_since).total_seconds()) if self.overdue_since else 0.0

    @property
    def worker_last_seen_age(self) -> float | None:
        return (self.now - self.worker_last_seen_at).total_seconds() if self.worker_last_seen_at else None

    @property
    def backlog_stale(self) -> bool:
        return self.overdue_seconds > settings.HEALTH_OUTBOX_STALE_SECONDS

    @property
    def worker_missing(self) -> bool:
        return self.worker_required and self.workers_alive == 0

    @property
    def problems(self) -> list[str]:
        """Codes of what is wrong: "outbox_stale" (deliveries due for too long), "no_worker"."""
        problems = []
        if self.backlog_stale:
            problems.append("outbox_stale")
        if self.worker_missing:
            problems.append("no_worker")
        return problems

    @property
    def failing(self) -> bool:
        """Nothing consumes the queue: deliveries overdue and no worker alive."""
        return self.backlog_stale and self.worker_missing


def _workers_required() -> bool:
    from portal.celery import app

    return not app.conf.task_always_eager


def delivery_health(*, provider_id: int | None = None) -> DeliveryHealth:
    """The outbox backlog (of one provider, or all) and the workers' heartbeats: two queries."""
    from apps.core.models import WorkerHeartbeat
    from apps.providers.models import GrantOutbox

    now = timezone.now()
    outbox = GrantOutbox.objects.filter(state__in=[GrantOutbox.State.PENDING, GrantOutbox.State.IN_FLIGHT])
    if provider_id is not None:
        outbox = outbox.filter(provider_id=provider_id)
    backlog = outbox.aggregate(
        pending=Count("id"),
        oldest=Min("created_at"),
        # Due and unclaimed, or claimed by a worker whose claim has run out.
        due=Min("next_attempt_at", filter=Q(state=GrantOutbox.State.PENDING)),
        claim_expired=Min("claimed_until", filter=Q(state=GrantOutbox.State.IN_FLIGHT)),
    )
    alive_after = now - timedelta(seconds=settings.HEALTH_WORKER_STALE_SECONDS)
    workers = WorkerHeartbeat.objects.aggregate(
        alive=Count("id", filter=Q(seen_at__gte=alive_after)), last=Max("seen_at")
    )
    overdue = [moment for moment in (backlog["due"], backlog["claim_expired"]) if moment and moment <= now]
    return DeliveryHealth(
        pending=backlog["pending"],
        oldest_pending_at=backlog["oldest"],
        overdue_since=min(overdue) if overdue else None,
        workers_alive=workers["alive"],
        worker_last_seen_at=workers["last"],
        worker_required=_workers_required(),
        now=now,
    )
