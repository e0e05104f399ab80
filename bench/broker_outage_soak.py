#!/usr/bin/env python
"""Broker-outage soak: Redis is killed under running Celery workers again and again, mid-delivery.

For each pool (threads, prefork) the script creates a throw-away PostgreSQL database
(``gpu_alliance_bench_outage`` by default), starts a private ``redis-server`` (no persistence: each
outage also loses the queue), the provider simulator (20 % of requests answered 503/500, and all
of them for a moment before each outage, so that the workers hold countdown retries,
unacknowledged) and one ``celery -A portal worker``. Grants are created at a steady pace while,
``--cycles`` times, Redis is terminated for ``--outage`` seconds
and started again; this process acts as celery beat (the outbox sweeper every 2 s). Like a
supervisor, it restarts a worker that exits, and counts the exits. At the end it waits until every
outbox row is done and checks that the simulator holds exactly the portal's active grants, each
version applied once.

    .venv/bin/python bench/broker_outage_soak.py [--pools threads,prefork] [--cycles 3] [--outage 20]
        [--grants 300] [--transport portal|kombu]

``--transport kombu`` runs the workers on kombu's own Redis transport (without portal/broker.py),
to see the defect it fixes: workers exiting with "Unrecoverable error: AttributeError('NoneType'
object has no attribute 'hostname')".
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
for _path in (BASE_DIR, BASE_DIR / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from directory_latency import (  # noqa: E402  (bench/ is on sys.path, not a package)
    _database_url,
    _exit_on_sigterm,
    bench_database,
    configure_django,
    migrate,
)

SECRET = "bench-outage-secret"
KEY_ID = "bench-key"
WORKER_ENV = {
    "PROVIDER_SECRETS": f"sakura={SECRET}",
    "PROVIDER_HTTP_TIMEOUT": "2.0",
    "OUTBOX_BACKOFF_BASE": "4",  # retries wait 2-8 s
    "OUTBOX_BACKOFF_MAX": "8",
    "OUTBOX_CLAIM_SECONDS": "10",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pools", default="threads,prefork")
    parser.add_argument("--cycles", type=int, default=3, help="outages per pool (default 3)")
    parser.add_argument("--outage", type=float, default=20.0, help="seconds Redis stays down (default 20)")
    parser.add_argument("--grants", type=int, default=300, help="grants per pool (default 300)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--transport", choices=["portal", "kombu"], default="portal")
    parser.add_argument("--settle", type=float, default=180.0, help="seconds allowed to settle at the end")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--bench-db", default="gpu_alliance_bench_outage")
    return parser.parse_args(argv)


def seed(base_url: str):
    from apps.providers.models import Provider
    from tests.factories import OrganizationFactory, PoolPeriodFactory, StaffFactory

    period = PoolPeriodFactory(capacity_gpu_hours="100000000")
    Provider.objects.filter(pk=period.pool.provider_id).update(
        slug="sakura", api_base_url=base_url, api_key_id=KEY_ID
    )
    return period, OrganizationFactory.create_batch(10), StaffFactory()


def run_pool(args, db, pool: str) -> dict:
    import redis
    from django.conf import settings
    from django.db import connections
    from django.db.models import Count

    from apps.providers import services
    from apps.providers.models import GrantOutbox, QuotaGrant
    from tests.providers.simulator_process import SimulatorProcess
    from tests.providers.worker_process import CeleryWorker, RedisServer, publishing_to

    connections.close_all()
    if db.exists():
        db.drop()
    db.create()
    migrate()
    settings.PROVIDER_SECRETS = {"sakura": SECRET}
    settings.OUTBOX_REENQUEUE_SECONDS = 5
    env = dict(WORKER_ENV)
    if args.transport == "kombu":
        env["CELERY_BROKER_TRANSPORT"] = "redis"
    result = {"pool": pool, "exits": 0, "crash_lines": 0, "outages": []}
    with contextlib.ExitStack() as stack:
        redis_server = RedisServer().start()
        stack.callback(redis_server.close)
        sim = stack.enter_context(
            SimulatorProcess(
                secret=SECRET, key_id=KEY_ID, fail_rate=0.2, faults="500,503", latency=0.05, seed=11
            )
        )
        period, orgs, staff = seed(sim.base_url)
        stack.enter_context(publishing_to(redis_server.url))
        worker = CeleryWorker(broker_url=redis_server.url, env=env, concurrency=args.concurrency, pool=pool)
        worker.start()
        outputs = []
        stack.callback(lambda: worker.stop())

        stop = threading.Event()
        errors = []

        def beat():
            try:
                while not stop.wait(2.0):
                    services.outbox_sweep()
            except Exception as exc:  # the sweeper must never die silently
                errors.append(exc)
            finally:
                connections.close_all()

        def supervise():
            nonlocal worker
            while not stop.wait(0.5):
                if worker.process.poll() is not None:
                    result["exits"] += 1
                    outputs.append(worker.output())
                    worker = CeleryWorker(
                        broker_url=redis_server.url, env=env, concurrency=args.concurrency, pool=pool
                    ).start()

        threads = [
            threading.Thread(target=beat, daemon=True),
            threading.Thread(target=supervise, daemon=True),
        ]
        for thread in threads:
            thread.start()
        stack.callback(stop.set)  # runs before the worker is stopped: the supervisor must not restart it
        started = time.monotonic()
        per_phase = max(1, args.grants // (args.cycles + 1))
        created = 0
        for cycle in range(args.cycles + 1):
            for _ in range(per_phase if cycle < args.cycles else args.grants - created):
                grant = services.grant_create(
                    organization=orgs[created % len(orgs)], period_id=period.pk, gpu_hours="3", actor=staff
                )
                if created % 7 == 0:
                    services.grant_change(grant_id=grant.pk, actor=staff, gpu_hours="4")
                created += 1
                time.sleep(0.02)
            if cycle == args.cycles:
                break
            # Every answer a 503 for a moment: the worker then holds countdown retries, unacknowledged,
            # when the broker goes (what makes kombu's own transport exit).
            # (kombu's Redis transport keeps what a worker holds in the broker's "unacked" hash.)
            sim.configure(fail_rate=1.0)
            broker = redis.Redis.from_url(redis_server.url)
            until = time.monotonic() + 15
            while time.monotonic() < until and broker.hlen("unacked") < 5:
                time.sleep(0.1)
            held = broker.hlen("unacked")
            broker.close()
            open_rows = GrantOutbox.objects.filter(state__in=["pending", "in_flight"]).count()
            redis_server.stop()
            sim.configure(fail_rate=0.2)
            down_at = time.monotonic()
            time.sleep(args.outage)
            redis_server.start()
            result["outages"].append(
                {
                    "at_s": round(down_at - started, 1),
                    "open_rows_at_kill": open_rows,
                    "unacked_at_kill": held,
                    "exits_so_far": result["exits"],
                }
            )
        deadline = time.monotonic() + args.settle
        while time.monotonic() < deadline:
            if not GrantOutbox.objects.filter(state__in=["pending", "in_flight"]).exists():
                break
            time.sleep(1)
        result["settled_s"] = round(time.monotonic() - started, 1)
        stop.set()
        for thread in threads:
            thread.join(10)
        outputs.append(worker.output())
        result["crash_lines"] = sum(text.count("Unrecoverable error") for text in outputs)
        result["sweeper_errors"] = [repr(e) for e in errors]
        state = sim.state()
        ours = {str(g.public_id): g for g in QuotaGrant.objects.all()}
        theirs = {gid: q for gid, q in state["quotas"].items() if q["status"] == "active"}
        result["grants"] = len(ours)
        result["outbox"] = dict(GrantOutbox.objects.values_list("state").annotate(n=Count("pk")))
        result["all_active"] = all(
            g.state == "active" and g.applied_version == g.version for g in ours.values()
        )
        result["simulator_matches"] = set(theirs) == set(ours) and all(
            theirs[gid]["version"] == g.version for gid, g in ours.items()
        )
        result["max_effects_per_version"] = max(state["effects"].values(), default=0)
        result["faults"] = sum(n for kind, n in state["requests"]["by_fault"].items() if kind != "none")
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    # Publishing fails during each outage by design (the sweeper re-sends): no traceback per grant.
    logging.getLogger("apps.providers.services").setLevel(logging.ERROR)
    db = bench_database(_database_url(args.database_url), args.bench_db)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if db.exists():
        db.drop()
    db.create()
    results = []
    try:
        configure_django(db)
        for pool in [p.strip() for p in args.pools.split(",") if p.strip()]:
            print(
                f"[{pool}] {args.cycles} outages of {args.outage:g} s, {args.grants} grants", file=sys.stderr
            )
            results.append(run_pool(args, db, pool))
            print(results[-1], file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if "django.db" in sys.modules:
            from django.db import connections

            with contextlib.suppress(Exception):
                connections.close_all()
        with contextlib.suppress(Exception):
            db.drop()
    print(f"transport: {args.transport}; {args.cycles} Redis outages of {args.outage:g} s per pool")
    print(
        "pool     grants  worker exits  'Unrecoverable'  settled  all active  simulator = portal  max effects"
    )
    ok = True
    for r in results:
        print(
            f"{r['pool']:<8} {r['grants']:>6}  {r['exits']:>12}  {r['crash_lines']:>15}"
            f"  {r['settled_s']:>6} s  {r['all_active']!s:>10}  {r['simulator_matches']!s:>18}"
            f"  {r['max_effects_per_version']:>11}"
        )
        ok = ok and r["all_active"] and r["simulator_matches"] and r["max_effects_per_version"] == 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
