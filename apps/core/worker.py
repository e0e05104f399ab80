"""The Celery worker's heartbeat: a worker bootstep (registered in portal/celery.py) that writes a
WorkerHeartbeat row when the worker starts and every ``WORKER_HEARTBEAT_SECONDS`` after, from the
worker's own timer, and deletes it on a clean shutdown. A worker that died (SIGKILL, OOM, a broker
error it did not survive) simply stops writing."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from celery import bootsteps

logger = logging.getLogger(__name__)


def heartbeat_write(*, hostname: str, pid: int, started_at) -> None:
    from django.db import close_old_connections, connection
    from django.utils import timezone

    from apps.core.models import WorkerHeartbeat

    now = timezone.now()
    try:
        WorkerHeartbeat.objects.update_or_create(
            hostname=hostname[:255], defaults={"pid": pid, "started_at": started_at, "seen_at": now}
        )
        # Workers that vanished a day ago are history, not news.
        WorkerHeartbeat.objects.filter(seen_at__lt=now - timedelta(days=1)).delete()
    except Exception:
        logger.warning("could not write the worker heartbeat", exc_info=True)
        close_old_connections()
    finally:
        # The worker's main process should hold no connection between beats (prefork children
        # must never share one, and a beat every few seconds needs none kept open).
        connection.close()


def heartbeat_remove(*, hostname: str) -> None:
    from django.db import connection

    from apps.core.models import WorkerHeartbeat

    try:
        WorkerHeartbeat.objects.filter(hostname=hostname[:255]).delete()
    except Exception:
        logger.warning("could not remove the worker heartbeat", exc_info=True)
    finally:
        connection.close()


class Heartbeat(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.tref = None
        self.started_at = None

    def start(self, worker):
        from django.conf import settings
        from django.utils import timezone

        self.started_at = timezone.now()
        self._beat(worker)
        self.tref = worker.timer.call_repeatedly(settings.WORKER_HEARTBEAT_SECONDS, self._beat, (worker,))

    def _beat(self, worker):
        heartbeat_write(hostname=worker.hostname, pid=os.getpid(), started_at=self.started_at)

    def stop(self, worker):
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None
        heartbeat_remove(hostname=worker.hostname)
