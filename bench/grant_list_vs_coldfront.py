#!/usr/bin/env python
"""The portal's grant lists side by side with ColdFront 1.1.10's allocation list, on this machine.

Both run in-process behind django.test.Client (the same method for both; no network, no WSGI
server), each in its own Python process and its own PostgreSQL database on the same server, at the
same rows per page (the portal's 50: ColdFront's list is set to 50 instead of its 25), for 100,
1,000 and 10,000 grants / allocations (``--sizes``), over ``--runs`` timed requests after
``--warmup`` warm-ups, with the garbage collector paused, and the SQL queries of one more request.

- The portal (this process): bench/directory_latency.py's generator with ``--orgs`` organizations,
  then bench/scale_pages.py's pools and grants for one organization (usage months; about 1 % each
  sending, failing, drifted) grown to each size. Pages: the member's grant list of that
  organization (a user with the admin role) and the staff grant list (every grant).
- ColdFront (bench/_coldfront_runner.py, run by the Python of a throw-away venv): one project, its
  PI a manager and a user of every allocation, ``size`` allocations, each on one of 9 resources.
  Pages: the PI's allocation list, ``/allocation/``, and a superuser's
  ``/allocation/?show_all_allocations=on``.

ColdFront is installed with pip into ``--coldfront-venv`` (default /tmp/coldfront-1.1.10-venv,
outside the repository; created when missing: ``coldfront==1.1.10`` and ``psycopg[binary]``, since
ColdFront's own PostgreSQL extra builds psycopg2 from source). Nothing of ColdFront is copied into
the repository. Both databases are dropped at the end unless ``--keep``.

    .venv/bin/python bench/grant_list_vs_coldfront.py [--sizes 100,1000,10000] [--runs 20]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
for _path in (BASE_DIR, BASE_DIR / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from directory_latency import (  # noqa: E402
    _database_url,
    _exit_on_sigterm,
    _rows,
    bench_database,
    configure_django,
    migrate,
    seed,
)

COLDFRONT = "coldfront==1.1.10"
PER_PAGE = 50  # apps.providers.views.PAGE_SIZE


def ensure_coldfront(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"Installing {COLDFRONT} into {venv} …", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", COLDFRONT, "psycopg[binary]"],
            check=True,
        )
    version = subprocess.run(
        [
            str(python),
            "-c",
            "import django, importlib.metadata as m; print(m.version('coldfront'), django.get_version())",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    if version[0] != "1.1.10" or not version[1].startswith("5."):
        sys.exit(f"{venv}: expected ColdFront 1.1.10 on Django 5.x, found {version}")
    return python


def start_coldfront(python: Path, db, args) -> subprocess.Popen:
    """Create ColdFront's database and start bench/_coldfront_runner.py in the ColdFront venv; it
    answers the commands written to its stdin (see the runner)."""
    venv = python.parent.parent
    local_settings = venv / "bench_local_settings.py"
    local_settings.write_text(
        'ALLOWED_HOSTS = ["testserver"]\n'
        "DEBUG = False\n"
        "# the bundles shipped in the wheel (production mode reads the manifest of collectstatic)\n"
        'DJANGO_VITE["default"]["manifest_path"] = PROJECT_ROOT(  # noqa: F821\n'
        '    "coldfront/static/bundles/manifest.json"\n'
        ")\n"
    )
    config = db.config
    url = (
        f"postgres://{config.get('USER') or 'postgres'}"
        + (f":{config['PASSWORD']}" if config.get("PASSWORD") else "")
        + f"@{config.get('HOST') or '127.0.0.1'}:{config.get('PORT') or 5432}/{db.name}"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))},
        "DB_URL": url,
        "DJANGO_SETTINGS_MODULE": "coldfront.config.settings",
        "COLDFRONT_CONFIG": str(local_settings),
        "SECRET_KEY": "bench-only-" + "x" * 40,
    }
    return subprocess.Popen(
        [
            str(python),
            str(BASE_DIR / "bench" / "_coldfront_runner.py"),
            f"--per-page={PER_PAGE}",
            f"--warmup={args.warmup}",
        ],
        env=env,
        cwd=str(venv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def ask_coldfront(process: subprocess.Popen, command: str) -> dict:
    process.stdin.write(f"{command}\n")
    process.stdin.flush()
    line = process.stdout.readline()
    if not line:
        sys.exit(f"ColdFront's runner stopped (exit status {process.wait()})")
    return json.loads(line)


def _timed(client, path: str, runs: int) -> list[float]:
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")
    finally:
        gc.enable()
    return samples


def _summary(samples: list[float], counted: dict) -> dict:
    return {
        "median_ms": statistics.median(samples),
        "p95_ms": statistics.quantiles(samples, n=100, method="inclusive")[94],
        "queries": counted["queries"],
        "rows": counted["rows"],
        "runs": len(samples),
    }


def run(args, coldfront: subprocess.Popen) -> tuple[dict, dict]:
    """Size after size: grow both data sets, then time the lists in alternating batches (the
    portal's, ColdFront's, the portal's, …), so that both see the same load on a shared machine."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from scale_pages import seed_grants, seed_pools

    from apps.organizations.models import Organization, OrgRole

    seeded = seed(n_orgs=args.orgs, n_applications=0, dashboard_orgs=1)
    pools, periods = seed_pools()
    organization = Organization.objects.order_by("pk").first()
    OrgRole.objects.get_or_create(organization=organization, user=seeded.dashboard_user, role="admin")
    clients = {"member": Client(), "staff": Client()}
    clients["member"].force_login(seeded.dashboard_user)
    clients["staff"].force_login(seeded.staff)
    pages = {
        "member": (
            reverse("providers:org-grants", args=[organization.slug]),
            _rows(r'<td class="nowrap small">'),
        ),
        "staff": (reverse("providers:grant-list"), _rows(r'<tr id="grant-\d+">')),
    }
    header = json.loads(coldfront.stdout.readline() or "{}")
    portal, theirs, have = {}, {"django": header.get("django", "?"), "sizes": {}}, 0
    batch = max(1, args.runs // args.rounds)
    for size in [int(s) for s in args.sizes.split(",")]:
        seed_grants(organization=organization, pools=pools, periods=periods, n=size - have, start_index=have)
        have = size
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        ask_coldfront(coldfront, f"seed {size}")
        ours = {who: [] for who in pages}
        cf = {who: [] for who in pages}
        for who, (path, _) in pages.items():
            for _ in range(args.warmup):
                clients[who].get(path)
        for _ in range(args.rounds):
            for who, (path, _) in pages.items():
                ours[who] += _timed(clients[who], path, batch)
            for who, samples in ask_coldfront(coldfront, f"time {batch}").items():
                cf[who] += samples
        counted = ask_coldfront(coldfront, "queries")
        portal[str(size)], theirs["sizes"][str(size)] = {}, {}
        for who, (path, check) in pages.items():
            with CaptureQueriesContext(connection) as captured:
                response = clients[who].get(path)
            rows = int(check(response))
            expected = min(size, PER_PAGE)
            if rows != expected or counted[who]["rows"] != expected:
                raise RuntimeError(f"{who}: {rows} / {counted[who]['rows']} rows, expected {expected}")
            portal[str(size)][who] = _summary(
                ours[who], {"queries": len(captured.captured_queries), "rows": rows}
            )
            theirs["sizes"][str(size)][who] = _summary(cf[who], counted[who])
        print(f"  {size} grants / allocations: measured", file=sys.stderr)
    return portal, theirs


def print_table(portal: dict, coldfront: dict, args) -> None:
    print(
        f"\n{args.runs} timed requests per page (in {args.rounds} batches alternating between the two "
        f"sides) after {args.warmup} warm-ups, {PER_PAGE} rows per page, "
        f"django.test.Client in-process for both (ColdFront {COLDFRONT.split('==')[1]} on Django "
        f"{coldfront['django']}). Queries: one more request."
    )
    print(
        "| size | list | portal median / p95 ms | queries "
        "| ColdFront median / p95 ms | queries | ColdFront ÷ portal |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for size, pages in portal.items():
        for who in ("member", "staff"):
            ours, theirs = pages[who], coldfront["sizes"][size][who]
            print(
                f"| {int(size):,} | {who} "
                f"| {ours['median_ms']:.1f} / {ours['p95_ms']:.1f} | {ours['queries']} "
                f"| {theirs['median_ms']:.1f} / {theirs['p95_ms']:.1f} | {theirs['queries']} "
                f"| {theirs['median_ms'] / ours['median_ms']:.1f}x |"
            )


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url", help="server to create the bench databases on (default: DATABASE_URL)"
    )
    parser.add_argument("--bench-db", default="gpu_alliance_bench_vs_coldfront")
    parser.add_argument("--coldfront-db", default="gpu_alliance_bench_coldfront")
    parser.add_argument("--coldfront-venv", type=Path, default=Path("/tmp/coldfront-1.1.10-venv"))
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--orgs", type=int, default=100, help="organizations in the portal's database")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5, help="alternating batches of runs/rounds requests")
    parser.add_argument("--keep", action="store_true", help="keep both databases afterwards")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    url = _database_url(args.database_url)
    ours, theirs = bench_database(url, args.bench_db), bench_database(url, args.coldfront_db)
    python = ensure_coldfront(args.coldfront_venv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    for db in (ours, theirs):
        if db.exists():
            db.drop()
        db.create()
    coldfront = None
    try:
        started = time.perf_counter()
        coldfront = start_coldfront(python, theirs, args)  # migrates its database meanwhile
        configure_django(ours)
        migrate()
        portal, measured = run(args, coldfront)
        coldfront.stdin.close()
        if coldfront.wait():
            sys.exit("ColdFront's runner failed")
        print(f"Both sides: {time.perf_counter() - started:.0f} s.", file=sys.stderr)
        print_table(portal, measured, args)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if coldfront is not None and coldfront.poll() is None:
            coldfront.kill()
            coldfront.wait()
        if "django.db" in sys.modules:
            from django.db import connections

            with contextlib.suppress(Exception):
                connections.close_all()
        for db in (ours, theirs):
            if args.keep:
                print(f"Kept {db.name!r} (dropdb {db.name}).", file=sys.stderr)
            else:
                db.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
