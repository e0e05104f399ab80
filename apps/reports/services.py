"""Exports: stream a small list at once, or write a large one in the background (ExportJob)."""

from __future__ import annotations

import datetime
import logging
import re
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.core.exceptions import ApplicationError
from apps.governance.services import audit_record
from apps.reports.exports import EXPORTS, Export
from apps.reports.models import ExportFormat, ExportJob
from apps.reports.writers import csv_lines, write_xlsx

logger = logging.getLogger(__name__)


def export_resolve(*, name: str, user, params):
    """(export, queryset) for ``user``, or None when the export does not exist or the user may not
    see that list (the views answer 404)."""
    export = EXPORTS.get(name)
    if export is None or user is None or not (user.is_authenticated or export.public):
        return None
    queryset = export.resolve(user, params)
    if queryset is None:
        return None
    return export, queryset


_UNSAFE_IN_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def export_file_name(export: Export, params, fmt: str) -> str:
    # The stem comes from the query string (``?round= 7`` and ``?call=7%0A`` pass ``int()``): only
    # plain characters reach the file name and the Content-Disposition header.
    stem = _UNSAFE_IN_FILE_NAME.sub("", export.file_stem(params))[:60].strip(".")
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return f"{export.name}{'-' + stem if stem else ''}-{stamp}.{fmt}"


def count(queryset) -> int:
    return len(queryset) if isinstance(queryset, list) else queryset.count()


@transaction.atomic
def export_record_download(*, user, name: str, query: str, fmt: str, rows: int) -> None:
    """Audit a streamed export (who took which list out); a visitor's export of a public list is not
    audited (there is nobody to name)."""
    if getattr(user, "is_authenticated", False):
        audit_record(
            actor=user,
            action="export.downloaded",
            target=user,
            after={"export": name, "query": query, "format": fmt, "rows": rows},
        )


@transaction.atomic
def export_job_create(*, name: str, user, query: str, fmt: str, total_rows: int) -> ExportJob:
    """Queue a background export of the list ``name`` with the list's query string ``query``."""
    if fmt not in ExportFormat.values:
        raise ApplicationError(_("Unknown export format."), code="invalid")
    running = ExportJob.objects.filter(
        user=user, status__in=(ExportJob.Status.PENDING, ExportJob.Status.RUNNING)
    ).count()
    if running >= settings.EXPORT_MAX_RUNNING_PER_USER:
        raise ApplicationError(
            _("You already have %(n)s exports being written; wait until one is ready.") % {"n": running},
            code="too_many",
        )
    job = ExportJob.objects.create(
        user=user,
        export=name,
        query=query,
        format=fmt,
        language=translation.get_language() or settings.LANGUAGE_CODE,
        total_rows=total_rows,
    )
    audit_record(
        actor=user,
        action="export.requested",
        target=job,
        after={"export": name, "query": query, "format": fmt},
    )
    from apps.reports.tasks import export_run_task

    job_id = job.pk
    transaction.on_commit(lambda: _enqueue(job_id, export_run_task))
    return job


def _enqueue(job_id: int, task) -> None:
    try:
        task.delay(job_id)
    except Exception:  # broker down: the job stays pending; the sweeper task retries it
        logger.warning("could not enqueue export job %s", job_id, exc_info=True)


def export_job_run(*, job_id: int) -> ExportJob:
    """Write the job's file (in a worker). The list is resolved again with the user's permissions
    of now: a user who lost access gets a failed job, not the data."""
    from django.http import QueryDict

    claimed = ExportJob.objects.filter(pk=job_id, status=ExportJob.Status.PENDING).update(
        status=ExportJob.Status.RUNNING, started_at=timezone.now()
    )
    job = ExportJob.objects.select_related("user").get(pk=job_id)
    if not claimed:
        return job  # already taken by another worker, or finished
    try:
        with translation.override(job.language):
            resolved = export_resolve(name=job.export, user=job.user, params=QueryDict(job.query))
            if resolved is None:
                raise ApplicationError(_("You may no longer see this list."), code="forbidden")
            export, queryset = resolved
            total = job.total_rows or 1
            step = max(1, total // 50)

            def progress(n: int) -> None:
                if n % step == 0:
                    ExportJob.objects.filter(pk=job.pk).update(
                        rows_written=n, progress=min(99, round(100 * n / total))
                    )

            file_name = export_file_name(export, QueryDict(job.query), job.format)
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / file_name
                if job.format == ExportFormat.CSV:
                    count = 0
                    with path.open("w", encoding="utf-8", newline="") as out:
                        for count, line in enumerate(csv_lines(export.columns, queryset)):
                            out.write(line)
                            if count:
                                progress(count)
                else:
                    count = write_xlsx(
                        path, export.columns, queryset, title=str(export.title), on_row=progress
                    )
                with path.open("rb") as handle:
                    job.file.save(file_name, File(handle), save=False)
        job.status = ExportJob.Status.DONE
        job.rows_written = count
        job.progress = 100
        job.file_name = file_name
        job.finished_at = timezone.now()
        job.expires_at = job.finished_at + datetime.timedelta(hours=settings.EXPORT_TTL_HOURS)
        job.save(
            update_fields=[
                "status",
                "rows_written",
                "progress",
                "file",
                "file_name",
                "finished_at",
                "expires_at",
                "updated_at",
            ]
        )
    except Exception as exc:
        message = exc.message if isinstance(exc, ApplicationError) else _("The export could not be written.")
        if not isinstance(exc, ApplicationError):
            logger.exception("export job %s failed", job_id)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED, error=str(message), finished_at=timezone.now()
        )
        job.refresh_from_db()
    return job


def export_jobs_expire(*, now: datetime.datetime | None = None) -> int:
    """Delete the files of finished exports past their expiry (beat task); returns how many."""
    now = now or timezone.now()
    expired = 0
    for job in ExportJob.objects.filter(status=ExportJob.Status.DONE, expires_at__lte=now):
        if job.file:
            job.file.delete(save=False)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.EXPIRED, file="")
        expired += 1
    return expired


def export_jobs_requeue_stale(*, older_than: datetime.timedelta = datetime.timedelta(minutes=10)) -> int:
    """Re-enqueue pending jobs whose message was lost (broker down when they were created)."""
    from apps.reports.tasks import export_run_task

    stale = ExportJob.objects.filter(
        status=ExportJob.Status.PENDING, created_at__lte=timezone.now() - older_than
    ).values_list("pk", flat=True)
    for job_id in stale:
        _enqueue(job_id, export_run_task)
    return len(stale)
