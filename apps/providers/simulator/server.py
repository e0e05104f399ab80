"""Provider simulator: a real HTTP server for the Alliance Provider API v1 with fault injection.

Standard library only and no Django imports, so it is reusable outside the portal:

    python -m apps.providers.simulator.server --port 8101 --secret S --fail-rate 0.3

The API lives under ``/v1`` (a provider's base URL is ``http://127.0.0.1:PORT/v1``); unsigned
control endpoints for tests and the demo live under ``/_sim`` (see ``docs/provider-api.md``).
Storage is SQLite: in memory by default, or a file with ``--db PATH``; every operation runs in one
transaction under one lock, so the server is thread-safe and each change is atomic with the
stored idempotent response.

Faults (chosen per ``/v1`` request with probability ``fail_rate`` among the enabled kinds):

* ``500``     answer 500, nothing applied
* ``503``     answer 503 with ``Retry-After: 1``, nothing applied
* ``timeout`` sleep ``hang_seconds``, then close the connection without answering, nothing applied
* ``drop``    close the connection at once without answering, nothing applied
* ``slow``    sleep ``slow_seconds``, then handle the request normally
* ``lost``    handle the request (the change IS applied and its answer stored under the
              Idempotency-Key), then close the connection without answering
"""

import argparse
import base64
import binascii
import ipaddress
import json
import os
import random
import re
import signal
import socketserver
import sqlite3
import sys
import threading
import time
import traceback
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from apps.providers import signing

FAULT_KINDS = ("500", "503", "timeout", "drop", "slow", "lost")
# Only when named (never part of "all"): "drip" applies the request, then sends the answer one byte
# at a time, ``drip_seconds`` apart; "wrong" applies nothing and answers a PUT or DELETE of a quota
# with 200 and the quota the simulator holds (a provider that ignores writes).
OPT_IN_FAULTS = ("drip", "wrong")
API_PREFIX = "/v1"
CONTROL_PREFIX = "/_sim"
MAX_BODY_BYTES = 4 * 1024 * 1024
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_RECORDS_PER_QUOTA = 10_000

GRANT_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
DECIMAL_RE = re.compile(r"\d{1,12}(\.\d{1,4})?")
INTEGER_RE = re.compile(r"\d{1,18}")
RFC3339_RE = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS quotas (
    grant_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    organization TEXT,
    pool TEXT,
    gpu_class TEXT,
    gpu_hours TEXT,
    valid_from TEXT,
    valid_until TEXT,
    applied_at TEXT,
    revoked_at TEXT,
    usage_generated INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS idempotency (
    key_id TEXT NOT NULL,
    key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (key_id, key)
);
CREATE TABLE IF NOT EXISTS effects (effect TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL UNIQUE,
    grant_id TEXT NOT NULL,
    gpu_hours TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT NOT NULL,
    raw TEXT
);
"""

# Signed checkpoints of the portal's audit chain (docs/provider-api.md, "Audit checkpoints"): the
# first one shown for a sequence is kept for the life of the store; reset() forgets them.
CHECKPOINT_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    sequence INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    signature TEXT NOT NULL,
    received_at TEXT NOT NULL
);
"""
CHECKPOINT_HASH_RE = re.compile(r"[0-9a-f]{64}")


def utc_now() -> str:
    return rfc3339(datetime.now(UTC))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_rfc3339(value) -> datetime | None:
    """The aware datetime of an RFC 3339 date-time string, or None."""
    if not isinstance(value, str):
        return None
    match = RFC3339_RE.fullmatch(value)
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]  # fromisoformat takes at most 6 digits
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{day}T{clock}{fraction}{zone}")
    except ValueError:
        return None


def _b64encode(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _b64decode(cursor: str) -> dict:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid", "cursor is not valid") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "cursor is not valid")
    return data


class ApiError(Exception):
    """An error answer: ``{"error": message, "code": code, **extra}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict | None = None, **extra):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict:
        return {"error": self.message, "code": self.code, **self.extra}


@dataclass
class Answer:
    status: int
    body: dict
    headers: dict


@dataclass(frozen=True)
class FaultConfig:
    fail_rate: float = 0.0
    faults: tuple[str, ...] = FAULT_KINDS
    latency: float = 0.0
    hang_seconds: float = 5.0
    slow_seconds: float = 0.5
    drip_seconds: float = 0.1

    def updated(self, changes: dict) -> "FaultConfig":
        """A copy with ``changes`` applied; ValueError names the first bad value."""
        numbers = ("fail_rate", "latency", "hang_seconds", "slow_seconds", "drip_seconds")
        unknown = set(changes) - {"faults", *numbers}
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        values = {}
        for name in numbers:
            if name not in changes:
                continue
            value = changes[name]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            if value < 0 or value != value or (name == "fail_rate" and value > 1) or value > 3600:
                raise ValueError(f"{name} is out of range")
            values[name] = float(value)
        if "faults" in changes:
            values["faults"] = parse_faults(changes["faults"])
        return replace(self, **values)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["faults"] = list(self.faults)
        return data


def parse_faults(value) -> tuple[str, ...]:
    """Fault kinds from a comma list or a list; "all" (or an empty string) means every kind."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
        if not items or items == ["all"]:
            return FAULT_KINDS
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise ValueError("faults must be a list of fault kinds")
    known = FAULT_KINDS + OPT_IN_FAULTS
    unknown = [item for item in items if item not in known]
    if unknown:
        raise ValueError(f"unknown fault kinds: {', '.join(unknown)} (known: {', '.join(known)})")
    return tuple(dict.fromkeys(items))


class Store:
    """SQLite storage (``:memory:`` or a file). ``transaction()`` serialises every operation."""

    def __init__(self, path: str | None = None):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._db.executescript(CHECKPOINT_SCHEMA)
        try:  # noqa: SIM105 (a file from before usage.raw existed)
            self._db.execute("ALTER TABLE usage ADD COLUMN raw TEXT")
        except sqlite3.OperationalError:
            pass
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM meta WHERE name = 'epoch'").fetchone() is None:
                db.execute("INSERT INTO meta (name, value) VALUES ('epoch', ?)", (uuid.uuid4().hex[:12],))

    @contextmanager
    def transaction(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _quota_json(row) -> dict:
    return {
        "grant_id": row["grant_id"],
        "version": row["version"],
        "status": row["status"],
        "organization": json.loads(row["organization"]) if row["organization"] else None,
        "pool": row["pool"],
        "gpu_class": row["gpu_class"],
        "gpu_hours": row["gpu_hours"],
        "valid_from": row["valid_from"],
        "valid_until": row["valid_until"],
        "applied_at": row["applied_at"],
        "revoked_at": row["revoked_at"],
    }


def _count_effect(db, grant_id: str, version: int, op: str) -> None:
    db.execute(
        "INSERT INTO effects (effect, count) VALUES (?, 1)"
        " ON CONFLICT (effect) DO UPDATE SET count = count + 1",
        (f"{grant_id}:{version}:{op}",),
    )


def _stale(current_version: int, asked: int) -> tuple[int, dict]:
    return 409, {
        "error": f"version {asked} is older than the stored version {current_version}",
        "code": "stale_version",
        "current_version": current_version,
    }


class Simulator:
    """The provider: storage, protocol rules, signature checks, fault choice and counters."""

    def __init__(
        self,
        *,
        secret: str,
        key_id: str,
        config: FaultConfig | None = None,
        seed: int | None = None,
        db_path: str | None = None,
    ):
        if not secret:
            raise ValueError("a shared secret is required")
        self.secret = secret
        self.key_id = key_id
        self.store = Store(db_path)
        self._initial_config = config or FaultConfig()
        self._seed = seed
        self._lock = threading.Lock()
        self.config = self._initial_config
        self._rng = random.Random(seed)
        self._generation = 0
        self._requests = Counter()
        self._by_fault = Counter()
        self._by_status = Counter()

    # ----- faults and counters -------------------------------------------------------------------

    def begin_request(self) -> tuple[str | None, FaultConfig, int]:
        """Count a /v1 request and choose its fault: (fault or None, config snapshot, generation)."""
        with self._lock:
            config = self.config
            fault = None
            if config.faults and config.fail_rate > 0 and self._rng.random() < config.fail_rate:
                fault = self._rng.choice(config.faults)
            self._requests["total"] += 1
            self._by_fault[fault or "none"] += 1
            return fault, config, self._generation

    def count_status(self, status: int | None) -> None:
        with self._lock:
            self._by_status[str(status) if status else "no_answer"] += 1

    def configure(self, changes: dict) -> FaultConfig:
        with self._lock:
            self.config = self.config.updated(changes)
            return self.config

    def reset(self) -> None:
        """Forget everything (quotas, keys, effects, usage, counters); start-up fault settings and
        RNG seed again. Requests in flight when this runs apply nothing afterwards."""
        with self._lock:
            self._generation += 1
            self.config = self._initial_config
            self._rng = random.Random(self._seed)
            self._requests.clear()
            self._by_fault.clear()
            self._by_status.clear()
        with self.store.transaction() as db:
            for table in ("quotas", "idempotency", "effects", "usage"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM audit_checkpoints")
            db.execute("UPDATE meta SET value = ? WHERE name = 'epoch'", (uuid.uuid4().hex[:12],))

    @contextmanager
    def _transaction(self, generation: int | None):
        with self.store.transaction() as db:
            if generation is not None and generation != self._generation:
                raise _Superseded
            yield db

    # ----- the /v1 API ---------------------------------------------------------------------------

    def handle_api(
        self, method: str, raw_path: str, headers, body: bytes, generation: int | None = None
    ) -> Answer:
        """Verify, route and run one API request. ``raw_path`` is the request target as sent."""
        try:
            self._verify(method, raw_path, headers, body)
            split = urlsplit(raw_path)
            query = {
                name: values[0] for name, values in parse_qs(split.query, keep_blank_values=True).items()
            }
            route = split.path[len(API_PREFIX) :]
            if route == "/quotas":
                self._allow(method, "GET")
                return Answer(200, self._list_quotas(query), {})
            if route == "/usage":
                self._allow(method, "GET")
                return Answer(200, self._list_usage(query), {})
            if route == "/audit/checkpoints" or route.startswith("/audit/checkpoints/"):
                return self._checkpoint_api(method, route, query, body, generation)
            match = re.fullmatch(r"/quotas/([^/]+)", route)
            if match:
                self._allow(method, "PUT", "DELETE")
                grant_id = unquote(match[1])
                if not GRANT_ID_RE.fullmatch(grant_id):
                    raise ApiError(400, "invalid", "grant id must be 1-128 characters of A-Z a-z 0-9 . _ -")
                key = self._idempotency_key(headers)
                if method == "PUT":
                    quota = _parse_quota(grant_id, body)
                    return self._idempotent(
                        key, method, raw_path, generation, lambda db: self._put(db, quota)
                    )
                version = _parse_int(query.get("version"), "version", minimum=1)
                return self._idempotent(
                    key, method, raw_path, generation, lambda db: self._revoke(db, grant_id, version)
                )
            raise ApiError(404, "not_found", f"no such resource: {split.path}")
        except ApiError as exc:
            return Answer(exc.status, exc.body(), exc.headers)

    def _verify(self, method, raw_path, headers, body) -> None:
        key_id = headers.get(signing.HEADER_KEY_ID)
        try:
            if not key_id:
                raise signing.SignatureError("missing key id header")
            if key_id != self.key_id:
                raise signing.SignatureError("unknown key id")
            signing.verify(
                secret=self.secret,
                method=method,
                path=raw_path,
                body=body,
                timestamp=headers.get(signing.HEADER_TIMESTAMP),
                signature=headers.get(signing.HEADER_SIGNATURE),
            )
        except signing.SignatureError as exc:
            raise ApiError(401, "bad_signature", exc.reason) from exc

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(
                405,
                "method_not_allowed",
                f"{method} is not allowed here",
                headers={"Allow": ", ".join(allowed)},
            )

    @staticmethod
    def _idempotency_key(headers) -> str:
        key = headers.get(signing.HEADER_IDEMPOTENCY_KEY)
        if not key:
            raise ApiError(400, "invalid", "the Idempotency-Key header is required")
        if not IDEMPOTENCY_KEY_RE.fullmatch(key):
            raise ApiError(400, "invalid", "Idempotency-Key must be 1-255 printable ASCII characters")
        return key

    def _idempotent(self, key: str, method: str, raw_path: str, generation, apply) -> Answer:
        with self._transaction(generation) as db:
            row = db.execute(
                "SELECT method, path, status, body FROM idempotency WHERE key_id = ? AND key = ?",
                (self.key_id, key),
            ).fetchone()
            if row is not None:
                if (row["method"], row["path"]) != (method, raw_path):
                    raise ApiError(
                        422,
                        "idempotency_key_reused",
                        f"Idempotency-Key was first used for {row['method']} {row['path']}",
                    )
                return Answer(row["status"], json.loads(row["body"]), {"Idempotent-Replayed": "true"})
            status, answer = apply(db)
            db.execute(
                "INSERT INTO idempotency (key_id, key, method, path, status, body, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.key_id,
                    key,
                    method,
                    raw_path,
                    status,
                    json.dumps(answer, ensure_ascii=False),
                    time.time(),
                ),
            )
            return Answer(status, answer, {})

    def _put(self, db, quota: dict) -> tuple[int, dict]:
        row = db.execute("SELECT * FROM quotas WHERE grant_id = ?", (quota["grant_id"],)).fetchone()
        if row is not None and quota["version"] == row["version"]:
            return 200, _quota_json(row)
        if row is not None and quota["version"] < row["version"]:
            return _stale(row["version"], quota["version"])
        db.execute(
            "INSERT INTO quotas (grant_id, version, status, organization, pool, gpu_class, gpu_hours,"
            " valid_from, valid_until, applied_at, revoked_at)"
            " VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, NULL)"
            " ON CONFLICT (grant_id) DO UPDATE SET version = excluded.version, status = 'active',"
            " organization = excluded.organization, pool = excluded.pool, gpu_class = excluded.gpu_class,"
            " gpu_hours = excluded.gpu_hours, valid_from = excluded.valid_from,"
            " valid_until = excluded.valid_until, applied_at = excluded.applied_at, revoked_at = NULL",
            (
                quota["grant_id"],
                quota["version"],
                json.dumps(quota["organization"], ensure_ascii=False),
                quota["pool"],
                quota["gpu_class"],
                quota["gpu_hours"],
                quota["valid_from"],
                quota["valid_until"],
                utc_now(),
            ),
        )
        _count_effect(db, quota["grant_id"], quota["version"], "apply")
        row = db.execute("SELECT * FROM quotas WHERE grant_id = ?", (quota["grant_id"],)).fetchone()
        return 200, _quota_json(row)

    def _revoke(self, db, grant_id: str, version: int) -> tuple[int, dict]:
        row = db.execute("SELECT * FROM quotas WHERE grant_id = ?", (grant_id,)).fetchone()
        if row is None:
            # Remember the revocation (a tombstone), so that a late PUT of this version or an older
            # one cannot bring the quota to life.
            db.execute(
                "INSERT INTO quotas (grant_id, version, status, revoked_at) VALUES (?, ?, 'revoked', ?)",
                (grant_id, version, utc_now()),
            )
            _count_effect(db, grant_id, version, "revoke")
        elif row["status"] == "active":
            if version < row["version"]:
                return _stale(row["version"], version)
            db.execute(
                "UPDATE quotas SET status = 'revoked', version = ?, revoked_at = ? WHERE grant_id = ?",
                (version, utc_now(), grant_id),
            )
            _count_effect(db, grant_id, version, "revoke")
        elif version > row["version"]:
            # Already revoked: keep it revoked up to the newer version too (not a new effect).
            db.execute("UPDATE quotas SET version = ? WHERE grant_id = ?", (version, grant_id))
        row = db.execute("SELECT * FROM quotas WHERE grant_id = ?", (grant_id,)).fetchone()
        return 200, _quota_json(row)

    def _list_quotas(self, query: dict) -> dict:
        limit = _parse_limit(query)
        after = ""
        if query.get("cursor"):
            after = _b64decode(query["cursor"]).get("after")
            if not isinstance(after, str):
                raise ApiError(400, "invalid", "cursor is not valid")
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT * FROM quotas WHERE grant_id > ? ORDER BY grant_id LIMIT ?", (after, limit + 1)
            ).fetchall()
        items = [_quota_json(row) for row in rows[:limit]]
        next_cursor = _b64encode({"after": items[-1]["grant_id"]}) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    def _list_usage(self, query: dict) -> dict:
        limit = _parse_limit(query)
        with self.store.transaction() as db:
            epoch = db.execute("SELECT value FROM meta WHERE name = 'epoch'").fetchone()[0]
            after = 0
            if query.get("cursor"):
                data = _b64decode(query["cursor"])
                seq = data.get("s")
                if (
                    not isinstance(seq, int)
                    or isinstance(seq, bool)
                    or seq < 0
                    or not isinstance(data.get("e"), str)
                ):
                    raise ApiError(400, "invalid", "cursor is not valid")
                # A cursor from before a reset (or from an earlier in-memory run) starts over.
                after = seq if data["e"] == epoch else 0
            rows = db.execute(
                "SELECT * FROM usage WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        records = [
            json.loads(row["raw"])
            if row["raw"] is not None
            else {
                "record_id": row["record_id"],
                "grant_id": row["grant_id"],
                "gpu_hours": row["gpu_hours"],
                "started_at": row["started_at"],
                "ended_at": row["ended_at"],
            }
            for row in rows
        ]
        if not rows and query.get("cursor") and data["e"] == epoch:
            return {"records": [], "next_cursor": query["cursor"]}  # nothing new: the same cursor
        last = rows[-1]["seq"] if rows else after
        return {"records": records, "next_cursor": _b64encode({"e": epoch, "s": last})}

    # ----- audit checkpoints -----------------------------------------------------------------------

    def _checkpoint_api(self, method: str, route: str, query: dict, body: bytes, generation) -> Answer:
        if route == "/audit/checkpoints":
            self._allow(method, "GET")
            return Answer(200, self._list_checkpoints(query), {})
        match = re.fullmatch(r"/audit/checkpoints/([^/]+)", route)
        if not match:
            raise ApiError(404, "not_found", f"no such resource: {API_PREFIX}{route}")
        self._allow(method, "PUT")
        sequence = unquote(match[1])
        if not INTEGER_RE.fullmatch(sequence) or int(sequence) < 1:
            raise ApiError(400, "invalid", "the sequence in the URL must be a positive integer")
        checkpoint = _parse_checkpoint(int(sequence), body)
        if not signing.checkpoint_signature_valid(secret=self.secret, key_id=self.key_id, **checkpoint):
            raise ApiError(400, "bad_checkpoint_signature", "the checkpoint's signature does not match")
        with self._transaction(generation) as db:
            row = db.execute(
                "SELECT * FROM audit_checkpoints WHERE sequence = ?", (checkpoint["sequence"],)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO audit_checkpoints (sequence, hash, issued_at, signature, received_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        checkpoint["sequence"],
                        checkpoint["hash"],
                        checkpoint["issued_at"],
                        checkpoint["signature"],
                        utc_now(),
                    ),
                )
                row = db.execute(
                    "SELECT * FROM audit_checkpoints WHERE sequence = ?", (checkpoint["sequence"],)
                ).fetchone()
            elif row["hash"] != checkpoint["hash"]:
                # The first checkpoint shown for a sequence is kept: a chain rewritten since then
                # cannot overwrite what this provider was shown.
                raise ApiError(
                    409,
                    "checkpoint_conflict",
                    f"checkpoint {row['sequence']} is already held with another hash",
                    held=_checkpoint_json(row),
                )
        return Answer(200, _checkpoint_json(row), {})

    def _list_checkpoints(self, query: dict) -> dict:
        limit = _parse_limit(query)
        after = 0
        if query.get("cursor"):
            after = _b64decode(query["cursor"]).get("after")
            if isinstance(after, bool) or not isinstance(after, int) or after < 0:
                raise ApiError(400, "invalid", "cursor is not valid")
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT * FROM audit_checkpoints WHERE sequence > ? ORDER BY sequence LIMIT ?",
                (after, limit + 1),
            ).fetchall()
        items = [_checkpoint_json(row) for row in rows[:limit]]
        next_cursor = _b64encode({"after": items[-1]["sequence"]}) if len(rows) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    def force_checkpoint(self, sequence: str, data: dict) -> dict:
        """Store a checkpoint as given, replacing what is held, without any check (a forgery)."""
        if not INTEGER_RE.fullmatch(sequence) or int(sequence) < 1:
            raise ApiError(400, "invalid", "the sequence must be a positive integer")
        values = [data.get(name) for name in ("hash", "issued_at", "signature")]
        if not all(isinstance(value, str) for value in values):
            raise ApiError(400, "invalid", "hash, issued_at and signature must be strings")
        with self.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO audit_checkpoints (sequence, hash, issued_at, signature, received_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (int(sequence), *values, utc_now()),
            )
            row = db.execute(
                "SELECT * FROM audit_checkpoints WHERE sequence = ?", (int(sequence),)
            ).fetchone()
        return _checkpoint_json(row)

    # ----- control ---------------------------------------------------------------------------------

    def state(self) -> dict:
        with self.store.transaction() as db:
            quotas = {
                row["grant_id"]: _quota_json(row)
                for row in db.execute("SELECT * FROM quotas ORDER BY grant_id")
            }
            effects = {
                row["effect"]: row["count"] for row in db.execute("SELECT * FROM effects ORDER BY effect")
            }
            usage_records = db.execute("SELECT COUNT(*) FROM usage").fetchone()[0]
        with self._lock:
            requests = {
                "total": self._requests["total"],
                "by_fault": dict(self._by_fault),
                "by_status": dict(self._by_status),
            }
            config = self.config.as_dict()
        return {
            "quotas": quotas,
            "effects": effects,
            "usage": {"records": usage_records},
            "requests": requests,
            "config": config,
        }

    def generate_usage(self, records_per_quota: int, grant_ids: list[str] | None = None) -> dict:
        """``records_per_quota`` new usage records for every active quota (or those of ``grant_ids``).

        Records lie inside the quota's validity, one hour each (shorter for short quotas; after the
        last hour they start over from the first). Record ids are "<random batch id>-<n>", so they
        never repeat, also across runs of the simulator."""
        with self._lock:
            rng = random.Random(self._rng.getrandbits(64))
        batch = uuid.uuid4().hex
        wanted = set(grant_ids) if grant_ids is not None else None
        created = 0
        with self.store.transaction() as db:
            rows = db.execute("SELECT * FROM quotas WHERE status = 'active' ORDER BY grant_id").fetchall()
            for row in rows:
                if wanted is not None and row["grant_id"] not in wanted:
                    continue
                start = parse_rfc3339(row["valid_from"]) or datetime.now(UTC)
                end = parse_rfc3339(row["valid_until"]) or start + timedelta(days=30)
                span = max((end - start).total_seconds(), 1.0)
                step = min(3600.0, span)
                slots = max(1, int(span // step))
                intervals = {}  # slot -> (started_at, ended_at, seconds)
                done = row["usage_generated"]
                records = []
                for index in range(done, done + records_per_quota):
                    slot = index % slots
                    if slot not in intervals:
                        began = start + timedelta(seconds=slot * step)
                        ended = min(began + timedelta(seconds=step), end)
                        intervals[slot] = (rfc3339(began), rfc3339(ended), (ended - began).total_seconds())
                    started_at, ended_at, seconds = intervals[slot]
                    # 0.25 to 8 GPUs busy for the interval, in hundredths of a GPU-hour (at least 0.01).
                    cents = max(1, round(rng.randint(25, 800) * seconds / 3600))
                    hours = f"{cents // 100}.{cents % 100:02d}"
                    records.append((f"{batch}-{created}", row["grant_id"], hours, started_at, ended_at))
                    created += 1
                db.executemany(
                    "INSERT INTO usage (record_id, grant_id, gpu_hours, started_at, ended_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    records,
                )
                db.execute(
                    "UPDATE quotas SET usage_generated = ? WHERE grant_id = ?",
                    (done + records_per_quota, row["grant_id"]),
                )
            total = db.execute("SELECT COUNT(*) FROM usage").fetchone()[0]
        return {"created": created, "total": total}

    def add_raw_usage(self, records: list) -> dict:
        """Append records exactly as given (any JSON values, invalid ones too) to the usage feed, so
        that tests see how the portal copes with a provider that sends bad records."""
        with self.store.transaction() as db:
            db.executemany(
                "INSERT INTO usage (record_id, grant_id, gpu_hours, started_at, ended_at, raw)"
                " VALUES (?, '', '', '', '', ?)",
                [(f"raw-{uuid.uuid4().hex}", json.dumps(record)) for record in records],
            )
            total = db.execute("SELECT COUNT(*) FROM usage").fetchone()[0]
        return {"created": len(records), "total": total}

    def force_quota(self, grant_id: str, data: dict) -> dict:
        """Store a quota as given, without version rules, effects or idempotency (to create drift)."""
        if not GRANT_ID_RE.fullmatch(grant_id):
            raise ApiError(400, "invalid", "grant id must be 1-128 characters of A-Z a-z 0-9 . _ -")
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ApiError(400, "invalid", "version must be a positive integer")
        status = data.get("status", "active")
        if status not in ("active", "revoked"):
            raise ApiError(400, "invalid", "status must be active or revoked")
        organization = data.get("organization")
        values = (
            grant_id,
            version,
            status,
            json.dumps(organization, ensure_ascii=False) if organization is not None else None,
            *(None if data.get(name) is None else str(data[name]) for name in _FORCED_TEXT_FIELDS),
            utc_now() if status == "active" else None,
            utc_now() if status == "revoked" else None,
        )
        with self.store.transaction() as db:
            db.execute("DELETE FROM quotas WHERE grant_id = ?", (grant_id,))
            db.execute(
                "INSERT INTO quotas (grant_id, version, status, organization, pool, gpu_class, gpu_hours,"
                " valid_from, valid_until, applied_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            return _quota_json(db.execute("SELECT * FROM quotas WHERE grant_id = ?", (grant_id,)).fetchone())

    def held_quota(self, method: str, raw_path: str) -> dict | None:
        """The "wrong" fault's answer to a PUT or DELETE of a quota: what the simulator holds for it
        (unchanged), or a revoked version-0 quota if it holds nothing; None for other requests."""
        match = re.fullmatch(API_PREFIX + r"/quotas/([^/?]+)(\?.*)?", raw_path)
        if method not in ("PUT", "DELETE") or not match:
            return None
        grant_id = unquote(match[1])
        with self.store.transaction() as db:
            row = db.execute("SELECT * FROM quotas WHERE grant_id = ?", (grant_id,)).fetchone()
        if row is not None:
            return _quota_json(row)
        return {"grant_id": grant_id, "version": 0, "status": "revoked", "gpu_hours": None}

    def forget_quota(self, grant_id: str) -> bool:
        with self.store.transaction() as db:
            return db.execute("DELETE FROM quotas WHERE grant_id = ?", (grant_id,)).rowcount > 0

    def close(self) -> None:
        self.store.close()


_FORCED_TEXT_FIELDS = ("pool", "gpu_class", "gpu_hours", "valid_from", "valid_until")


class _Superseded(Exception):
    """The simulator was reset while this request was in flight: apply nothing, answer nothing."""


def _parse_int(value, name: str, *, minimum: int) -> int:
    if value is None or value == "":
        raise ApiError(400, "invalid", f"the {name} query parameter is required")
    if not INTEGER_RE.fullmatch(value) or int(value) < minimum:
        raise ApiError(400, "invalid", f"{name} must be an integer of at least {minimum}")
    return int(value)


def _parse_limit(query: dict) -> int:
    if query.get("limit") in (None, ""):
        return DEFAULT_LIMIT
    value = query["limit"]
    if not INTEGER_RE.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, "invalid", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


def _parse_json_object(body: bytes) -> dict:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid", "the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid", "the body must be a JSON object")
    return data


def _parse_quota(grant_id: str, body: bytes) -> dict:
    data = _parse_json_object(body)
    errors: dict[str, list[str]] = {}

    def text(field: str, value, max_length: int) -> None:
        if not isinstance(value, str) or not value.strip():
            errors[field] = ["this field is required and must be a non-empty string"]
        elif len(value) > max_length:
            errors[field] = [f"at most {max_length} characters"]

    if data.get("grant_id") != grant_id:
        errors["grant_id"] = ["this field is required and must equal the grant id in the URL"]
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**63:
        errors["version"] = ["this field is required and must be a positive integer"]
    organization = data.get("organization")
    if not isinstance(organization, dict):
        errors["organization"] = ["this field is required and must be an object with id and name"]
    else:
        text("organization.id", organization.get("id"), 200)
        text("organization.name", organization.get("name"), 500)
    text("pool", data.get("pool"), 200)
    text("gpu_class", data.get("gpu_class"), 40)
    gpu_hours = data.get("gpu_hours")
    if not isinstance(gpu_hours, str) or not DECIMAL_RE.fullmatch(gpu_hours):
        errors["gpu_hours"] = ['this field is required and must be a decimal string such as "1200.00"']
    moments = {}
    for name in ("valid_from", "valid_until"):
        moments[name] = parse_rfc3339(data.get(name))
        if moments[name] is None:
            errors[name] = [
                'this field is required and must be an RFC 3339 date-time such as "2026-04-01T00:00:00Z"'
            ]
    if moments["valid_from"] and moments["valid_until"] and moments["valid_until"] <= moments["valid_from"]:
        errors["valid_until"] = ["must be after valid_from"]
    if errors:
        summary = "; ".join(f"{name}: {messages[0]}" for name, messages in errors.items())
        raise ApiError(400, "invalid", f"invalid quota: {summary}", fields=errors)
    return {
        "grant_id": grant_id,
        "version": version,
        "organization": organization,
        "pool": data["pool"],
        "gpu_class": data["gpu_class"],
        "gpu_hours": gpu_hours,
        "valid_from": data["valid_from"],
        "valid_until": data["valid_until"],
    }


def _checkpoint_json(row) -> dict:
    return {
        "sequence": row["sequence"],
        "hash": row["hash"],
        "issued_at": row["issued_at"],
        "signature": row["signature"],
        "received_at": row["received_at"],
    }


def _parse_checkpoint(sequence: int, body: bytes) -> dict:
    data = _parse_json_object(body)
    errors: dict[str, list[str]] = {}
    value = data.get("sequence")
    if isinstance(value, bool) or not isinstance(value, int) or value != sequence:
        errors["sequence"] = ["this field is required and must equal the sequence in the URL"]
    if not isinstance(data.get("hash"), str) or not CHECKPOINT_HASH_RE.fullmatch(data["hash"]):
        errors["hash"] = ["this field is required and must be 64 lowercase hexadecimal digits"]
    if parse_rfc3339(data.get("issued_at")) is None:
        errors["issued_at"] = ["this field is required and must be an RFC 3339 date-time"]
    if not isinstance(data.get("signature"), str) or not data["signature"].strip():
        errors["signature"] = ["this field is required and must be a string"]
    if errors:
        summary = "; ".join(f"{name}: {messages[0]}" for name, messages in errors.items())
        raise ApiError(400, "invalid", f"invalid checkpoint: {summary}", fields=errors)
    return {
        "sequence": sequence,
        "hash": data["hash"],
        "issued_at": data["issued_at"],
        "signature": data["signature"],
    }


class _NoAnswer(Exception):
    """Close the connection without answering."""


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AllianceProviderSimulator/1"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    server: "SimulatorServer"

    def do_GET(self):
        self._dispatch()

    do_PUT = do_DELETE = do_POST = do_PATCH = do_GET

    def log_request(self, code="-", size="-"):
        pass  # one line per request is written by _log

    def log_message(self, format, *args):
        if self.server.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def _log(self, started: float, status, fault: str | None) -> None:
        if self.server.verbose:
            answer = status if status else "no answer"
            took = (time.monotonic() - started) * 1000
            sys.stderr.write(
                f"{self.command} {self.path} -> {answer}{f' fault={fault}' if fault else ''} {took:.0f} ms\n"
            )
            sys.stderr.flush()

    def _dispatch(self) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path
        try:
            body = self._read_body()
        except ApiError as exc:
            self.close_connection = True
            self._send(Answer(exc.status, exc.body(), {}))
            self._log(started, exc.status, None)
            return
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            self._api(body, started)
        elif path.startswith(CONTROL_PREFIX + "/"):
            try:
                answer = self._control(path[len(CONTROL_PREFIX) :], body)
            except Exception:
                traceback.print_exc()
                answer = Answer(500, {"error": "simulator bug (see its stderr)", "code": "internal"}, {})
            self._send(answer)
            self._log(started, answer.status, None)
        else:
            self._send(Answer(404, {"error": f"no such resource: {path}", "code": "not_found"}, {}))
            self._log(started, 404, None)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(
                411, "invalid", "send the body with a Content-Length (chunked bodies are not supported)"
            )
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit():
            raise ApiError(400, "invalid", "Content-Length is not valid")
        if int(length) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(int(length)) if int(length) else b""

    def _api(self, body: bytes, started: float) -> None:
        simulator = self.server.simulator
        fault, config, generation = simulator.begin_request()
        status = None
        try:
            if config.latency:
                time.sleep(config.latency)
            if fault == "500":
                answer = Answer(500, {"error": "injected fault: internal error", "code": "internal"}, {})
            elif fault == "503":
                answer = Answer(
                    503, {"error": "injected fault: unavailable", "code": "unavailable"}, {"Retry-After": "1"}
                )
            elif fault == "timeout":
                time.sleep(config.hang_seconds)
                raise _NoAnswer
            elif fault == "drop":
                raise _NoAnswer
            elif fault == "wrong" and (held := simulator.held_quota(self.command, self.path)) is not None:
                answer = Answer(200, held, {})
            else:
                if fault == "slow":
                    time.sleep(config.slow_seconds)
                try:
                    answer = simulator.handle_api(self.command, self.path, self.headers, body, generation)
                except _Superseded:
                    raise _NoAnswer from None
                except Exception:
                    traceback.print_exc()
                    answer = Answer(500, {"error": "simulator bug (see its stderr)", "code": "internal"}, {})
                if fault == "lost":
                    raise _NoAnswer
            if fault == "drip":
                self._send(answer, drip_seconds=config.drip_seconds)
            else:
                self._send(answer)
            status = answer.status
        except _NoAnswer:
            self.close_connection = True
        finally:
            simulator.count_status(status)
            self._log(started, status, fault)

    def _control(self, route: str, body: bytes) -> Answer:
        simulator = self.server.simulator
        method = self.command
        try:
            if route == "/health" and method == "GET":
                return Answer(200, {"status": "ok"}, {})
            if route == "/state" and method == "GET":
                return Answer(200, simulator.state(), {})
            if route == "/config" and method == "GET":
                return Answer(200, simulator.config.as_dict(), {})
            if route == "/config" and method == "POST":
                try:
                    config = simulator.configure(_parse_json_object(body or b"{}"))
                except ValueError as exc:
                    raise ApiError(400, "invalid", str(exc)) from exc
                return Answer(200, config.as_dict(), {})
            if route == "/reset" and method == "POST":
                simulator.reset()
                return Answer(200, {"status": "reset"}, {})
            if route == "/usage/generate" and method == "POST":
                data = _parse_json_object(body or b"{}")
                count = data.get("records_per_quota", 1)
                if (
                    isinstance(count, bool)
                    or not isinstance(count, int)
                    or not 1 <= count <= MAX_RECORDS_PER_QUOTA
                ):
                    raise ApiError(
                        400,
                        "invalid",
                        f"records_per_quota must be an integer from 1 to {MAX_RECORDS_PER_QUOTA}",
                    )
                grant_ids = data.get("grant_ids")
                if grant_ids is not None and (
                    not isinstance(grant_ids, list) or not all(isinstance(g, str) for g in grant_ids)
                ):
                    raise ApiError(400, "invalid", "grant_ids must be a list of grant ids")
                return Answer(200, simulator.generate_usage(count, grant_ids), {})
            match = re.fullmatch(r"/audit/checkpoints/([^/]+)", route)
            if match and method == "PUT":
                return Answer(200, simulator.force_checkpoint(match[1], _parse_json_object(body)), {})
            if route == "/usage/raw" and method == "POST":
                records = _parse_json_object(body or b"{}").get("records")
                if not isinstance(records, list):
                    raise ApiError(400, "invalid", "records must be a list")
                return Answer(200, simulator.add_raw_usage(records), {})
            match = re.fullmatch(r"/quotas/([^/]+)", route)
            if match and method == "PUT":
                return Answer(200, simulator.force_quota(unquote(match[1]), _parse_json_object(body)), {})
            if match and method == "DELETE":
                return Answer(200, {"deleted": simulator.forget_quota(unquote(match[1]))}, {})
            raise ApiError(404, "not_found", f"no such control endpoint: {method} {CONTROL_PREFIX}{route}")
        except ApiError as exc:
            return Answer(exc.status, exc.body(), {})

    def _send(self, answer: Answer, *, drip_seconds: float = 0.0) -> None:
        try:
            payload = json.dumps(answer.body, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # lone surrogates (raw usage records): escape them
            payload = json.dumps(answer.body).encode()
        if drip_seconds:
            self.wfile = _DripWriter(self.wfile, drip_seconds)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except OSError:  # the client gave up on a dripping answer
            self.close_connection = True
        finally:
            if drip_seconds:
                self.wfile = self.wfile.raw
                self.close_connection = True


class _DripWriter:
    """Writes one byte at a time, ``seconds`` apart (the "drip" fault): status line, headers, body."""

    def __init__(self, raw, seconds: float):
        self.raw, self.seconds = raw, seconds

    def write(self, data: bytes) -> int:
        for i in range(len(data)):
            self.raw.write(data[i : i + 1])
            self.raw.flush()
            time.sleep(self.seconds)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], simulator: Simulator, *, verbose: bool = False):
        self.simulator = simulator
        self.verbose = verbose
        super().__init__(address, SimulatorHandler)

    def server_bind(self):
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{API_PREFIX}"


def loopback_host(host: str) -> str:
    """The IPv4 loopback address to bind; ValueError for anything else (the control API is unsigned)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"--host must be an IPv4 loopback address such as 127.0.0.1, not {host!r}") from exc
    if address.version != 4 or not address.is_loopback:
        raise ValueError(f"--host must be an IPv4 loopback address such as 127.0.0.1, not {host!r}")
    return host


def make_server(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    secret: str,
    key_id: str = "sim",
    fail_rate: float = 0.0,
    faults=FAULT_KINDS,
    latency: float = 0.0,
    hang_seconds: float = 5.0,
    slow_seconds: float = 0.5,
    seed: int | None = None,
    db: str | None = None,
    verbose: bool = False,
) -> SimulatorServer:
    """A bound (not yet serving) simulator server; ValueError for bad options."""
    config = FaultConfig().updated(
        {
            "fail_rate": fail_rate,
            "faults": faults,
            "latency": latency,
            "hang_seconds": hang_seconds,
            "slow_seconds": slow_seconds,
        }
    )
    if not key_id:
        raise ValueError("a key id is required")
    simulator = Simulator(secret=secret, key_id=key_id, config=config, seed=seed, db_path=db)
    try:
        return SimulatorServer((loopback_host(host), port), simulator, verbose=verbose)
    except BaseException:
        simulator.close()
        raise


def serve_until_signalled(server: SimulatorServer) -> None:
    """Serve until SIGTERM or SIGINT, then stop accepting, close the socket and the storage."""

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, which runs in this (the main) thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.server_close()
        server.simulator.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options, shared by ``manage.py provider_simulator`` and ``main()``."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8101, help="port; 0 picks a free one (default 8101)")
    parser.add_argument("--key-id", default="sim", help="key id the portal signs with (default sim)")
    parser.add_argument(
        "--secret",
        default=os.environ.get("PROVIDER_SIMULATOR_SECRET", ""),
        help="shared signing secret (default: $PROVIDER_SIMULATOR_SECRET)",
    )
    parser.add_argument(
        "--fail-rate", type=float, default=0.0, help="probability of a fault per API request, 0..1"
    )
    parser.add_argument(
        "--faults",
        default=",".join(FAULT_KINDS),
        help=f"enabled fault kinds, comma list (default {','.join(FAULT_KINDS)})",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every API request")
    parser.add_argument("--hang-seconds", type=float, default=5.0, help="how long a 'timeout' fault hangs")
    parser.add_argument("--slow-seconds", type=float, default=0.5, help="how long a 'slow' fault delays")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault RNG")
    parser.add_argument("--db", default=None, help="SQLite file to keep state in (default: in memory)")
    parser.add_argument("--verbose", action="store_true", help="log one line per request to stderr")


def server_from_options(options: dict) -> SimulatorServer:
    if not options.get("secret"):
        raise ValueError("--secret is required (or set PROVIDER_SIMULATOR_SECRET)")
    return make_server(
        host=options["host"],
        port=options["port"],
        secret=options["secret"],
        key_id=options["key_id"],
        fail_rate=options["fail_rate"],
        faults=options["faults"],
        latency=options["latency"],
        hang_seconds=options["hang_seconds"],
        slow_seconds=options["slow_seconds"],
        seed=options["seed"],
        db=options["db"],
        verbose=options["verbose"],
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Alliance Provider API v1 simulator")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    try:
        server = server_from_options(options)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    print(f"Provider simulator listening on {server.base_url}", flush=True)
    serve_until_signalled(server)


if __name__ == "__main__":
    main()
