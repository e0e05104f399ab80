#!/usr/bin/env python
"""The reporting side at scale: 10,000 organizations and 1,000,000 usage records on PostgreSQL.

Creates a throw-away database (``gpu_alliance_bench_reports``), migrates it and seeds it:
bench/allocation_round.py's world with ``--orgs`` organizations (pools, a usage history, a round
with 1-3 request lines per organization), which is then closed, computed and published through the
services (so the round's grants, outbox rows and audit events are real), and ``--records`` usage
records COPied onto the round's grants (April-June 2026), rolled up by month as ingestion would.

Then it measures:

1. Exports of every usage record (the staff's "usage records" list without a filter) as a
   background job, CSV and XLSX: ``reports.services.export_job_run`` in a fresh process
   (bench/_export_worker.py), its wall time and peak RSS; the same for one month's records (to show
   that memory does not grow with the rows); and PostgreSQL's own ``COPY (SELECT …) TO STDOUT`` of
   the same rows and columns in the same run, for the ratio.
2. Pages with this data: the member dashboard (a user in 5 organizations), the statement of one
   organization, the staff grant list, the transparency report of the round and of the fiscal year,
   the staff usage lists: median and p95 latency (django.test.Client, in-process) and SQL queries.

The database is dropped at the end unless ``--keep``.

    .venv/bin/python bench/reports.py [--orgs 10000] [--records 1000000] [--runs 20]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
for _path in (BASE_DIR, BASE_DIR / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from directory_latency import _database_url, _exit_on_sigterm, bench_database, configure_django, migrate  # noqa: E402

USAGE_START = datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC)
USAGE_SPAN_S = 91 * 86400 - 7200


def seed(n_orgs: int, n_records: int):
    import allocation_round
    from django.db import connection

    from apps.accounts.models import User
    from apps.allocations import services as rounds
    from apps.providers.models import QuotaGrant

    world = allocation_round.seed(n_orgs)
    staff = world.staff
    t0 = time.perf_counter()
    rounds.round_close(round_id=world.round_id, actor=staff)
    rounds.round_compute(round_id=world.round_id, actor=staff)
    grants = rounds.round_publish(round_id=world.round_id, actor=staff)
    print(
        f"Round computed and published ({len(grants)} grants) in {time.perf_counter() - t0:.1f} s.",
        file=sys.stderr,
    )
    # The grants are delivered in real life; here they are marked active as if they had been.
    QuotaGrant.objects.filter(pk__in=[g.pk for g in grants]).update(state="active", applied_version=1)

    t0 = time.perf_counter()
    rng = random.Random(7)
    targets = [(g.pk, g.pool.provider_id) for g in grants]
    now = datetime.datetime.now(datetime.UTC)
    columns = "provider_id, record_id, grant_id, gpu_hours, started_at, ended_at, received_at"
    with connection.cursor() as cursor:
        with (
            cursor.connection.cursor() as raw,
            raw.copy(f"COPY providers_usagerecord ({columns}) FROM STDIN") as copy,
        ):
            for i in range(n_records):
                grant_id, provider_id = targets[rng.randrange(len(targets))]
                start = USAGE_START + datetime.timedelta(seconds=rng.randrange(USAGE_SPAN_S))
                copy.write_row(
                    (
                        provider_id,
                        f"rec-{i:08d}",
                        grant_id,
                        f"{rng.uniform(0.1, 8):.4f}",
                        start,
                        start + datetime.timedelta(hours=1),
                        now,
                    )
                )
        # The monthly rollup, as usage_ingest keeps it.
        cursor.execute(
            """
            INSERT INTO providers_usagemonth (grant_id, month, gpu_hours, records)
            SELECT grant_id, date_trunc('month', started_at AT TIME ZONE 'Asia/Tokyo')::date,
                   sum(gpu_hours), count(*)
            FROM providers_usagerecord GROUP BY 1, 2
            ON CONFLICT (grant_id, month) DO UPDATE
            SET gpu_hours = providers_usagemonth.gpu_hours + excluded.gpu_hours,
                records = providers_usagemonth.records + excluded.records
            """
        )
        cursor.execute("ANALYZE")
    print(
        f"COPied {n_records:,} usage records and rolled them up in {time.perf_counter() - t0:.1f} s.",
        file=sys.stderr,
    )
    dashboard_user = User.objects.get(email="member@bench.example")
    return staff, dashboard_user, world.round_id


# --- exports ------------------------------------------------------------------------------------


def run_export(db_url: str, media: str, staff, fmt: str, query: str = "") -> dict:
    from django.http import QueryDict

    from apps.reports.models import ExportJob
    from apps.reports.services import count, export_resolve

    _export, queryset = export_resolve(name="usage-records", user=staff, params=QueryDict(query))
    job = ExportJob.objects.create(
        user=staff, export="usage-records", query=query, format=fmt, language="ja", total_rows=count(queryset)
    )
    env = {**os.environ, "DATABASE_URL": db_url, "MEDIA_ROOT": media, "CELERY_BROKER_URL": "memory://"}
    out = subprocess.run(
        [sys.executable, str(BASE_DIR / "bench" / "_export_worker.py"), str(job.pk)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["status"] != "done":
        raise RuntimeError(f"export failed: {result}")
    return result


def copy_to(query: str) -> tuple[float, int, int]:
    """PostgreSQL's COPY of the same rows and columns as the usage-records export, to a file."""
    from django.db import connection

    where = ""
    if query:
        where = (
            "WHERE r.started_at >= '2026-05-01T00:00:00+09:00' AND r.started_at < '2026-06-01T00:00:00+09:00'"
        )
    sql = f"""
        COPY (
          SELECT p.name_ja, r.record_id, g.public_id, o.slug, pool.code,
                 to_char(r.started_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS'),
                 to_char(r.ended_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS'),
                 r.gpu_hours,
                 to_char(r.received_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD HH24:MI:SS')
          FROM providers_usagerecord r
          JOIN providers_provider p ON p.id = r.provider_id
          JOIN providers_quotagrant g ON g.id = r.grant_id
          JOIN organizations_organization o ON o.id = g.organization_id
          JOIN providers_resourcepool pool ON pool.id = g.pool_id
          {where}
          ORDER BY r.started_at DESC, r.id DESC
        ) TO STDOUT WITH (FORMAT csv, HEADER)"""
    rows = size = 0
    started = time.perf_counter()
    with (
        tempfile.TemporaryFile() as out,
        connection.cursor() as cursor,
        cursor.connection.cursor() as raw,
        raw.copy(sql) as copy,
    ):
        for data in copy:
            out.write(data)
            size += len(data)
            rows += bytes(data).count(b"\n")
    return time.perf_counter() - started, rows - 1, size


# --- pages --------------------------------------------------------------------------------------


def measure_pages(staff, dashboard_user, round_id: int, runs: int) -> list[tuple]:
    import gc

    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from apps.organizations.models import OrgRole

    if not staff.authenticator_set.exists():
        TOTP.activate(staff, generate_totp_secret())
    staff_client, member_client = Client(), Client()
    staff_client.force_login(staff)
    member_client.force_login(dashboard_user)
    org_slug = (
        OrgRole.objects.filter(user=dashboard_user).select_related("organization").first().organization.slug
    )
    pages = [
        ("member dashboard (5 orgs)", member_client, "/dashboard/"),
        ("member statement, FY2026", member_client, f"/orgs/{org_slug}/statement/?period=FY2026"),
        ("staff grant list", staff_client, "/secretariat/grants/"),
        ("transparency: round (cached)", Client(), f"/transparency/rounds/{round_id}/"),
        ("transparency: round, cache cleared", Client(), f"/transparency/rounds/{round_id}/"),
        ("transparency: fiscal year (cached)", Client(), "/transparency/fy/2026/"),
        ("transparency: fiscal year, cache cleared", Client(), "/transparency/fy/2026/"),
        ("staff usage by month", staff_client, "/secretariat/usage/"),
        ("staff usage records", staff_client, "/secretariat/usage/records/"),
    ]
    results = []
    for label, client, path in pages:
        for _ in range(2):
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
        if "cache cleared" in label:
            cache.clear()
        with CaptureQueriesContext(connection) as captured:
            client.get(path)
        queries = len(captured)  # now: the next request clears the connection's query log
        times = []
        gc.disable()
        try:
            for _ in range(runs):
                if "cache cleared" in label:
                    cache.clear()
                started = time.perf_counter()
                client.get(path)
                times.append((time.perf_counter() - started) * 1000)
        finally:
            gc.enable()
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        results.append((label, path, statistics.median(times), p95, queries))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=10000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--database-url")
    parser.add_argument("--bench-db", default="gpu_alliance_bench_reports")
    parser.add_argument("--skip-exports", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    base_url = _database_url(args.database_url)
    db = bench_database(base_url, args.bench_db)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    media = tempfile.mkdtemp(prefix="bench-exports-")
    os.environ["MEDIA_ROOT"] = media
    if db.exists():
        db.drop()
    db.create()
    try:
        configure_django(db)
        migrate()
        t0 = time.perf_counter()
        staff, dashboard_user, round_id = seed(args.orgs, args.records)
        print(f"Seeded in {time.perf_counter() - t0:.1f} s.", file=sys.stderr)
        db_url = base_url.rsplit("/", 1)[0] + "/" + db.name
        cores = os.cpu_count()
        print(
            f"\nReports with {args.orgs:,} organizations and {args.records:,} usage records ({cores} cores)\n"
        )
        if not args.skip_exports:
            print("| export | rows | wall | rows/s | file | worker peak RSS | COPY TO | ratio |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            for label, query in (("one month", "month=2026-05"), ("all", "")):
                copy_s, copy_rows, copy_size = copy_to(query)
                for fmt in ("csv", "xlsx"):
                    r = run_export(db_url, media, staff, fmt, query)
                    cells = [
                        f"{fmt.upper()} {label}",
                        f"{r['rows']:,}",
                        f"{r['seconds']:.1f} s",
                        f"{r['rows'] / r['seconds']:,.0f}",
                        f"{r['size'] / 2**20:.0f} MiB",
                        f"{r['peak_rss_mib']:.0f} MiB (start {r['baseline_rss_mib']:.0f})",
                        f"{copy_s:.1f} s ({copy_rows:,} rows, {copy_size / 2**20:.0f} MiB)",
                        f"{r['seconds'] / copy_s:.1f}x",
                    ]
                    print("| " + " | ".join(cells) + " |")
                    if r["rows"] != copy_rows:
                        print(f"  PROBLEM: the export wrote {r['rows']} rows, COPY {copy_rows}")
                    with contextlib.suppress(OSError):
                        os.unlink(r["path"])
        print("\n| page | median | p95 | SQL queries |")
        print("|---|---:|---:|---:|")
        for label, path, median, p95, queries in measure_pages(staff, dashboard_user, round_id, args.runs):
            print(f"| {label} (`{path}`) | {median:.0f} ms | {p95:.0f} ms | {queries} |")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if "django.db" in sys.modules:
            from django.db import connections

            with contextlib.suppress(Exception):
                connections.close_all()
        if args.keep:
            print(f"Kept {db.name!r}.", file=sys.stderr)
        else:
            db.drop()
        import shutil

        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
