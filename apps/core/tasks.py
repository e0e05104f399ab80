"""The base class of every Celery task of the portal (portal/celery.py: ``task_cls``)."""

from __future__ import annotations

import logging
import random

from celery import Task
from django.conf import settings

from apps.core.db import is_database_timeout

logger = logging.getLogger(__name__)


class PortalTask(Task):
    """A task that met a database timeout (a lock held too long elsewhere, a statement over its
    bound) is retried later with backoff and jitter instead of failing: its transaction rolled
    back, so running it again is safe for tasks that are safe to retry at all (every task here takes
    ids and re-reads its rows). After ``DATABASE_TIMEOUT_TASK_RETRIES`` it fails as usual."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if not is_database_timeout(exc):
                raise
            retries = self.request.retries or 0
            if retries >= settings.DATABASE_TIMEOUT_TASK_RETRIES:
                raise
            countdown = min(60.0, 2.0 * 2**retries) * random.uniform(0.5, 1.0)
            logger.warning("%s met a database timeout; retry %d in %.1f s", self.name, retries + 1, countdown)
            raise self.retry(
                exc=exc, countdown=countdown, max_retries=settings.DATABASE_TIMEOUT_TASK_RETRIES
            ) from exc
