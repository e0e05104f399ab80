"""Celery tasks of the audit chain: thin wrappers around the services."""

from celery import shared_task


@shared_task(ignore_result=True)
def audit_checkpoint_send_task() -> dict:
    """Show every provider a signed checkpoint of the audit chain's head (beat, and after every
    AUDIT_CHECKPOINT_EVERY_EVENTS events). A provider that fails gets the next one."""
    from apps.governance.checkpoints import audit_checkpoint_send

    result = audit_checkpoint_send()
    return {"sequence": result.sequence, "sent": result.sent, "failed": result.failed}


@shared_task(ignore_result=True)
def audit_verification_run_task(verification_id: int | None = None) -> dict:
    """Verify the chain against every provider's checkpoints and store the verdict (beat, daily;
    staff's "verify now" passes the row it created)."""
    from apps.governance.services import audit_verification_run

    verification = audit_verification_run(verification_id=verification_id)
    return {"id": verification.pk, "outcome": verification.outcome}
