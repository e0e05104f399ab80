"""Celery application. Tasks live in each app's ``tasks.py`` and are discovered here.

Configured entirely from Django settings (``CELERY_*``), so later apps only add tasks. Every task
derives from apps.core.tasks.PortalTask (a database timeout retries the task); workers and beat
use the workers' database bounds (settings.DATABASE_TIMEOUTS["worker"]); each worker writes a
heartbeat (apps.core.worker.Heartbeat) that the health endpoint and the metrics read.
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal", task_cls="apps.core.tasks:PortalTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _register_heartbeat() -> None:
    from apps.core.worker import Heartbeat

    app.steps["worker"].add(Heartbeat)


_register_heartbeat()


@signals.worker_init.connect
@signals.beat_init.connect
def _use_worker_database_bounds(**kwargs) -> None:
    from apps.core.db import use_database_timeouts

    use_database_timeouts("worker")
