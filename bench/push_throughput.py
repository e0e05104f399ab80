#!/usr/bin/env python
"""Push throughput: 10,000 quota grants through real Celery workers to the provider simulator.

For each run (without faults, then with 30 % faults of every kind) the script creates a
throw-away PostgreSQL database (``gpu_alliance_bench_push`` by default), migrates and seeds it,
starts a private ``redis-server`` (the broker), the provider simulator
(``manage.py provider_simulator``) and two Celery worker processes, then creates the grants with
``services.grant_create`` while acting as celery beat (``outbox_sweep`` every second). It waits
until every outbox row is done and checks that the simulator holds exactly the portal's active
grants, each version applied once. It prints a table; processes and the database are cleaned up
also after an error, Ctrl-C or SIGTERM (``--keep`` keeps the last run's database).

    .venv/bin/python bench/push_throughput.py [--grants 10000] [--runs clean,faults] [--pool threads]

See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
for _path in (BASE_DIR, BASE_DIR / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from directory_latency import (  # noqa: E402  (bench/ is on sys.path, not a package)
    BenchDatabase,
    _database_url,
    _exit_on_sigterm,
    bench_database,
    configure_django,
    migrate,
)

SECRET = "bench-push-secret"
KEY_ID = "bench-key"
PROVIDER_SLUG = "sakura"
# As in tests/providers/test_fault_tolerance.py: short time-outs and backoff, so that a faulty run
# converges in seconds rather than hours. Both runs use the same settings.
WORKER_ENV = {
    "PROVIDER_SECRETS": f"{PROVIDER_SLUG}={SECRET}",
    "PROVIDER_HTTP_TIMEOUT": "1.0",
    "OUTBOX_BACKOFF_BASE": "0.2",
    "OUTBOX_BACKOFF_MAX": "2",
    "OUTBOX_CLAIM_SECONDS": "5",
}
RUNS = {"clean": 0.0, "faults": 0.3}
# What a session waiting for a lock waits for, told by the table its query names: the audit chain
# head (every grant change and delivery outcome appends to one chain), the pool period (locked by
# grant_create), an outbox row, a grant.
LOCKED_ROWS = (
    "governance_auditchainhead",
    "providers_poolperiod",
    "providers_grantoutbox",
    "providers_quotagrant",
)


# --- processes ---------------------------------------------------------------------------------


class Worker:
    """``celery -A portal worker`` in its own process, on the bench database and broker."""

    def __init__(self, *, name: str, broker_url: str, database_url: str, pool: str, concurrency: int, env):
        self.name, self.pool, self.concurrency = name, pool, concurrency
        self.broker_url, self.database_url, self.env = broker_url, database_url, env
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed in stop())
            prefix=f"bench-{name}-", suffix=".log", delete=False
        )

    def start(self) -> Worker:
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": self.broker_url,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            **self.env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-n",
                f"{self.name}@%h",
                "-P",
                self.pool,
                "-c",
                str(self.concurrency),
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "WARNING",
            ],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()  # warm shutdown: the tasks in progress finish
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.log.close()

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def remove_log(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


def wait_for_workers(names: list[str], timeout: float = 60.0) -> None:
    from portal.celery import app

    deadline = time.monotonic() + timeout
    wanted = {f"{name}@" for name in names}
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        seen = {next(iter(reply)).split("@")[0] + "@" for reply in replies}
        if wanted <= seen:
            return
    raise RuntimeError(f"the Celery workers did not answer a ping within {timeout:.0f} s")


# --- CPU accounting (Linux /proc) -------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return [
        text[: text.index(" ")],
        text[text.index("(") + 1 : text.rindex(")")],
        *text[text.rindex(")") + 2 :].split(),
    ]


_TICK = os.sysconf("SC_CLK_TCK")


def _all_stats() -> dict[int, list[str]]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                stats[int(entry)] = fields
    return stats


def _cpu(fields: list[str], *, children: bool = False) -> float:
    # fields: pid, comm, state, ppid, … utime is field 14 of stat (index 13 here), stime 15.
    ticks = int(fields[13]) + int(fields[14])
    if children:
        ticks += int(fields[15]) + int(fields[16])  # reaped children (e.g. ended postgres backends)
    return ticks / _TICK


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each group of process trees, and by all PostgreSQL processes."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[3]), []).append(pid)

    def tree(pid: int) -> float:
        if pid not in stats:
            return 0.0
        return _cpu(stats[pid], children=True) + sum(tree(c) for c in children.get(pid, []))

    # The bench process alone: the workers, the simulator and redis are its children.
    result = {
        name: sum(_cpu(stats[pid]) if name == "bench" else tree(pid) for pid in pids if pid in stats)
        for name, pids in groups.items()
    }
    # PostgreSQL: the postmaster (a postgres process whose parent is not one) with its reaped
    # backends, plus the backends alive now.
    postgres = [pid for pid, fields in stats.items() if fields[1] == "postgres"]
    postmasters = [pid for pid in postgres if stats.get(int(stats[pid][3]), ["", ""])[1] != "postgres"]
    result["postgres"] = sum(_cpu(stats[pid], children=True) for pid in postmasters) + sum(
        _cpu(stats[pid]) for pid in postgres if pid not in postmasters
    )
    return result


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


# --- seed --------------------------------------------------------------------------------------


@dataclass
class Seeded:
    staff: object
    orgs: list
    period_id: int


def seed(*, base_url: str, n_orgs: int) -> Seeded:
    from django.db import connection, transaction

    from apps.accounts.models import User
    from apps.organizations.models import Membership, Organization
    from apps.providers.models import PoolPeriod, Provider, ResourcePool

    with transaction.atomic():
        provider = Provider.objects.create(
            slug=PROVIDER_SLUG,
            name_ja="さくらインターネット",
            name_en="SAKURA internet",
            api_base_url=base_url,
            api_key_id=KEY_ID,
        )
        pool = ResourcePool.objects.create(
            provider=provider,
            code="sakura-ishikari-h200",
            name="Ishikari H200",
            gpu_class="H200",
            region="Hokkaido",
            datacenter="Ishikari",
            wholesale_rate="450.00",
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
                    slug=f"bench-org-{i:04d}",
                    name_ja=f"ベンチ大学{i}",
                    name_en=f"Bench University {i}",
                    kind="academic",
                    address="東京都千代田区千代田1-1",
                    home_provider=provider,
                )
                for i in range(n_orgs)
            ]
        )
        Membership.objects.bulk_create(
            [
                Membership(organization=o, tier="academic", status="active", started_on=period.starts_on)
                for o in orgs
            ]
        )
        staff = User.objects.create(email="staff@bench.example", full_name="事務局", is_staff=True)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return Seeded(
        staff=staff,
        orgs=list(Organization.objects.select_related("membership").order_by("pk")),
        period_id=period.pk,
    )


# --- the sweeper (acting as celery beat) -------------------------------------------------------


class Sweeper(threading.Thread):
    """Runs ``services.outbox_sweep`` every ``every`` seconds; samples the broker's queue length."""

    def __init__(self, *, every: float, broker_url: str, grace: float = 0.0):
        super().__init__(name="sweeper", daemon=True)
        self.every, self.broker_url, self.grace = every, broker_url, grace
        self._swept_at: dict[int, float] = {}  # outbox id: when this sweeper last enqueued it
        self.stop_event = threading.Event()
        self.sweeps = 0
        self.enqueued = 0
        self.max_queue = 0
        self.lock_samples = 0
        self.lock_waiters: dict[str, int] = {}  # summed over samples, by the row being waited for
        self.error: BaseException | None = None

    def run(self) -> None:
        import redis
        from django.db import connection

        from apps.providers.services import outbox_sweep

        sweep = outbox_sweep if not self.grace else self._sweep_with_grace
        client = redis.Redis.from_url(self.broker_url)
        try:
            while not self.stop_event.wait(self.every):
                self.max_queue = max(self.max_queue, client.llen("celery"))
                self._sample_lock_waits(connection)
                self.enqueued += sweep()
                self.sweeps += 1
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            client.close()
            connection.close()

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=30)

    def _sample_lock_waits(self, connection) -> None:
        """Count the sessions of the bench database waiting for a lock, by what they wait for."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            )
            for (query,) in cursor.fetchall():
                kind = next((k for k in LOCKED_ROWS if k in query), "other")
                self.lock_waiters[kind] = self.lock_waiters.get(kind, 0) + 1
        self.lock_samples += 1

    def _sweep_with_grace(self, limit: int = 1000) -> int:
        """A prototype of services.outbox_sweep (--sweep-grace; apps/ unchanged) that hands a row
        to the broker at most once per ``grace`` seconds: a pending row is re-enqueued only once
        it has been due, and not re-enqueued by this sweeper, for ``grace`` seconds. That is what
        an ``enqueued_at`` column on GrantOutbox, set at each publish, would give; here the
        sweeper's own publishes are remembered in memory and ``next_attempt_at`` stands for the
        first (on commit) or the retry's (countdown) publish."""
        from datetime import timedelta

        from django.db.models import Q
        from django.utils import timezone

        from apps.providers.models import GrantOutbox
        from apps.providers.services import _enqueue_delivery

        now, clock = timezone.now(), time.monotonic()
        recent = {pk for pk, at in self._swept_at.items() if clock - at < self.grace}
        candidates = (
            GrantOutbox.objects.filter(
                Q(state="pending", next_attempt_at__lte=now - timedelta(seconds=self.grace))
                | Q(state="in_flight", claimed_until__lt=now)
            )
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[: limit + len(recent)]
        )
        ids = [pk for pk in candidates if pk not in recent][:limit]
        for outbox_id in ids:
            _enqueue_delivery(outbox_id)
            self._swept_at[outbox_id] = clock
        return len(ids)


# --- one run -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    label: str
    fail_rate: float
    grants: int
    create_s: float
    create_first_ms: float  # mean grant_create time over the first 10 % of grants
    create_last_ms: float  # … and over the last 10 %
    open_after_create: int  # outbox rows not yet done when the last grant was created
    converged_s: float | None  # from t0 to the verified match at the simulator (polled every second)
    last_delivery_s: float = 0.0  # from t0 to the last outbox row done
    latency_p50_s: float = 0.0  # outbox row created → done
    latency_p95_s: float = 0.0
    latency_max_s: float = 0.0
    attempts: int = 0  # outbox attempts (claims), all rows
    sim_requests: int = 0
    faults: int = 0  # requests the simulator answered with a failure (500, 503, time-out, drop, lost)
    duplicate_sends: int = 0  # requests beyond one per grant and one per failure
    swept: int = 0  # messages the sweeper re-enqueued
    max_queue: int = 0  # the broker queue's length, sampled at each sweep
    lock_waiters: dict[str, float] = field(default_factory=dict)  # mean sessions waiting, by table
    cpu: dict[str, float] = field(default_factory=dict)
    busy_pct: float = 0.0
    problems: list[str] = field(default_factory=list)
    worker_tracebacks: int = 0
    started_at: datetime.datetime | None = None  # wall clock at t0


def check_convergence(sim, n_grants: int) -> list[str]:
    """Everything delivered, and the simulator holds exactly the portal's active grants, each
    version applied once. An empty list means converged."""
    from django.db.models import Count

    from apps.providers.models import GrantOutbox, QuotaGrant

    problems = []
    outbox = dict(GrantOutbox.objects.values_list("state").annotate(n=Count("pk")))
    open_rows = outbox.get("pending", 0) + outbox.get("in_flight", 0)
    if open_rows or outbox.get("failed"):
        return [f"outbox not settled: {outbox}"]
    ours = {
        str(pid): (state, version, applied)
        for pid, state, version, applied in QuotaGrant.objects.values_list(
            "public_id", "state", "version", "applied_version"
        )
    }
    if len(ours) != n_grants:
        problems.append(f"the portal has {len(ours)} grants, expected {n_grants}")
    not_active = [
        gid for gid, (state, version, applied) in ours.items() if state != "active" or applied != version
    ]
    if not_active:
        problems.append(f"{len(not_active)} grants not active at the applied version, e.g. {not_active[:3]}")
    state = sim.state()
    theirs = {gid: q for gid, q in state["quotas"].items() if q["status"] == "active"}
    missing = set(ours) - set(theirs)
    extra = set(theirs) - set(ours)
    if missing:
        problems.append(f"{len(missing)} grants missing at the simulator")
    if extra:
        problems.append(f"{len(extra)} extra quotas at the simulator")
    wrong_version = [gid for gid in set(ours) & set(theirs) if theirs[gid]["version"] != ours[gid][1]]
    if wrong_version:
        problems.append(f"{len(wrong_version)} quotas at another version")
    applies = {k: v for k, v in state["effects"].items() if k.endswith(":apply")}
    others = {k: v for k, v in state["effects"].items() if not k.endswith(":apply")}
    twice = {k: v for k, v in applies.items() if v != 1}
    if len(applies) != n_grants or twice:
        problems.append(f"{len(applies)} grant versions applied, {len(twice)} of them more than once")
    if others:
        problems.append(f"unexpected effects: {dict(list(others.items())[:3])}")
    return problems


def run_once(args, db: BenchDatabase, label: str, fail_rate: float) -> RunResult:
    from django.db import connections
    from django.utils import timezone

    from tests.providers.simulator_process import SimulatorProcess
    from tests.providers.worker_process import RedisServer, publishing_to, test_database_url

    connections.close_all()
    if db.exists():
        db.drop()
    db.create()
    migrate()

    with contextlib.ExitStack() as stack:
        redis_server = RedisServer().start()
        stack.callback(redis_server.close)
        sim = stack.enter_context(
            SimulatorProcess(
                secret=SECRET,
                key_id=KEY_ID,
                fail_rate=fail_rate,
                hang_seconds=args.hang_seconds,
                slow_seconds=args.slow_seconds,
                seed=args.seed,
            )
        )
        seeded = seed(base_url=sim.base_url, n_orgs=args.orgs)
        stack.enter_context(publishing_to(redis_server.url))

        env = dict(WORKER_ENV)
        if args.conn_max_age is not None:
            env["CONN_MAX_AGE"] = str(args.conn_max_age)
        workers = [
            Worker(
                name=f"w{i + 1}",
                broker_url=redis_server.url,
                database_url=test_database_url(),
                pool=args.pool,
                concurrency=args.concurrency,
                env=env,
            )
            for i in range(args.workers)
        ]
        for worker in workers:
            stack.callback(worker.remove_log)
            stack.callback(worker.stop)
        sweeper = Sweeper(every=args.sweep_every, broker_url=redis_server.url, grace=args.sweep_grace)
        stack.callback(sweeper.stop)

        def groups():
            return {
                "bench": [os.getpid()],
                "workers": [w.process.pid for w in workers if w.process],
                "simulator": [sim.process.pid],
                "redis": [redis_server.process.pid],
            }

        def start_workers() -> None:
            for worker in workers:
                worker.start()

        if args.backlog:
            # Create everything first (the messages wait in the broker), then start the workers
            # and the sweeper: the delivery figures are the workers' capacity, from their start.
            cpu_before, busy_before = cpu_snapshot(groups()), machine_busy()
            created = create_grants(args, label, seeded)
            print(f"[{label}] starting {args.workers} workers on a backlog of {args.grants}", file=sys.stderr)
            t0, t0_wall = time.perf_counter(), timezone.now()
            start_workers()
            sweeper.start()
        else:
            start_workers()
            wait_for_workers([w.name for w in workers])
            print(f"[{label}] {args.workers} workers ready; creating {args.grants} grants", file=sys.stderr)
            cpu_before, busy_before = cpu_snapshot(groups()), machine_busy()
            sweeper.start()
            created = create_grants(args, label, seeded)
            t0, t0_wall = created.started, created.started_at
        converged_s, problems = converge(args, sim, sweeper, t0)
        sweeper.stop()
        cpu_after, busy_after = cpu_snapshot(groups()), machine_busy()

        result = RunResult(
            label=label,
            fail_rate=fail_rate,
            grants=args.grants,
            create_s=created.seconds,
            create_first_ms=created.first_ms,
            create_last_ms=created.last_ms,
            open_after_create=created.open_after,
            converged_s=converged_s,
            problems=problems,
            started_at=t0_wall,
        )
        result.cpu = {k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after}
        result.busy_pct = 100 * (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
        result.swept, result.max_queue = sweeper.enqueued, sweeper.max_queue
        result.lock_waiters = {k: v / max(1, sweeper.lock_samples) for k, v in sweeper.lock_waiters.items()}
        if sweeper.error is not None:
            result.problems.append(f"the sweeper failed: {sweeper.error!r}")
        for worker in workers:
            worker.stop()
            output = worker.output()
            result.worker_tracebacks += output.count("Traceback")
            if "Traceback" in output and args.verbose:
                print(f"--- {worker.name} log ---\n{output[-4000:]}", file=sys.stderr)
        _delivery_stats(result, sim)
    connections.close_all()
    return result


@dataclass
class Created:
    started: float  # perf_counter at the first grant_create
    started_at: datetime.datetime
    seconds: float
    first_ms: float
    last_ms: float
    open_after: int


def create_grants(args, label: str, seeded: Seeded) -> Created:
    """``services.grant_create`` in a loop, in this thread. Every grant locks the same pool period
    (and the audit chain head) until it commits, so more threads would only queue on those locks."""
    from django.utils import timezone

    from apps.providers import services
    from apps.providers.models import GrantOutbox

    n = args.grants
    tenth = max(1, n // 10)
    durations = []
    started_at = timezone.now()
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        services.grant_create(
            organization=seeded.orgs[i % len(seeded.orgs)],
            period_id=seeded.period_id,
            gpu_hours="10",
            actor=seeded.staff,
        )
        durations.append(time.perf_counter() - t)
        if (i + 1) % tenth == 0:
            elapsed = time.perf_counter() - started
            print(f"[{label}]   {i + 1} grants created, {elapsed:.1f} s", file=sys.stderr)
    return Created(
        started=started,
        started_at=started_at,
        seconds=time.perf_counter() - started,
        first_ms=1000 * statistics.fmean(durations[:tenth]),
        last_ms=1000 * statistics.fmean(durations[-tenth:]),
        open_after=GrantOutbox.objects.filter(state__in=["pending", "in_flight"]).count(),
    )


def converge(args, sim, sweeper: Sweeper, t0: float) -> tuple[float | None, list[str]]:
    """Poll every second until check_convergence passes: (seconds since t0, []) or (None, problems)."""
    from django.db import close_old_connections

    deadline = t0 + args.deadline
    problems: list[str] = ["did not converge"]
    while time.perf_counter() < deadline and sweeper.error is None:
        problems = check_convergence(sim, args.grants)
        if not problems:
            return time.perf_counter() - t0, []
        time.sleep(1.0)
        close_old_connections()
    return None, problems


def _delivery_stats(result: RunResult, sim) -> None:
    from django.db.models import Max, Sum

    from apps.providers.models import GrantOutbox

    done = GrantOutbox.objects.filter(state="done")
    latencies = sorted(
        (completed - created).total_seconds()
        for created, completed in done.values_list("created_at", "completed_at")
    )
    last = done.aggregate(last=Max("completed_at"))["last"]
    if last is not None:
        result.last_delivery_s = (last - result.started_at).total_seconds()
    if latencies:
        result.latency_p50_s = statistics.median(latencies)
        result.latency_p95_s = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        result.latency_max_s = latencies[-1]
    result.attempts = GrantOutbox.objects.aggregate(n=Sum("attempts"))["n"] or 0
    requests = sim.state()["requests"]
    result.sim_requests = requests["total"]
    by_fault = requests["by_fault"]
    result.faults = sum(v for k, v in by_fault.items() if k not in ("none", "slow"))
    # A grant needs one successful request; a failed one (500, 503, time-out, drop, lost) needs
    # another. Requests beyond that were sent twice for the same reason (a stale claim re-taken).
    result.duplicate_sends = max(0, result.sim_requests - result.grants - result.faults)


# --- report ------------------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]], numeric_from: int = 1) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(
            c.rjust(w) if i >= numeric_from else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in rows:
        print(line(row))


def print_report(results: list[RunResult], args) -> None:
    print(
        f"\n{args.grants} grants, {args.workers} worker processes (-P {args.pool} -c {args.concurrency}), "
        f"sweeper every {args.sweep_every:g} s"
        + (f" (prototype: a row at most once per {args.sweep_grace:g} s)" if args.sweep_grace else "")
        + f"; faults: hang {args.hang_seconds:g} s, "
        f"slow {args.slow_seconds:g} s, PROVIDER_HTTP_TIMEOUT=1, backoff 0.2–2 s. "
        + (
            "Backlog: all grants created first, then the workers started; delivery times from their start."
            if args.backlog
            else "Workers running during creation; times from the first grant_create."
        )
    )
    rows = []
    for r in results:
        rows.append(
            [
                r.label,
                f"{r.fail_rate:.0%}",
                f"{r.create_s:.1f}",
                f"{r.grants / r.create_s:.0f}",
                f"{r.create_first_ms:.1f} / {r.create_last_ms:.1f}",
                str(r.open_after_create),
                f"{r.last_delivery_s:.1f}",
                f"{r.grants / r.last_delivery_s:.0f}" if r.last_delivery_s else "-",
                f"{r.converged_s:.1f}" if r.converged_s is not None else "NO",
                f"{r.latency_p50_s:.1f} / {r.latency_p95_s:.1f} / {r.latency_max_s:.1f}",
                "OK" if not r.problems else "FAIL",
            ]
        )
    _table(
        [
            "run",
            "faults",
            "create s",
            "created/s",
            "create ms first/last 10%",
            "open at end",
            "delivered s",
            "delivered/s",
            "converged s",
            "latency p50/p95/max s",
            "check",
        ],
        rows,
    )
    print()
    rows = []
    for r in results:
        cpu = r.cpu
        rows.append(
            [
                r.label,
                f"{r.attempts / r.grants:.2f}",
                str(r.sim_requests),
                str(r.faults),
                str(r.duplicate_sends),
                str(r.swept),
                str(r.max_queue),
                str(r.worker_tracebacks),
                f"{r.busy_pct:.0f}%",
                " ".join(
                    f"{k} {1000 * cpu.get(k, 0) / r.grants:.1f}"
                    for k in ("workers", "postgres", "bench", "simulator", "redis")
                ),
                " ".join(
                    f"{short} {r.lock_waiters.get(table, 0):.1f}"
                    for short, table in zip(("audit", "period", "outbox", "grant"), LOCKED_ROWS, strict=True)
                ),
            ]
        )
    _table(
        [
            "run",
            "attempts/grant",
            "sim requests",
            "faulted",
            "dup sends",
            "swept msgs",
            "max queue",
            "tracebacks",
            "CPU busy",
            "CPU ms per grant",
            "sessions waiting for a lock (mean)",
        ],
        rows,
    )
    for r in results:
        for problem in r.problems:
            print(f"{r.label}: {problem}")
    ok = all(not r.problems for r in results)
    print(
        "\nConvergence check (exactly the active grants at the simulator, each applied once): "
        + ("OK" if ok else "FAILED")
    )


# --- main --------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url", help="PostgreSQL server for the bench database (as directory_latency)"
    )
    parser.add_argument("--bench-db", default="gpu_alliance_bench_push")
    parser.add_argument("--grants", type=int, default=10_000)
    parser.add_argument("--runs", default="clean,faults", help="comma-separated: clean, faults")
    parser.add_argument("--fail-rate", type=float, default=RUNS["faults"], help="for the faults run")
    parser.add_argument("--hang-seconds", type=float, default=2.0)
    parser.add_argument("--slow-seconds", type=float, default=0.3)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--pool", choices=["threads", "prefork"], default="threads")
    parser.add_argument("--concurrency", type=int, help="per worker (default: 8 threads, 1 prefork)")
    parser.add_argument(
        "--conn-max-age", type=int, help="CONN_MAX_AGE for the workers (default: the project's, 0)"
    )
    parser.add_argument(
        "--backlog",
        action="store_true",
        help="create all grants first, then start the workers (times from the workers' start)",
    )
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--sweep-every", type=float, default=1.0)
    parser.add_argument(
        "--sweep-grace",
        type=float,
        default=0.0,
        help="prototype sweeper: enqueue a row again at most once per this many seconds "
        "(default 0: the app's services.outbox_sweep)",
    )
    parser.add_argument("--deadline", type=float, default=3600, help="seconds before a run gives up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print worker logs with tracebacks")
    parser.add_argument("--keep", action="store_true", help="keep the last run's database")
    args = parser.parse_args(argv)
    args.runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if not args.runs or set(args.runs) - set(RUNS):
        parser.error("--runs takes clean and/or faults")
    if args.concurrency is None:
        args.concurrency = 8 if args.pool == "threads" else 1
    if args.grants < 1 or args.workers < 1 or args.concurrency < 1 or args.orgs < 1:
        parser.error("--grants, --workers, --concurrency and --orgs must be at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    db = bench_database(_database_url(args.database_url), args.bench_db)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if db.exists():
        print(f"Dropping the leftover bench database {db.name!r}.", file=sys.stderr)
        db.drop()
    results = []
    try:
        configure_django(db)
        for label in args.runs:
            fail_rate = args.fail_rate if label == "faults" else 0.0
            results.append(run_once(args, db, label, fail_rate))
            print(f"[{label}] done", file=sys.stderr)
        print_report(results, args)
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
    return 0 if all(not r.problems for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
