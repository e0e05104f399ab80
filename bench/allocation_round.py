#!/usr/bin/env python
"""A whole allocation round on PostgreSQL: 2,000 organizations, computed by the Celery task and
published as QuotaGrants.

Creates a throw-away PostgreSQL database (``gpu_alliance_bench_round`` by default), migrates it and
seeds it (bulk_create, not timed): the 3 founding providers with 9 pools of 3 GPU classes and their
April-June 2026 periods, ``--orgs`` member organizations (96 % active, the rest suspended or lapsed:
their requests are left out), a usage history for half of them (a granted January-March quarter
with usage records, so that the usage-decay term of the weights has work to do), a default
fair-share policy (10 % award reserve, decay on, a GB200 cap), one open round and 1 to 3 request
lines per organization (a quarter of them restricted to some pools). Then it times, through the
services:

1. closing the round;
2. the compute task (``round_compute_task``, run in this process as a worker would run it: weights
   with the usage history, pool capacities, the engine, the results);
3. publishing (``round_publish``): one QuotaGrant per (organization, pool) with its outbox row and
   audit event, all in one transaction, and the delivery messages enqueued after commit (to an
   in-memory broker: the push itself is bench/push_throughput.py's business).

It prints the wall time, the SQL queries and the process's peak RSS after each step, and checks
the result: no pool over its round capacity, no organization above its demand, grants = results.
The database is dropped at the end, also after an error, Ctrl-C or SIGTERM, unless ``--keep``.

    .venv/bin/python bench/allocation_round.py [--orgs 2000] [--keep]

See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import random
import resource
import signal
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
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
from directory_latency import seed as seed_members  # noqa: E402

ROUND_START, ROUND_END = datetime.date(2026, 4, 1), datetime.date(2026, 7, 1)
PAST_START, PAST_END = datetime.date(2026, 1, 1), datetime.date(2026, 4, 1)
# (provider slug, pool code, GPU class, capacity in GPU-hours for the quarter)
POOLS = [
    ("kddi", "kddi-osaka-gb200", "GB200", 400_000),
    ("kddi", "kddi-tokyo-gb200", "GB200", 250_000),
    ("kddi", "kddi-tokyo-h200", "H200", 300_000),
    ("sakura", "sakura-ishikari-b200", "B200", 500_000),
    ("sakura", "sakura-ishikari-h200", "H200", 600_000),
    ("sakura", "sakura-tokyo-b200", "B200", 200_000),
    ("highreso", "highreso-kagawa-h200", "H200", 450_000),
    ("highreso", "highreso-ishikawa-h200", "H200", 350_000),
    ("highreso", "highreso-ishikawa-b200", "B200", 150_000),
]
CLASSES = ("GB200", "B200", "H200")


@dataclass
class Seeded:
    staff: object
    round_id: int
    requests: int
    orgs_requesting: int
    history_grants: int
    usage_records: int


def seed(n_orgs: int) -> Seeded:
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.allocations.models import AllocationRequest, AllocationRound, FairSharePolicy
    from apps.organizations.models import Organization
    from apps.providers.models import PoolPeriod, Provider, QuotaGrant, ResourcePool, UsageRecord

    members = seed_members(n_orgs=n_orgs, n_applications=0, dashboard_orgs=1)
    rng = random.Random(20260401)
    with transaction.atomic():
        providers = {p.slug: p for p in Provider.objects.all()}
        pools = ResourcePool.objects.bulk_create(
            [
                ResourcePool(
                    provider=providers[slug],
                    code=code,
                    name=code,
                    gpu_class=gpu_class,
                    region="jp",
                    datacenter=code.split("-")[1],
                    wholesale_rate=Decimal("500"),
                )
                for slug, code, gpu_class, _ in POOLS
            ]
        )
        capacity = {code: cap for _, code, _, cap in POOLS}
        periods = PoolPeriod.objects.bulk_create(
            [
                PoolPeriod(pool=pool, starts_on=start, ends_on=end, capacity_gpu_hours=capacity[pool.code])
                for pool in pools
                for start, end in ((PAST_START, PAST_END), (ROUND_START, ROUND_END))
            ]
        )
        past = {p.pool_id: p for p in periods if p.starts_on == PAST_START}
        by_class = {c: [p for p in pools if p.gpu_class == c] for c in CLASSES}
        orgs = list(Organization.objects.order_by("pk"))

        # History: half of the orgs had a grant last quarter and used between 20 % and 160 % of it.
        grants, usage_plan = [], []
        for org in orgs[::2]:
            pool = rng.choice(pools)
            hours = rng.randint(200, 5000)
            grants.append(
                QuotaGrant(
                    organization=org,
                    period=past[pool.pk],
                    pool=pool,
                    gpu_hours=hours,
                    valid_from=PAST_START,
                    valid_until=PAST_END,
                    source="round",
                    state="active",
                    applied_version=1,
                )
            )
            usage_plan.append(hours * rng.uniform(0.2, 1.6))
        grants = QuotaGrant.objects.bulk_create(grants, batch_size=2000)
        received = timezone.now()
        records = []
        for grant, used in zip(grants, usage_plan, strict=True):
            for k in range(5):
                start = datetime.datetime(2026, 1 + k % 3, 1 + 5 * k, tzinfo=datetime.UTC)
                records.append(
                    UsageRecord(
                        provider_id=grant.pool.provider_id,
                        record_id=f"{grant.public_id}-{k}",
                        grant=grant,
                        gpu_hours=Decimal(used / 5).quantize(Decimal("0.0001")),
                        started_at=start,
                        ended_at=start + datetime.timedelta(days=1),
                        received_at=received,
                    )
                )
        UsageRecord.objects.bulk_create(records, batch_size=5000)

        policy = FairSharePolicy.objects.create(
            name="2026年度 標準",
            award_reserve_share=Decimal("0.100"),
            decay_strength=Decimal("1.00"),
            class_caps={"GB200": 20000},
            is_default=True,
        )
        allocation_round = AllocationRound.objects.create(
            name="2026年度 第1四半期",
            fiscal_year=2026,
            period_start=ROUND_START,
            period_end=ROUND_END,
            policy=policy,
            created_by=members.staff,
        )
        # Requests: 1 to 3 classes per org; demand log-normal (median 1,500 GPU-hours), so the
        # total demand is about twice the capacity; 5 % with a floor; 25 % restricted to some pools.
        requests, restricted = [], []
        for org in orgs:
            for gpu_class in rng.sample(CLASSES, rng.choice((1, 1, 2, 2, 3))):
                demand = max(10, min(60_000, int(rng.lognormvariate(7.3, 1.0))))
                request = AllocationRequest(
                    round=allocation_round,
                    organization=org,
                    gpu_class=gpu_class,
                    demand_gpu_hours=demand,
                    floor_gpu_hours=demand // 20 if rng.random() < 0.05 else None,
                    justification="LLM の継続事前学習と評価",
                    created_by=members.staff,
                )
                requests.append(request)
                if rng.random() < 0.25 and len(by_class[gpu_class]) > 1:
                    k = rng.randint(1, len(by_class[gpu_class]) - 1)
                    restricted.append((request, rng.sample(by_class[gpu_class], k)))
        requests = AllocationRequest.objects.bulk_create(requests, batch_size=2000)
        through = AllocationRequest.eligible_pools.through
        through.objects.bulk_create(
            [
                through(allocationrequest_id=request.pk, resourcepool_id=pool.pk)
                for request, chosen in restricted
                for pool in chosen
            ],
            batch_size=5000,
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Seeded(
        staff=members.staff,
        round_id=allocation_round.pk,
        requests=len(requests),
        orgs_requesting=len({r.organization_id for r in requests}),
        history_grants=len(grants),
        usage_records=len(records),
    )


# --- measure -----------------------------------------------------------------------------------


@dataclass
class Step:
    label: str
    seconds: float
    queries: int
    peak_mib: float
    note: str = ""


@contextlib.contextmanager
def measured(label: str, steps: list[Step]):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    gc.collect()
    note: dict = {}
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        yield note
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    steps.append(Step(label, seconds, len(queries), peak, note.get("note", "")))


def run(seeded: Seeded) -> tuple[list[Step], list[str]]:
    from django.db.models import Sum

    from apps.allocations import services
    from apps.allocations.models import AllocationRequest, AllocationRound, RoundPool, RoundResult
    from apps.allocations.tasks import round_compute_task
    from apps.providers.models import GrantOutbox, QuotaGrant

    steps: list[Step] = []
    staff = seeded.staff
    with measured("close the round", steps):
        services.round_close(round_id=seeded.round_id, actor=staff)
    with measured("compute task (weights, capacities, engine, results)", steps) as note:
        outcome = round_compute_task.apply(args=(seeded.round_id,), kwargs={"actor_id": staff.pk}).get()
        note["note"] = f"task returned {outcome!r}"
    allocation_round = AllocationRound.objects.get(pk=seeded.round_id)
    if allocation_round.status != "computed":
        raise RuntimeError(f"the round was not computed: {allocation_round.last_error}")
    steps[-1].note += f"; {RoundResult.objects.filter(round=allocation_round).count()} result rows"
    with measured("publish (grants + outbox + audit, one transaction; enqueue)", steps) as note:
        grants = services.round_publish(round_id=seeded.round_id, actor=staff)
        note["note"] = f"{len(grants)} grants"

    # Checks: the invariants hold on what was written.
    problems = []
    capacity = dict(RoundPool.objects.filter(round=allocation_round).values_list("pool_id", "capacity"))
    on_pool = (
        QuotaGrant.objects.filter(source_ref=f"round-{allocation_round.pk}")
        .values("pool_id")
        .annotate(total=Sum("gpu_hours"))
    )
    for row in on_pool:
        if row["total"] > capacity[row["pool_id"]]:
            problems.append(f"pool {row['pool_id']}: {row['total']} > capacity {capacity[row['pool_id']]}")
    demand = {
        (r.organization_id, r.gpu_class): r.demand_gpu_hours
        for r in AllocationRequest.objects.filter(round=allocation_round)
    }
    granted: dict = {}
    for grant in QuotaGrant.objects.filter(source_ref=f"round-{allocation_round.pk}").select_related("pool"):
        key = (grant.organization_id, grant.pool.gpu_class)
        granted[key] = granted.get(key, 0) + grant.gpu_hours
    problems += [f"{key}: {g} > demand {demand[key]}" for key, g in granted.items() if g > demand[key]]
    results = RoundResult.objects.filter(round=allocation_round, amount__gt=0).count()
    if results != len(grants):
        problems.append(f"{results} positive results but {len(grants)} grants")
    if GrantOutbox.objects.filter(grant__in=grants).count() != len(grants):
        problems.append("an outbox row is missing")
    excluded = len(AllocationRound.objects.get(pk=allocation_round.pk).excluded_requests)
    steps[1].note += f"; {excluded} requests of inactive members left out"
    return steps, problems


def print_report(seeded: Seeded, steps: list[Step], problems: list[str], args) -> None:
    print(
        f"\nAllocation round: {seeded.orgs_requesting} organizations, {seeded.requests} request lines, "
        f"{len(POOLS)} pools in {len(CLASSES)} classes; history: {seeded.history_grants} grants, "
        f"{seeded.usage_records} usage records (PostgreSQL, {os.cpu_count()} cores)\n"
    )
    rows = [["step", "wall (s)", "queries", "peak RSS (MiB)", "note"]]
    rows += [[s.label, f"{s.seconds:.2f}", str(s.queries), f"{s.peak_mib:.1f}", s.note] for s in steps]
    total = sum(s.seconds for s in steps)
    rows.append(["total", f"{total:.2f}", str(sum(s.queries for s in steps)), "", ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    ok = "all hold (capacity, demand, one grant per result, outbox rows)"
    print("\nChecks: " + ("" if problems else ok))
    for problem in problems:
        print("  PROBLEM: " + problem)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--database-url", help="server to use (default: DATABASE_URL, else local postgres)")
    parser.add_argument("--bench-db", default="gpu_alliance_bench_round")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    db = bench_database(_database_url(args.database_url), args.bench_db)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Deliveries are enqueued to an in-memory broker, not run inline and not sent anywhere.
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
    if db.exists():
        print(f"Dropping the leftover bench database {db.name!r}.", file=sys.stderr)
        db.drop()
    db.create()
    try:
        configure_django(db)
        started = time.perf_counter()
        migrate()
        print(f"Migrated {db.name!r} in {time.perf_counter() - started:.1f} s.", file=sys.stderr)
        started = time.perf_counter()
        seeded = seed(args.orgs)
        print(f"Seeded in {time.perf_counter() - started:.1f} s.", file=sys.stderr)
        steps, problems = run(seeded)
        print_report(seeded, steps, problems, args)
        return 1 if problems else 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if "django.db" in sys.modules:
            from django.db import connections

            with contextlib.suppress(Exception):
                connections.close_all()
        if args.keep:
            print(f"Kept the bench database {db.name!r} (drop it with: dropdb {db.name}).", file=sys.stderr)
        else:
            db.drop()
            print(f"Dropped the bench database {db.name!r}.", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
