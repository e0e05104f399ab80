"""Database bounds (PostgreSQL's lock_timeout, statement_timeout, idle_in_transaction_session_timeout)
and how a process picks them: web processes get ``DATABASE_TIMEOUTS["web"]`` from the settings,
Celery workers and beat switch to ``["worker"]`` when they start (portal/celery.py).

A timeout is not a bug but a refusal to wait longer: ``is_database_timeout`` recognises it, the web
answers 503 with Retry-After (apps.core.middleware.DatabaseTimeoutMiddleware) and tasks retry
(apps.core.tasks.PortalTask)."""

from __future__ import annotations

POSTGRESQL = "django.db.backends.postgresql"
# SQLSTATE classes of "we stopped waiting": lock_not_available (55P03), query_canceled (57014,
# statement_timeout), idle_in_transaction_session_timeout (25P03).
TIMEOUT_SQLSTATES = frozenset({"55P03", "57014", "25P03"})


def timeout_options(existing: str, bounds: dict[str, int]) -> str:
    """libpq ``options`` ("-c name=value …") with ``bounds`` set, other options kept."""
    kept = []
    for part in existing.split("-c"):
        part = part.strip()
        if part and part.split("=", 1)[0].strip() not in bounds:
            kept.append(f"-c {part}")
    return " ".join(kept + [f"-c {name}={int(value)}" for name, value in bounds.items()])


def use_database_timeouts(role: str) -> None:
    """Make new connections of this process use the bounds of ``role`` ("web" or "worker") and close
    the current ones (they reconnect with the new bounds on their next query)."""
    from django.conf import settings
    from django.db import connections

    bounds = settings.DATABASE_TIMEOUTS[role]
    for alias in connections:
        settings_dict = connections.settings[alias]
        if settings_dict["ENGINE"] != POSTGRESQL:
            continue
        options = settings_dict.setdefault("OPTIONS", {})
        options["options"] = timeout_options(options.get("options", ""), bounds)
        # pg_stat_activity then tells a DBA which kind of process holds a lock.
        options["application_name"] = f"portal-{role}"
        connections[alias].settings_dict["OPTIONS"] = options
        connections[alias].close()


def is_database_timeout(exc: BaseException | None) -> bool:
    """True when ``exc`` (or what caused it) is PostgreSQL refusing to wait longer."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if getattr(exc, "sqlstate", None) in TIMEOUT_SQLSTATES:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
