"""A large export written by a real Celery worker process on a Redis broker: the page polls the
job's progress until the file is ready, then its owner downloads exactly the rows of the list."""

import csv
import io
import time

import pytest
from django.db import connection
from django.urls import reverse

from apps.reports.models import ExportJob
from tests.factories import OrganizationFactory, PoolPeriodFactory, QuotaGrantFactory
from tests.providers.worker_process import CeleryWorker, RedisServer, publishing_to

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the worker process needs a shared PostgreSQL"
    ),
]
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.close()


def test_a_large_export_is_written_by_the_worker_and_downloaded(
    settings, tmp_path, staff_client, redis_server
):
    settings.MEDIA_ROOT = tmp_path
    settings.EXPORT_STREAM_MAX_ROWS = 10
    period = PoolPeriodFactory(capacity_gpu_hours="100000.00")
    for i in range(60):
        QuotaGrantFactory(
            organization=OrganizationFactory(slug=f"org-{i:02d}"), period=period, gpu_hours="10.00"
        )
    url = reverse("reports:export", args=["grants", "csv"]) + "?q=org-"
    worker = CeleryWorker(broker_url=redis_server.url, env={"MEDIA_ROOT": str(tmp_path)}, concurrency=2)
    with publishing_to(redis_server.url):
        worker.start()
        try:
            response = staff_client.get(url)
            job = ExportJob.objects.get()
            assert response.status_code == 302 and response.url == job.get_absolute_url()
            deadline = time.monotonic() + 60
            while True:
                partial = staff_client.get(job.get_absolute_url(), **HX).content.decode()
                job.refresh_from_db()
                if job.status in ("done", "failed") or time.monotonic() > deadline:
                    break
                assert 'hx-trigger="every 1s"' in partial  # still polling
                time.sleep(0.3)
        finally:
            output = worker.output()
            worker.stop()
    assert job.status == "done", (job.status, job.error, output)
    assert (job.rows_written, job.progress) == (60, 100)
    partial = staff_client.get(job.get_absolute_url(), **HX).content.decode()  # the finished state
    assert 'hx-trigger="every 1s"' not in partial and job.file_name in partial
    download = staff_client.get(reverse("reports:export-download", args=[job.public_id]))
    text = b"".join(download.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    settings.EXPORT_STREAM_MAX_ROWS = 1000
    streamed = b"".join(staff_client.get(url).streaming_content).decode("utf-8")
    assert rows == list(csv.reader(io.StringIO(streamed[1:])))
    assert len(rows) == 61
