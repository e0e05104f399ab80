#!/usr/bin/env python
"""Latency of the directory, review queue and dashboard with 10,000 member organizations.

Creates a throw-away PostgreSQL database (``gpu_alliance_bench`` by default) on the server that
``--database-url`` / ``DATABASE_URL`` points at, migrates it, seeds it with ``bulk_create``, then
times each page with ``django.test.Client`` (in-process: no network, no WSGI server) and prints the
median, the 95th percentile and the SQL queries of one request. The database is dropped at the
end, also after an error, Ctrl-C or SIGTERM, unless ``--keep`` is given.

    .venv/bin/python bench/directory_latency.py [--runs 50] [--warmup 5] [--orgs 10000] [--keep]

See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import random
import re
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
SLOW_MS = 150.0


# --- the bench database ------------------------------------------------------------------------


@dataclass
class BenchDatabase:
    config: dict  # Django's DATABASES entry for the bench database
    maintenance_db: str = "postgres"  # where CREATE / DROP DATABASE run from

    @property
    def name(self) -> str:
        return self.config["NAME"]

    def _connect(self):
        import psycopg

        kwargs = {
            "dbname": self.maintenance_db,
            "user": self.config.get("USER"),
            "password": self.config.get("PASSWORD"),
            "host": self.config.get("HOST"),
            "port": self.config.get("PORT"),
        }
        return psycopg.connect(**{k: v for k, v in kwargs.items() if v}, autocommit=True)

    def _quoted(self) -> str:
        return '"' + self.name.replace('"', '""') + '"'

    def exists(self) -> bool:
        with self._connect() as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.name])
            return found.fetchone() is not None

    def create(self) -> None:
        with self._connect() as conn:
            conn.execute(f"CREATE DATABASE {self._quoted()}")

    def drop(self) -> None:
        with self._connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self._quoted()} WITH (FORCE)")


def bench_database(database_url: str, name: str) -> BenchDatabase:
    import environ

    config = environ.Env.db_url_config(database_url)
    if "postgresql" not in config["ENGINE"]:
        sys.exit(f"The benchmark needs PostgreSQL; {database_url!r} is not a postgres:// URL.")
    if name == config.get("NAME"):
        sys.exit(
            f"Refusing to use {name!r}: DATABASE_URL points at it, and the benchmark drops "
            "its database at the end. Choose another --bench-db."
        )
    return BenchDatabase(config={**config, "NAME": name})


def configure_django(db: BenchDatabase) -> None:
    """Point Django at the bench database before anything opens a connection."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.conf import settings

    default = settings.DATABASES["default"]
    for key in ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS"):
        if key in db.config:
            default[key] = db.config[key]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.DEBUG = False

    import django

    django.setup()
    from django.db import connection

    if connection.settings_dict["NAME"] != db.name:
        raise RuntimeError("Django is not pointed at the bench database")


def migrate() -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- seed --------------------------------------------------------------------------------------

WORDS = [  # (ja, en): names varied enough for a search to select a few percent of them
    ("さくら", "Sakura"),
    ("富士", "Fuji"),
    ("東海", "Tokai"),
    ("北斗", "Hokuto"),
    ("青葉", "Aoba"),
    ("未来", "Mirai"),
    ("光", "Hikari"),
    ("大和", "Yamato"),
    ("瀬戸", "Seto"),
    ("銀河", "Ginga"),
    ("みなと", "Minato"),
    ("若葉", "Wakaba"),
    ("旭", "Asahi"),
    ("蒼", "Ao"),
    ("暁", "Akatsuki"),
]
FIELDS = [
    ("AI", "AI"),
    ("ロボティクス", "Robotics"),
    ("創薬", "Drug Discovery"),
    ("気象", "Weather"),
    ("金融工学", "Quant"),
    ("言語モデル", "Language Models"),
    ("画像解析", "Vision"),
    ("材料", "Materials"),
    ("ゲノム", "Genomics"),
    ("自動運転", "Autonomous Driving"),
]
SEARCH_TERM = "ロボ"  # matches the ~10 % of names built on ロボティクス
KIND_WEIGHTS = {"enterprise": 45, "startup": 35, "academic": 15, "public_body": 5}
NAME_FORMS = {  # kind: (ja, en)
    "enterprise": ("株式会社{}", "{} Inc."),
    "startup": ("{}合同会社", "{} LLC"),
    "academic": ("{}大学", "{} University"),
    "public_body": ("{}研究機構", "{} Institute"),
}
TIERS = ["founding", "regular", "associate", "academic"]
COMPANIES = ("enterprise", "startup")


@dataclass
class Seeded:
    staff: object
    dashboard_user: object
    dashboard_orgs: int
    sample_slug: str
    sample_name: str


def _corporate_number(n: int) -> str:
    from apps.core.validators import corporate_number_check_digit

    base = f"{n:012d}"
    return f"{corporate_number_check_digit(base)}{base}"


def _names(rng: random.Random, kind: str, suffix: str) -> tuple[str, str]:
    word_ja, word_en = rng.choice(WORDS)
    field_ja, field_en = rng.choice(FIELDS)
    form_ja, form_en = NAME_FORMS[kind]
    name_ja = form_ja.format(f"{word_ja}{field_ja}{suffix}")
    return name_ja, form_en.format(f"{word_en} {field_en} {suffix}")


def seed(*, n_orgs: int, n_applications: int, dashboard_orgs: int) -> Seeded:
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.contrib.auth.hashers import make_password
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.organizations.models import (
        Invitation,
        Membership,
        MembershipApplication,
        Organization,
        OrgRole,
        ParticipationTerms,
    )
    from apps.providers.models import Provider

    rng = random.Random(20260401)
    now = timezone.now()
    batch = 2000
    password = make_password("bench-password-123")  # hashed once, shared by every user
    kinds, weights = list(KIND_WEIGHTS), list(KIND_WEIGHTS.values())

    with transaction.atomic():
        providers = Provider.objects.bulk_create(
            [
                Provider(slug="kddi", name_ja="KDDI株式会社", name_en="KDDI Corporation"),
                Provider(slug="sakura", name_ja="さくらインターネット", name_en="SAKURA internet"),
                Provider(slug="highreso", name_ja="株式会社ハイレゾ", name_en="HIGHRESO Co., Ltd."),
            ]
        )
        terms = ParticipationTerms.objects.create(
            version="1.0",
            title_ja="参加条件",
            title_en="Participation conditions",
            body_ja="第1条",
            body_en="Article 1",
            effective_from=datetime.date(2026, 4, 1),
            is_published=True,
        )

        # The secretariat user has TOTP, as the staff MFA middleware requires (cf. staff_client).
        staff = User.objects.create(
            email="staff@bench.example", full_name="事務局", is_staff=True, password=password
        )
        TOTP.activate(staff, generate_totp_secret())
        dashboard_user = User.objects.create(
            email="member@bench.example", full_name="会員 太郎", password=password
        )
        EmailAddress.objects.bulk_create(
            [
                EmailAddress(user=u, email=u.email, verified=True, primary=True)
                for u in (staff, dashboard_user)
            ]
        )

        # Organizations, each with its membership and its owner.
        owners = User.objects.bulk_create(
            [
                User(email=f"owner{i}@org{i}.bench.example", full_name=f"代表 {i}", password=password)
                for i in range(n_orgs)
            ],
            batch_size=batch,
        )
        orgs = []
        for i in range(n_orgs):
            kind = rng.choices(kinds, weights)[0]
            name_ja, name_en = _names(rng, kind, str(i))
            described = rng.random() < 0.6
            field = name_en.split()[1].lower()
            orgs.append(
                Organization(
                    slug=f"org-{i:05d}",
                    name_ja=name_ja,
                    name_en=name_en,
                    kind=kind,
                    corporate_number=_corporate_number(100_000 + i)
                    if kind in COMPANIES or rng.random() < 0.5
                    else None,
                    postal_code="100-0001",
                    address=f"東京都千代田区千代田{i % 9 + 1}-{i % 30 + 1}",
                    website=f"https://org{i}.bench.example/",
                    home_provider=providers[i % len(providers)],
                    is_listed=rng.random() < 0.95,
                    show_website=rng.random() < 0.8,
                    description_ja="研究開発に GPU クラウドを利用しています。" if described else "",
                    description_en=f"We use GPU cloud for {field} R&D." if described else "",
                )
            )
        orgs = Organization.objects.bulk_create(orgs, batch_size=batch)
        statuses = rng.choices(["active", "suspended", "lapsed"], [96, 2, 2], k=n_orgs)
        Membership.objects.bulk_create(
            [
                Membership(
                    organization=org,
                    tier=rng.choice(TIERS),
                    status=status,
                    started_on=datetime.date(2026, 4, 1),
                )
                for org, status in zip(orgs, statuses, strict=True)
            ],
            batch_size=batch,
        )
        roles = [
            OrgRole(organization=org, user=owner, role="owner")
            for org, owner in zip(orgs, owners, strict=True)
        ]
        # The dashboard user: admin or member of `dashboard_orgs` organizations, and the technical
        # contact of a third of them (two roles in one organization).
        for j, org in enumerate(orgs[:: max(1, n_orgs // dashboard_orgs)][:dashboard_orgs]):
            role = "admin" if j % 2 else "member"
            roles.append(OrgRole(organization=org, user=dashboard_user, role=role))
            if j % 3 == 0:
                roles.append(OrgRole(organization=org, user=dashboard_user, role="technical"))
        OrgRole.objects.bulk_create(roles, batch_size=batch)

        # Applications waiting for the secretariat, five of them from the dashboard user.
        applicants = User.objects.bulk_create(
            [
                User(email=f"applicant{i}@bench.example", full_name=f"申請者 {i}", password=password)
                for i in range(n_applications)
            ],
            batch_size=batch,
        )
        applications = []
        for i, applicant in enumerate([*applicants, *([dashboard_user] * 5)]):
            kind = rng.choices(kinds, weights)[0]
            name_ja, name_en = _names(rng, kind, f"申請{i}")
            under_review = rng.random() < 0.4
            submitted = now - datetime.timedelta(hours=rng.randint(1, 24 * 60))
            applications.append(
                MembershipApplication(
                    applicant=applicant,
                    status="under_review" if under_review else "submitted",
                    name_ja=name_ja,
                    name_en=name_en,
                    kind=kind,
                    corporate_number=_corporate_number(500_000 + i) if kind in COMPANIES else "",
                    address="大阪府大阪市北区1-1",
                    home_provider=providers[i % len(providers)],
                    contact_name=f"申請者 {i}",
                    contact_email=applicant.email,
                    intended_use="LLM の継続事前学習、H200 で月 2,000 GPU 時間。",
                    accepted_terms=terms,
                    terms_accepted_at=submitted,
                    submitted_at=submitted,
                    reviewer=staff if under_review else None,
                )
            )
        MembershipApplication.objects.bulk_create(applications, batch_size=batch)

        Invitation.objects.bulk_create(
            [
                Invitation(
                    organization=orgs[-1 - k],
                    email=dashboard_user.email,
                    role="member",
                    token_hash=Invitation.hash_token(f"bench-{k}"),
                    invited_by=owners[-1 - k],
                    expires_at=now + datetime.timedelta(days=7),
                )
                for k in range(3)
            ]
        )

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # as autovacuum would have by then in production

    sample = next(o for o, s in zip(orgs, statuses, strict=True) if o.is_listed and s == "active")
    return Seeded(
        staff=staff,
        dashboard_user=dashboard_user,
        dashboard_orgs=dashboard_orgs,
        sample_slug=sample.slug,
        sample_name=sample.name_ja,
    )


# --- measure -----------------------------------------------------------------------------------


@dataclass
class Result:
    label: str
    path: str
    median_ms: float
    p95_ms: float
    queries: int
    sql_ms: float
    rows: str


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def measure(client, label: str, path: str, check: Callable, *, runs: int, warmup: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def get():
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{label}: GET {path} answered {response.status_code}")
        return response

    for _ in range(warmup):
        get()
    samples = []
    with _gc_paused():
        for _ in range(runs):
            start = time.perf_counter()
            get()
            samples.append((time.perf_counter() - start) * 1000)
    # The queries of one more request, outside the timed runs (capturing costs a little).
    with CaptureQueriesContext(connection) as captured:
        response = get()
    p95 = statistics.quantiles(samples, n=100, method="inclusive")[94] if runs > 1 else samples[0]
    return Result(
        label=label,
        path=path,
        median_ms=statistics.median(samples),
        p95_ms=p95,
        queries=len(captured.captured_queries),
        sql_ms=sum(float(q["time"]) for q in captured.captured_queries) * 1000,
        rows=check(response),
    )


def _rows(pattern: str, *, expect: int | None = None) -> Callable:
    """A check counting the rendered rows in the HTML (``response.context`` is only recorded by
    the test runner's template instrumentation, which would distort the timings)."""
    regex = re.compile(pattern)

    def check(response) -> str:
        n = len(regex.findall(response.content.decode()))
        if n == 0 or (expect is not None and n != expect):
            path = response.request["PATH_INFO"]
            raise RuntimeError(f"{path}: {n} rows rendered, expected {expect or 'some'}")
        return str(n)

    return check


def run_benchmarks(seeded: Seeded, *, runs: int, warmup: int) -> list[Result]:
    from urllib.parse import urlencode

    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    directory = reverse("organizations:directory")
    anonymous, staff, member = Client(), Client(), Client()
    staff.force_login(seeded.staff)
    member.force_login(seeded.dashboard_user)

    directory_rows = _rows(r'<td><a href="/members/[^/"]+/">', expect=settings.DIRECTORY_PAGE_SIZE)
    queue_rows = _rows(r'<tr id="application-\d+">', expect=settings.REVIEW_QUEUE_PAGE_SIZE)
    pages = [
        ("directory, first page", anonymous, directory, directory_rows),
        ("directory, search", anonymous, f"{directory}?{urlencode({'q': SEARCH_TERM})}", directory_rows),
        ("directory, kind filter", anonymous, f"{directory}?kind=academic", directory_rows),
        ("directory, page 100", anonymous, f"{directory}?page=100", directory_rows),
        (
            "organization page",
            anonymous,
            reverse("organizations:org-detail", args=[seeded.sample_slug]),
            _rows(re.escape(f"<h1>{seeded.sample_name}</h1>"), expect=1),
        ),
        ("review queue (staff)", staff, reverse("organizations:review-queue"), queue_rows),
        (
            f"dashboard ({seeded.dashboard_orgs} orgs)",
            member,
            reverse("dashboard"),
            _rows(r'href="/orgs/[^/"]+/manage/"', expect=seeded.dashboard_orgs),
        ),
    ]
    results = []
    for label, client, path, check in pages:
        results.append(measure(client, label, path, check, runs=runs, warmup=warmup))
        print(f"  measured {label}", file=sys.stderr)
    return results


def print_table(results: list[Result], *, runs: int, warmup: int) -> None:
    headers = ["page", "path", "median ms", "p95 ms", "queries", "SQL ms", "rows"]
    table = [
        [r.label, r.path, f"{r.median_ms:.1f}", f"{r.p95_ms:.1f}", str(r.queries), f"{r.sql_ms:.1f}", r.rows]
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    numeric = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(
        f"\n{runs} timed requests per page after {warmup} warm-ups. 'queries' and 'SQL ms' "
        "(time spent in the database) come from one more request."
    )
    print(line(headers))
    print(line(["-" * w for w in widths]))
    for row in table:
        print(line(row))
    slow = [r.label for r in results if r.median_ms > SLOW_MS]
    print(f"\nSlow (median > {SLOW_MS:.0f} ms): {', '.join(slow) if slow else 'none'}")


# --- main --------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server to create the bench database on: only its host, port and "
        f"credentials are used (default: $DATABASE_URL, else {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--bench-db",
        default="gpu_alliance_bench",
        help="name of the throw-away database (default: %(default)s)",
    )
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--applications", type=int, default=1_000)
    parser.add_argument("--dashboard-orgs", type=int, default=20)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards")
    args = parser.parse_args(argv)
    if not 0 < args.dashboard_orgs <= args.orgs:
        parser.error("--dashboard-orgs must be between 1 and --orgs")
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    return args


def _database_url(arg: str | None) -> str:
    if arg:
        return arg
    if not os.environ.get("DATABASE_URL") and (BASE_DIR / ".env").exists():
        import environ

        environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # as portal/settings.py does
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # so that `finally` drops the database


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
        started = time.perf_counter()
        migrate()
        print(f"Migrated {db.name!r} in {time.perf_counter() - started:.1f} s.", file=sys.stderr)
        started = time.perf_counter()
        seeded = seed(n_orgs=args.orgs, n_applications=args.applications, dashboard_orgs=args.dashboard_orgs)
        print(
            f"Seeded {args.orgs} organizations and {args.applications} applications in "
            f"{time.perf_counter() - started:.1f} s.",
            file=sys.stderr,
        )
        results = run_benchmarks(seeded, runs=args.runs, warmup=args.warmup)
        print_table(results, runs=args.runs, warmup=args.warmup)
    finally:
        # A second Ctrl-C or SIGTERM must not interrupt the clean-up.
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
                print(
                    f"Could not drop the bench database {db.name!r} ({exc}); drop it with: dropdb {db.name}",
                    file=sys.stderr,
                )
                raise
            print(f"Dropped the bench database {db.name!r}.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
