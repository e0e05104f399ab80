from celery import shared_task


@shared_task(ignore_result=True)
def export_run_task(job_id: int) -> str:
    from apps.reports.services import export_job_run

    return export_job_run(job_id=job_id).status


@shared_task(ignore_result=True)
def export_housekeeping_task() -> dict:
    """Beat: expire old export files; re-enqueue pending jobs whose message was lost."""
    from apps.reports.services import export_jobs_expire, export_jobs_requeue_stale

    return {"expired": export_jobs_expire(), "requeued": export_jobs_requeue_stale()}
