#!/usr/bin/env python
"""The pages of issue 11's "pages at 10,000 organizations", on PostgreSQL with 10,000 organizations.

Creates a throw-away database (``gpu_alliance_bench_scale``), migrates it and seeds it with
bench/directory_latency.py's generator (10,000 organizations, ``--dashboard-orgs`` of them — all by
default — with a role for the dashboard user), then adds: three providers' pools (H200, B200, GB200)
with a current capacity period, a computed round with a result for every active organization (one
to three classes each, one to three pools per class, about a quarter of the (organization, class)
rows with their demand met) and its weights, and ``--grants`` grants for one organization (with
usage months, and a few grants still sending, failing or drifted).

Then times (django.test.Client in-process, as directory_latency.py): the staff round result (first
page, a filter, a search, a far page, the htmx partial), the staff grant form and its organization
search, the dashboard of the user in every organization (first and a far page), the organization's
grant list (first and a far page) and the staff grant list: median, p95 and the queries of one
request. Responses must answer 200 and render rows.

    .venv/bin/python bench/scale_pages.py [--orgs 10000] [--grants 10000] [--runs 20] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import random
import signal
import sys
import time
from decimal import Decimal
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
    measure,
    migrate,
    print_table,
    seed,
)

CLASSES = {"H200": ("kddi", "sakura", "highreso"), "B200": ("sakura",), "GB200": ("kddi",)}


def seed_pools():
    """Two pools per provider and class (CLASSES), each with a current capacity period of a year
    (periods by pool id)."""
    from django.db import transaction
    from django.utils import timezone

    from apps.providers.models import PoolPeriod, Provider, ResourcePool

    start = timezone.localdate().replace(day=1)
    end = start.replace(year=start.year + 1)
    providers = {p.slug: p for p in Provider.objects.all()}
    with transaction.atomic():
        pools = []
        for gpu_class, slugs in CLASSES.items():
            for slug in slugs:
                for site in ("east", "west"):
                    pools.append(
                        ResourcePool.objects.create(
                            provider=providers[slug],
                            code=f"{slug}-{gpu_class.lower()}-{site}",
                            name=f"{slug} {gpu_class} {site}",
                            gpu_class=gpu_class,
                            region="東日本" if site == "east" else "西日本",
                            datacenter=site,
                            wholesale_rate=Decimal("450.00"),
                        )
                    )
        periods = {
            pool.pk: PoolPeriod.objects.create(
                pool=pool, starts_on=start, ends_on=end, capacity_gpu_hours=Decimal("100000000")
            )
            for pool in pools
        }
    return pools, periods


def seed_round(staff, pools, periods):
    """A computed round with results for every active member (one to three classes each, one to
    three pools per class, about a quarter of the rows with their demand met)."""
    from django.db import transaction
    from django.utils import timezone

    from apps.allocations.models import AllocationRound, FairSharePolicy, RoundPool, RoundResult, RoundWeight
    from apps.organizations.models import Organization

    rng = random.Random(20261204)
    start = timezone.localdate().replace(day=1)
    end = start.replace(year=start.year + 1)
    with transaction.atomic():
        policy = FairSharePolicy.objects.create(name="bench", is_default=True)
        allocation_round = AllocationRound.objects.create(
            name="Bench round",
            fiscal_year=start.year,
            period_start=start,
            period_end=end,
            policy=policy,
            status=AllocationRound.Status.COMPUTED,
            computed_at=timezone.now(),
            progress=100,
            created_by=staff,
        )
        RoundPool.objects.bulk_create(
            [
                RoundPool(round=allocation_round, pool=pool, period=periods[pool.pk], capacity=1_000_000)
                for pool in pools
            ]
        )
        by_class = {c: [p for p in pools if p.gpu_class == c] for c in CLASSES}
        orgs = list(Organization.objects.filter(membership__status="active").values_list("pk", flat=True))
        weights, results = [], []
        for org_id in orgs:
            weights.append(
                RoundWeight(
                    round=allocation_round,
                    organization_id=org_id,
                    weight=Decimal(rng.choice(["1", "1.5", "2.25", "3"])),
                    derivation={"tier": "regular", "tier_weight": 1, "kind": "startup", "kind_factor": 1},
                )
            )
            for gpu_class in rng.sample(list(CLASSES), rng.randint(1, 3)):
                demand = rng.randint(100, 5000)
                met = rng.random() < 0.25
                placed = rng.sample(by_class[gpu_class], min(len(by_class[gpu_class]), rng.randint(1, 3)))
                granted = demand if met else rng.randint(0, demand // 2)
                common = {
                    "round": allocation_round,
                    "organization_id": org_id,
                    "gpu_class": gpu_class,
                    "demand": demand,
                    "exact_amount": float(granted),
                    "level": granted / 2,
                    "stopped_reason": "demand_met" if met else "pools_exhausted",
                    "exhausted_pools": [] if met else [p.code for p in placed],
                }
                if granted == 0:
                    results.append(RoundResult(pool=None, amount=0, **common))
                    continue
                shares = [granted // len(placed)] * len(placed)
                shares[0] += granted - sum(shares)
                results += [
                    RoundResult(pool=pool, amount=share, **common)
                    for pool, share in zip(placed, shares, strict=True)
                ]
        RoundWeight.objects.bulk_create(weights, batch_size=2000)
        RoundResult.objects.bulk_create(results, batch_size=2000)
    return allocation_round, len(results)


def seed_grants(*, organization, pools, periods, n: int, start_index: int = 0, staff=None) -> None:
    """``n`` grants for ``organization`` over the pools, a usage month for two thirds of them, and
    about 1 % each still sending, failing (retried many times) or with an open drift."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from apps.providers.models import GrantDrift, GrantOutbox, QuotaGrant, UsageMonth

    rng = random.Random(start_index + 7)
    now = timezone.now()
    with transaction.atomic():
        grants = []
        for i in range(start_index, start_index + n):
            pool = pools[i % len(pools)]
            period = periods[pool.pk]
            grants.append(
                QuotaGrant(
                    organization=organization,
                    period=period,
                    pool=pool,
                    gpu_hours=Decimal(rng.randint(10, 2000)),
                    valid_from=period.starts_on,
                    valid_until=period.ends_on,
                    source="manual",
                    source_ref=f"BENCH-{i}",
                    applied_version=1,
                    state="active",
                    created_by=staff,
                )
            )
        grants = QuotaGrant.objects.bulk_create(grants, batch_size=2000)
        UsageMonth.objects.bulk_create(
            [
                UsageMonth(grant=g, month=g.valid_from, gpu_hours=Decimal(rng.randint(0, 2000)), records=10)
                for g in grants
                if rng.random() < 0.67
            ],
            batch_size=2000,
        )
        outbox, drifts = [], []
        for g in grants:
            draw = rng.random()
            if draw < 0.02:  # sending, or failing after many attempts
                outbox.append(
                    GrantOutbox(
                        grant=g,
                        provider_id=g.pool.provider_id,
                        operation="apply",
                        version=1,
                        idempotency_key=f"bench-{g.public_id}",
                        payload={},
                        attempts=settings.OUTBOX_FAILING_AFTER_ATTEMPTS if draw < 0.01 else 0,
                        next_attempt_at=now + datetime.timedelta(hours=1),
                    )
                )
            elif draw < 0.03:
                drifts.append(
                    GrantDrift(
                        provider_id=g.pool.provider_id,
                        grant=g,
                        grant_public_id=str(g.public_id),
                        kind=GrantDrift.Kind.MISSING,
                        ours={"version": 1},
                        theirs=None,
                    )
                )
        GrantOutbox.objects.bulk_create(outbox, batch_size=2000)
        GrantDrift.objects.bulk_create(drifts, batch_size=2000)


def run(args) -> list:
    from urllib.parse import urlencode

    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from apps.organizations.models import Organization, OrgRole

    started = time.perf_counter()
    seeded = seed(n_orgs=args.orgs, n_applications=100, dashboard_orgs=args.dashboard_orgs or args.orgs)
    pools, periods = seed_pools()
    allocation_round, n_results = seed_round(seeded.staff, pools, periods)
    organization = Organization.objects.order_by("pk").first()
    if not OrgRole.objects.filter(organization=organization, user=seeded.dashboard_user).exists():
        OrgRole.objects.create(organization=organization, user=seeded.dashboard_user, role="admin")
    seed_grants(organization=organization, pools=pools, periods=periods, n=args.grants, staff=seeded.staff)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"Seeded {args.orgs} organizations, {n_results} round result rows and {args.grants} grants in "
        f"{time.perf_counter() - started:.1f} s.",
        file=sys.stderr,
    )

    staff, member = Client(), Client()
    staff.force_login(seeded.staff)
    member.force_login(seeded.dashboard_user)
    detail = reverse("allocations:round-detail", args=[allocation_round.pk])
    partial = reverse("allocations:round-results", args=[allocation_round.pk])
    result_rows = _rows(r'<tr id="row-\d+-[a-z0-9-]+">')
    grant_rows = _rows(r'<td class="nowrap small">')
    org_grants = reverse("providers:org-grants", args=[organization.slug])
    far = max(1, args.grants // 50 // 2)
    pages = [
        ("round result, first page", staff, detail, result_rows),
        ("round result, kind + unmet", staff, f"{detail}?kind=academic&met=unmet", result_rows),
        ("round result, search", staff, f"{detail}?{urlencode({'q': 'ロボ'})}", result_rows),
        ("round result, provider + page 20", staff, f"{detail}?provider=kddi&page=20", result_rows),
        ("round result, htmx partial", staff, f"{partial}?gpu_class=H200&page=5", result_rows),
        ("grant form", staff, reverse("providers:grant-create"), _rows(r'name="organization"', expect=1)),
        (
            "grant form: organization search",
            staff,
            f"{reverse('providers:grant-org-search')}?{urlencode({'q': 'ロボ'})}",
            _rows(r"<li><a href="),
        ),
        ("dashboard, first page", member, reverse("dashboard"), _rows(r'href="/orgs/[^/"]+/manage/"')),
        (
            "dashboard, page 100",
            member,
            f"{reverse('dashboard')}?orgs_page=100",
            _rows(r'href="/orgs/[^/"]+/manage/"'),
        ),
        ("org grant list, first page", member, org_grants, grant_rows),
        (f"org grant list, page {far}", member, f"{org_grants}?page={far}", grant_rows),
        ("staff grant list", staff, reverse("providers:grant-list"), _rows(r'<tr id="grant-')),
    ]
    results = []
    for label, client, path, check in pages:
        results.append(measure(client, label, path, check, runs=args.runs, warmup=args.warmup))
        print(f"  measured {label}", file=sys.stderr)
    return results


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url", help="server to create the bench database on (default: DATABASE_URL)"
    )
    parser.add_argument("--bench-db", default="gpu_alliance_bench_scale")
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--dashboard-orgs", type=int, default=0, help="default: every organization")
    parser.add_argument("--grants", type=int, default=10_000, help="grants of the first organization")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    db = bench_database(_database_url(args.database_url), args.bench_db)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if db.exists():
        db.drop()
    db.create()
    try:
        configure_django(db)
        migrate()
        print_table(run(args), runs=args.runs, warmup=args.warmup)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
