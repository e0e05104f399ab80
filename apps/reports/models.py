"""Background exports: a list too large to stream is written to a file by a Celery worker, which the
user who asked for it downloads through a permission check until it expires."""

import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from apps.core.models import BaseModel


class PrivateExportStorage(FileSystemStorage):
    """Files under MEDIA_ROOT/private/exports, with no URL: they are only served by the download
    view, after its permission check. The location follows MEDIA_ROOT when it changes (tests)."""

    def __init__(self):
        super().__init__(base_url=None)

    @cached_property
    def base_location(self):
        return Path(str(settings.MEDIA_ROOT)) / "private" / "exports"

    def deconstruct(self):
        return ("apps.reports.models.PrivateExportStorage", (), {})


def export_storage() -> FileSystemStorage:
    return PrivateExportStorage()


def _export_path(instance, filename: str) -> str:
    return f"{instance.created_at:%Y/%m}/{instance.public_id}/{filename}"


class ExportFormat(models.TextChoices):
    CSV = "csv", "CSV"
    XLSX = "xlsx", "Excel (XLSX)"


class ExportJob(BaseModel):
    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for a worker")
        RUNNING = "running", _("Being written")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="exports"
    )
    export = models.CharField(_("export"), max_length=50)
    query = models.TextField(_("filters"), blank=True, help_text=_("The list's query string."))
    format = models.CharField(_("format"), max_length=10, choices=ExportFormat.choices)
    language = models.CharField(_("language"), max_length=10)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    total_rows = models.PositiveIntegerField(_("rows to write"), default=0)
    rows_written = models.PositiveIntegerField(_("rows written"), default=0)
    progress = models.PositiveSmallIntegerField(
        _("progress (%)"), default=0, validators=[MaxValueValidator(100)]
    )
    file = models.FileField(_("file"), storage=export_storage, upload_to=_export_path, blank=True)
    file_name = models.CharField(_("file name"), max_length=200, blank=True)
    error = models.TextField(_("error"), blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="exportjob_progress_at_most_100"),
            models.CheckConstraint(
                condition=~Q(status="done") | (~Q(file="") & Q(expires_at__isnull=False)),
                name="exportjob_done_has_file",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.export}.{self.format} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("reports:export-detail", args=[self.public_id])

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.EXPIRED)
