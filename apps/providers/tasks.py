"""Celery tasks: thin wrappers around the services. They take ids and are enqueued on commit."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, ignore_result=True)
def outbox_deliver_task(self, outbox_id: int) -> str:
    from apps.providers.services import outbox_deliver, outbox_mark_enqueued

    outcome = outbox_deliver(outbox_id=outbox_id)
    if outcome.result == "retry" and not self.request.is_eager:
        # Retry with backoff and jitter. If this message is lost too, the sweeper finds the row:
        # its next_attempt_at is already set, and the claim keeps two workers from sending it.
        try:
            outbox_deliver_task.apply_async((outbox_id,), countdown=outcome.retry_in)
        except Exception:
            logger.warning("could not schedule the retry of outbox row %s", outbox_id, exc_info=True)
        else:
            outbox_mark_enqueued(outbox_id=outbox_id, due_in=outcome.retry_in)
    return outcome.result


@shared_task(ignore_result=True)
def outbox_sweep_task() -> int:
    from apps.providers.services import outbox_sweep

    return outbox_sweep()


@shared_task(ignore_result=True)
def provider_reconcile_task(provider_id: int) -> dict:
    from apps.providers.services import provider_reconcile

    return provider_reconcile(provider_id=provider_id).__dict__


@shared_task(ignore_result=True)
def reconcile_all_task() -> None:
    from apps.providers.models import Provider

    for provider_id in (
        Provider.objects.filter(is_active=True).exclude(api_base_url="").values_list("pk", flat=True)
    ):
        provider_reconcile_task.delay(provider_id)


@shared_task(ignore_result=True)
def usage_pull_task(provider_id: int) -> int:
    from apps.providers.services import usage_pull

    return usage_pull(provider_id=provider_id).accepted


@shared_task(ignore_result=True)
def usage_pull_all_task() -> None:
    from apps.providers.models import Provider

    for provider_id in (
        Provider.objects.filter(is_active=True).exclude(api_base_url="").values_list("pk", flat=True)
    ):
        usage_pull_task.delay(provider_id)
