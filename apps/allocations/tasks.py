"""Celery tasks: thin wrappers around the services. They take ids and are enqueued on commit."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def round_compute_task(round_id: int, actor_id: int | None = None) -> str:
    """Compute an allocation round; a refusal is stored on the round for the staff page."""
    from apps.accounts.models import User
    from apps.allocations.services import round_compute, round_compute_failed
    from apps.core.exceptions import ApplicationError

    actor = User.objects.filter(pk=actor_id).first() if actor_id else None
    try:
        allocation_round = round_compute(round_id=round_id, actor=actor)
    except ApplicationError as exc:
        logger.info("round %s could not be computed: %s", round_id, exc.message)
        round_compute_failed(round_id=round_id, message=str(exc.message))
        return "refused"
    return allocation_round.status
