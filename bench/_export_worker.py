#!/usr/bin/env python
"""Run one export job as a Celery worker would (``reports.services.export_job_run``), in a fresh
process, and print its wall time and this process's peak RSS as JSON. Used by bench/reports.py so
that the worker's memory is measured on its own, not with the seeding's.

    DATABASE_URL=postgres://…/bench_db MEDIA_ROOT=/tmp/x python bench/_export_worker.py JOB_ID
"""

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def _status_mib(field: str) -> float:
    """VmHWM (peak RSS) or VmRSS of this process from /proc, in MiB. Unlike getrusage's ru_maxrss,
    VmHWM starts again at exec, so it does not include the parent's memory copied at fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    import django

    django.setup()
    from apps.reports.models import ExportJob
    from apps.reports.services import export_job_run

    job_id = int(sys.argv[1])
    baseline = _status_mib("VmHWM")
    started = time.perf_counter()
    job = export_job_run(job_id=job_id)
    seconds = time.perf_counter() - started
    job = ExportJob.objects.get(pk=job.pk)
    print(
        json.dumps(
            {
                "status": job.status,
                "error": job.error,
                "rows": job.rows_written,
                "seconds": seconds,
                "size": job.file.size if job.file else 0,
                "path": job.file.path if job.file else "",
                "baseline_rss_mib": baseline,
                "peak_rss_mib": _status_mib("VmHWM"),
            }
        )
    )


if __name__ == "__main__":
    main()
