from django.db import models
from django.utils.translation import gettext_lazy as _


class BaseModel(models.Model):
    """Every table carries when a row was created and last changed."""

    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        abstract = True


class WorkerHeartbeat(models.Model):
    """The last sign of life of a Celery worker (one row per worker node name, e.g.
    celery@web-1), written every ``WORKER_HEARTBEAT_SECONDS`` by the worker itself
    (apps.core.worker.Heartbeat) and removed when it shuts down cleanly. The health endpoint, the
    metrics and the staff pages read it: "nothing consumes the queue" is a stale or empty table."""

    hostname = models.CharField(max_length=255, unique=True)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return f"{self.hostname} ({self.seen_at:%Y-%m-%d %H:%M:%S})"
