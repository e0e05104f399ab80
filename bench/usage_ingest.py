#!/usr/bin/env python
"""Usage ingestion: 1,000,000 records through ``services.usage_ingest`` on PostgreSQL, against a plain
COPY of the same rows into the same table.

Creates a throw-away PostgreSQL database (``gpu_alliance_bench_usage`` by default), migrates it and
seeds one provider with 1,000 grants. Then, with the records generated per batch (10,000, as a push
delivers them; generation is not timed):

1. ``usage_ingest(strict=True)`` of every batch: all new records;
2. the same batches again: a re-delivery, all duplicates;
3. ``TRUNCATE``, then a plain ``COPY`` of the same rows into ``providers_usagerecord``
   (psycopg's ``cursor.copy``, one COPY and transaction per batch);
4. a prototype of a faster ingestion (not in apps/): the same validation without model instances,
   COPY into a temporary table, ``INSERT … SELECT … ON CONFLICT DO NOTHING``; new, then re-delivered.

Prints records per second, the ratio to COPY and memory (peak RSS, and tracemalloc's peak for one
batch). The database is dropped at the end, also after an error, Ctrl-C or SIGTERM, unless
``--keep`` is given.

    .venv/bin/python bench/usage_ingest.py [--records 1000000] [--batch 10000] [--profile 10]

See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import random
import resource
import signal
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
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

EPOCH = datetime.datetime(2026, 4, 1, tzinfo=datetime.UTC)
COPY_COLUMNS = "provider_id, record_id, grant_id, gpu_hours, started_at, ended_at, received_at"


# --- seed and records --------------------------------------------------------------------------


@dataclass
class Seeded:
    provider: object
    grant_ids: list[str]  # public ids, as a provider sends them
    grant_pks: dict[str, int]


def seed(*, n_grants: int) -> Seeded:
    from django.db import connection, transaction

    from apps.organizations.models import Membership, Organization
    from apps.providers.models import PoolPeriod, Provider, QuotaGrant, ResourcePool

    with transaction.atomic():
        provider = Provider.objects.create(
            slug="sakura", name_ja="さくらインターネット", name_en="SAKURA internet", api_key_id="bench"
        )
        pool = ResourcePool.objects.create(
            provider=provider,
            code="sakura-ishikari-h200",
            name="Ishikari H200",
            gpu_class="H200",
            region="Hokkaido",
            datacenter="Ishikari",
        )
        period = PoolPeriod.objects.create(
            pool=pool,
            starts_on=datetime.date(2026, 4, 1),
            ends_on=datetime.date(2026, 7, 1),
            capacity_gpu_hours="100000000",
        )
        orgs = Organization.objects.bulk_create(
            [
                Organization(
                    slug=f"bench-org-{i:03d}",
                    name_ja=f"ベンチ大学{i}",
                    name_en=f"Bench University {i}",
                    kind="academic",
                    address="東京都千代田区千代田1-1",
                    home_provider=provider,
                )
                for i in range(100)
            ]
        )
        Membership.objects.bulk_create(
            [
                Membership(organization=o, tier="academic", status="active", started_on=period.starts_on)
                for o in orgs
            ]
        )
        # The grants are only referenced by the usage records: bulk_create, no outbox.
        grants = QuotaGrant.objects.bulk_create(
            [
                QuotaGrant(
                    organization=orgs[i % len(orgs)],
                    period=period,
                    pool=pool,
                    gpu_hours=Decimal("1000"),
                    valid_from=period.starts_on,
                    valid_until=period.ends_on,
                    state="active",
                    applied_version=1,
                )
                for i in range(n_grants)
            ]
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Seeded(
        provider=provider,
        grant_ids=[str(g.public_id) for g in grants],
        grant_pks={str(g.public_id): g.pk for g in grants},
    )


def make_batch(seeded: Seeded, index: int, size: int, seed: int) -> list[dict]:
    """The records of batch ``index``, as a push delivers them (JSON-decoded). Deterministic, so
    that a re-delivery and the COPY see the same rows; random UUID record ids as the simulator's."""
    rng = random.Random(seed * 1_000_003 + index)
    grant_ids = seeded.grant_ids
    records = []
    for _ in range(size):
        start = EPOCH + datetime.timedelta(hours=rng.randrange(24 * 90))
        records.append(
            {
                "record_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "grant_id": rng.choice(grant_ids),
                "gpu_hours": f"{rng.randint(1, 800) / 100:.2f}",
                "started_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ended_at": (start + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return records


# --- the ways in -------------------------------------------------------------------------------


@dataclass
class Counts:
    accepted: int = 0
    duplicates: int = 0


def via_service(seeded: Seeded, records: list[dict]) -> Counts:
    from apps.providers.services import usage_ingest

    result = usage_ingest(provider=seeded.provider, records=records, strict=True)
    return Counts(result.accepted, result.duplicates)


def via_copy(seeded: Seeded, records: list[dict]) -> Counts:
    """A plain COPY of the rows: no validation, no duplicate check (the table is empty)."""
    from django.db import connection, transaction

    provider_id, pks = seeded.provider.pk, seeded.grant_pks
    now = datetime.datetime.now(datetime.UTC)
    with (
        transaction.atomic(),
        connection.connection.cursor() as cursor,
        cursor.copy(f"COPY providers_usagerecord ({COPY_COLUMNS}) FROM STDIN") as copy,
    ):
        for r in records:
            copy.write_row(
                (
                    provider_id,
                    r["record_id"],
                    pks[r["grant_id"]],
                    r["gpu_hours"],
                    r["started_at"],
                    r["ended_at"],
                    now,
                )
            )
    return Counts(accepted=len(records))


class PrototypeRejected(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} invalid usage records")
        self.errors = errors


def _time(value) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        from django.utils.dateparse import parse_datetime  # the forms fromisoformat refuses

        try:
            parsed = parse_datetime(value)
        except ValueError:
            return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


_MAX_HOURS = Decimal("1000000")
_QUANTUM = Decimal("0.0001")
_INCOMING = """
    CREATE TEMPORARY TABLE IF NOT EXISTS usage_incoming (
        record_id varchar(100) NOT NULL, grant_id bigint NOT NULL, gpu_hours numeric(12, 4) NOT NULL,
        started_at timestamptz NOT NULL, ended_at timestamptz NOT NULL
    ) ON COMMIT DELETE ROWS
"""


def via_prototype(seeded: Seeded, records: list[dict]) -> Counts:
    """What usage_ingest could do (the same checks and answers, strict mode): validate into
    tuples, COPY them into a temporary table, and let PostgreSQL drop the duplicates with
    INSERT … ON CONFLICT DO NOTHING (which also stays right under concurrent pushes of the same
    records, where "existing query, then insert" counts a record accepted twice)."""
    from django.db import connection, transaction

    from apps.providers.models import QuotaGrant

    provider = seeded.provider
    wanted = {r.get("grant_id") for r in records if isinstance(r, dict)}
    grant_map = {
        str(public_id): pk
        for public_id, pk in QuotaGrant.objects.filter(
            pool__provider=provider, public_id__in=[g for g in wanted if isinstance(g, str) and _uuid(g)]
        ).values_list("public_id", "pk")
    }
    rows: dict[str, tuple] = {}
    errors: list[dict] = []
    in_batch = 0
    for index, r in enumerate(records):
        if not isinstance(r, dict):
            errors.append({"index": index, "record_id": None, "errors": {"record": ["Expected an object."]}})
            continue
        problems = {}
        record_id = r.get("record_id")
        if not isinstance(record_id, str) or not 0 < len(record_id) <= 100:
            problems["record_id"] = ["A record id of 1 to 100 characters is required."]
        grant_pk = grant_map.get(r.get("grant_id"))
        if grant_pk is None:
            problems["grant_id"] = ["Unknown grant for this provider."]
        try:
            hours = Decimal(str(r.get("gpu_hours")))
            if not hours.is_finite() or hours < 0 or hours > _MAX_HOURS:
                raise InvalidOperation
            hours = hours.quantize(_QUANTUM)
        except (InvalidOperation, ValueError):
            problems["gpu_hours"] = ["GPU-hours must be a number between 0 and 1,000,000."]
        started, ended = _time(r.get("started_at")), _time(r.get("ended_at"))
        if started is None:
            problems["started_at"] = ["An RFC 3339 time with a time zone is required."]
        if ended is None:
            problems["ended_at"] = ["An RFC 3339 time with a time zone is required."]
        if started and ended and ended < started:
            problems["ended_at"] = ["The interval ends before it starts."]
        if problems:
            rid = record_id if isinstance(record_id, str) else None
            errors.append({"index": index, "record_id": rid, "errors": problems})
        elif record_id in rows:
            in_batch += 1
        else:
            rows[record_id] = (record_id, grant_pk, hours, started, ended)
    if errors:
        raise PrototypeRejected(errors)
    with transaction.atomic(), connection.connection.cursor() as cursor:
        cursor.execute(_INCOMING)
        with cursor.copy(
            "COPY usage_incoming (record_id, grant_id, gpu_hours, started_at, ended_at) FROM STDIN"
        ) as copy:
            for row in rows.values():
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO providers_usagerecord ({COPY_COLUMNS})"
            " SELECT %s, record_id, grant_id, gpu_hours, started_at, ended_at, now() FROM usage_incoming"
            " ON CONFLICT (provider_id, record_id) DO NOTHING",
            [provider.pk],
        )
        accepted = cursor.rowcount
    return Counts(accepted=accepted, duplicates=in_batch + len(rows) - accepted)


def _uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- measure -----------------------------------------------------------------------------------


@dataclass
class Phase:
    label: str
    records: int = 0
    seconds: float = 0.0
    batch_ms: list[float] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    maxrss_mib: float = 0.0
    ratio: float | None = None

    @property
    def per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def table_rows() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM providers_usagerecord")
        return cursor.fetchone()[0]


def truncate() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE providers_usagerecord")
        cursor.execute("CHECKPOINT")  # the next phase does not pay for the previous one's writes


def run_phase(label: str, way: Callable, seeded: Seeded, args, *, expect_new: bool) -> Phase:
    phase = Phase(label)
    batches = (args.records + args.batch - 1) // args.batch
    gc.collect()
    for index in range(batches):
        size = min(args.batch, args.records - index * args.batch)
        records = make_batch(seeded, index, size, args.seed)  # not timed
        started = time.perf_counter()
        counts = way(seeded, records)
        elapsed = time.perf_counter() - started
        phase.batch_ms.append(elapsed * 1000)
        phase.seconds += elapsed
        phase.records += size
        phase.counts.accepted += counts.accepted
        phase.counts.duplicates += counts.duplicates
        if (index + 1) % max(1, batches // 10) == 0:
            print(
                f"  {label}: {phase.records:,} records, {phase.seconds:.1f} s, {phase.per_second:,.0f}/s",
                file=sys.stderr,
            )
    phase.maxrss_mib = maxrss_mib()
    want = (args.records, 0) if expect_new else (0, args.records)
    got = (phase.counts.accepted, phase.counts.duplicates)
    if got != want:
        raise RuntimeError(f"{label}: accepted/duplicates {got}, expected {want}")
    if (rows := table_rows()) != args.records:
        raise RuntimeError(f"{label}: the table holds {rows} records, expected {args.records}")
    return phase


def batch_peaks(seeded: Seeded, args) -> dict[str, float]:
    """tracemalloc's peak (MiB) over one batch, new and re-delivered, for the service and the
    prototype. Untimed (tracemalloc slows Python down several times); the table is emptied after."""
    records = make_batch(seeded, 10**6, args.batch, args.seed)  # a batch index no phase used
    peaks = {}
    for name, way in (("service", via_service), ("prototype", via_prototype)):
        truncate()
        for case in ("new", "re-delivered"):
            gc.collect()
            tracemalloc.start()
            way(seeded, records)
            peaks[f"{name} {case}"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    truncate()
    return peaks


def profile(seeded: Seeded, args) -> None:
    """cProfile over --profile batches of usage_ingest, new then re-delivered."""
    import cProfile
    import pstats

    truncate()
    batches = [make_batch(seeded, 2 * 10**6 + i, args.batch, args.seed) for i in range(args.profile)]
    for case in ("new records", "re-delivery"):
        profiler = cProfile.Profile()
        profiler.enable()
        for records in batches:
            via_service(seeded, records)
        profiler.disable()
        print(f"\ncProfile of usage_ingest, {args.profile} batches of {args.batch:,} records, {case}:")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        for part, seconds in _breakdown(stats):
            print(f"  {part:<58} {seconds:7.2f} s")
        stats.sort_stats("tottime").print_stats(12)
    truncate()


def _breakdown(stats) -> list[tuple[str, float]]:
    """usage_ingest's cumulative time split into its parts (profiled times, overhead included)."""

    def find(filename: str, function: str) -> list:
        return [key for key in stats.stats if key[0].endswith(filename) and key[2] == function]

    def edge(callees: list, caller) -> float:  # time in the callees when called from caller
        return sum(stats.stats[c][4].get(caller, (0, 0, 0, 0.0))[3] for c in callees)

    found = find("services.py", "usage_ingest")
    if not found:
        return []
    ingest = found[0]
    total = stats.stats[ingest][3]
    parts = [
        ("UsageRecord(...) instances", edge(find("base.py", "__init__"), ingest)),
        ("grant lookup and existence queries", edge(find("query.py", "__iter__"), ingest)),
        (
            "bulk_create (INSERT … ON CONFLICT DO NOTHING)",
            sum(stats.stats[k][3] for k in find("query.py", "bulk_create")),
        ),
        ("commit", edge(find("transaction.py", "__exit__"), ingest)),
    ]
    parts.append(("the rest: validation, dictionaries, Decimal", total - sum(p[1] for p in parts)))
    return [("usage_ingest, in all", total), *parts]


def print_report(phases: list[Phase], peaks: dict[str, float], args) -> None:
    headers = [
        "phase",
        "records",
        "seconds",
        "records/s",
        "x COPY",
        "batch ms p50 / max",
        "accepted",
        "duplicates",
        "peak RSS MiB",
    ]
    rows = [
        [
            p.label,
            f"{p.records:,}",
            f"{p.seconds:.1f}",
            f"{p.per_second:,.0f}",
            f"{p.ratio:.1f}" if p.ratio is not None else "",
            f"{statistics.median(p.batch_ms):.0f} / {max(p.batch_ms):.0f}",
            f"{p.counts.accepted:,}",
            f"{p.counts.duplicates:,}",
            f"{p.maxrss_mib:.0f}",
        ]
        for p in phases
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(
        f"\n{args.records:,} usage records in batches of {args.batch:,} on PostgreSQL, one provider, "
        f"{args.grants:,} grants. Timed: the calls only (records generated per batch, untimed). "
        "'x COPY' = phase time / plain COPY time. Peak RSS is the process's high-water mark so far."
    )
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))
    if peaks:
        print(
            f"\nPython allocations, peak over one batch of {args.batch:,} (tracemalloc): "
            + ", ".join(f"{k} {v:.1f} MiB" for k, v in peaks.items())
        )
    ingest = next(p for p in phases if p.label.startswith("usage_ingest, new"))
    if ingest.ratio is not None and ingest.ratio > 5:
        print(f"usage_ingest takes {ingest.ratio:.1f}x the time of a plain COPY (> 5x): see bench/README.md.")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url", help="PostgreSQL server for the bench database (as directory_latency)"
    )
    parser.add_argument("--bench-db", default="gpu_alliance_bench_usage")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000, help="records per call (a push: up to 10,000)")
    parser.add_argument("--grants", type=int, default=1_000, help="grants the records are spread over")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-prototype", action="store_true", help="skip the prototype's phases")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc batch peaks")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also cProfile usage_ingest over N batches"
    )
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args(argv)
    if args.records < 1 or args.batch < 1 or args.grants < 1 or args.profile < 0:
        parser.error("--records, --batch and --grants must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    db = bench_database(_database_url(args.database_url), args.bench_db)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if db.exists():
        print(f"Dropping the leftover bench database {db.name!r}.", file=sys.stderr)
        db.drop()
    db.create()
    try:
        configure_django(db)
        migrate()
        seeded = seed(n_grants=args.grants)
        print(f"Seeded {args.grants} grants; peak RSS {maxrss_mib():.0f} MiB.", file=sys.stderr)

        phases = [
            run_phase("usage_ingest, new records", via_service, seeded, args, expect_new=True),
            run_phase(
                "usage_ingest, re-delivery (all duplicates)", via_service, seeded, args, expect_new=False
            ),
        ]
        truncate()
        copy = run_phase("plain COPY (same rows)", via_copy, seeded, args, expect_new=True)
        phases.append(copy)
        if not args.no_prototype:
            truncate()
            phases.append(
                run_phase("prototype COPY+ON CONFLICT, new", via_prototype, seeded, args, expect_new=True)
            )
            phases.append(run_phase("prototype, re-delivery", via_prototype, seeded, args, expect_new=False))
        for phase in phases:
            phase.ratio = phase.seconds / copy.seconds
        peaks = {} if args.no_memory else batch_peaks(seeded, args)
        print_report(phases, peaks, args)
        if args.profile:
            profile(seeded, args)
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
            try:
                db.drop()
            except Exception as exc:
                print(f"Could not drop {db.name!r} ({exc}); drop it with: dropdb {db.name}", file=sys.stderr)
                raise
            print(f"Dropped the bench database {db.name!r}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
