"""Usage coming back from providers: validation, idempotent storage, the monthly rollup, pulls.

Every record is checked against ``USAGE_RECORD_SCHEMA`` (JSON Schema, validated by ``jsonschema``)
and then against what a schema cannot say: the times are real instants (no 30 February, no offset
of 25 hours) in a sane range of years, the amount is at most ``MAX_HOURS_PER_RECORD``, and the ids
are text PostgreSQL can store (no NUL, no lone surrogate, no control character).

Pushes are all or nothing: one bad record refuses the request with an error per record. Pulls skip
the bad records, store the good ones and move the cursor on. Either way the refusal is recorded
(``UsageRejection``: visible to the secretariat and the provider's operators, counted).

Writes follow one lock order, so that concurrent ingestions of overlapping records in any order
cannot deadlock: the records in ``record_id`` order, then the monthly rows in (grant, month) order.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

import jsonschema_rs
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator

from apps.providers.models import Provider, QuotaGrant, UsageMonth, UsageRecord, UsageRejection

logger = logging.getLogger(__name__)

MAX_HOURS_PER_RECORD = Decimal("1000000")
MIN_YEAR, MAX_YEAR = 2000, 2100  # usage outside these years is a provider's bug, not usage
MAX_JSON_DEPTH = 32  # a usage document needs 3 levels; deeper bodies are refused before anything else
MAX_REJECTIONS_KEPT = 50  # per refused batch: the first errors, with the count of all of them
INSERT_CHUNK = 1000  # rows per INSERT statement (7 parameters each)
TOKYO = ZoneInfo("Asia/Tokyo")

RFC3339 = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?"
    r"([Zz]|([+-])([0-9]{2}):([0-9]{2}))$"
)
RFC3339_RE = re.compile(RFC3339)

USAGE_RECORD_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "A usage record (docs/provider-api.md)",
    "type": "object",
    "required": ["record_id", "grant_id", "gpu_hours", "started_at", "ended_at"],
    "properties": {
        "record_id": {"type": "string", "minLength": 1, "maxLength": 100},
        "grant_id": {
            "type": "string",
            "pattern": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$",
        },
        "gpu_hours": {
            "anyOf": [
                {"type": "string", "pattern": r"^[0-9]{1,7}(\.[0-9]{1,12})?$"},
                {"type": "number", "minimum": 0, "maximum": float(MAX_HOURS_PER_RECORD)},
            ]
        },
        "started_at": {"type": "string", "maxLength": 40, "pattern": RFC3339},
        "ended_at": {"type": "string", "maxLength": 40, "pattern": RFC3339},
    },
}
USAGE_PAGE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "A page of GET /usage (docs/provider-api.md)",
    "type": "object",
    "required": ["records"],
    "properties": {
        "records": {"type": "array"},
        "next_cursor": {"type": ["string", "null"], "maxLength": 2000},
    },
}
# Every record is checked with jsonschema-rs (~2 µs a record, against ~90 µs for the pure-Python
# jsonschema, which would add 0.9 s to a push of 10,000 records); only refused records go through
# jsonschema again, to name the fields at fault. Both implement the same JSON Schema draft.
_record_validator = Draft202012Validator(USAGE_RECORD_SCHEMA)
_record_fast = jsonschema_rs.validator_for(USAGE_RECORD_SCHEMA)
_page_validator = Draft202012Validator(USAGE_PAGE_SCHEMA)


def _field_messages() -> dict[str, str]:
    return {
        "record_id": _("A record id of 1 to 100 characters of printable text is required."),
        "grant_id": _("Unknown grant for this provider."),
        "gpu_hours": _("GPU-hours must be a number between 0 and 1,000,000."),
        "started_at": _("An RFC 3339 time with a time zone, in the years 2000 to 2100, is required."),
        "ended_at": _("An RFC 3339 time with a time zone, in the years 2000 to 2100, is required."),
    }


def _message(name: str) -> str:
    """The message for a bad field (translated only when a record is refused: gettext per field of
    every good record cost more than the schema check)."""
    return _field_messages()[name]


class UsageRejected(Exception):
    """A push with invalid records; ``errors`` lists each bad record. No usage was written."""

    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} invalid usage records")
        self.errors = errors


class BadDocument(ValueError):
    """A body that is not a JSON document the portal accepts; ``reason`` is safe to show."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    skipped: list[dict] = field(default_factory=list)


# --- parsing and checking ------------------------------------------------------------------------


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def json_depth(value, *, limit: int) -> int:
    """The nesting depth of a parsed JSON value (iteratively; stops counting past ``limit``)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def parse_json_document(body: bytes | str, *, max_depth: int = MAX_JSON_DEPTH):
    """Parse outside JSON: strict (no NaN/Infinity), at most ``max_depth`` levels, integers of at
    most 4,300 digits (Python's limit). Raises BadDocument with a reason safe to show."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise BadDocument(f"the JSON document is nested more than {max_depth} levels deep") from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, huge integers, bad UTF-8
        raise BadDocument(f"the body is not valid JSON: {str(exc)[:200]}") from exc
    if json_depth(data, limit=max_depth) > max_depth:
        raise BadDocument(f"the JSON document is nested more than {max_depth} levels deep")
    return data


def storable_text(value: str) -> bool:
    """Text PostgreSQL can store and people can read: no NUL or other control character, no lone
    surrogate (which UTF-8 cannot encode)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value)


@lru_cache(maxsize=8192)  # a batch repeats its hours: parse each string once
def _instant(value: str) -> datetime | None:
    """The aware datetime of an RFC 3339 string matched by the schema, or None if it names no real
    instant (30 February, 24:00, an offset of 24 hours or more) or lies outside the sane years."""
    match = RFC3339_RE.match(value)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    fraction = match[7] or ""
    try:
        if match[8] in ("Z", "z"):
            zone = UTC
        else:
            offset = timedelta(hours=int(match[10]), minutes=int(match[11]))
            if int(match[11]) > 59 or offset >= timedelta(hours=24):
                return None
            zone = dt_timezone(-offset if match[9] == "-" else offset)
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        utc = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if not (MIN_YEAR <= year <= MAX_YEAR and MIN_YEAR <= utc.year <= MAX_YEAR):
        return None
    return moment


def _hours(value) -> Decimal | None:
    try:
        hours = Decimal(value) if isinstance(value, str) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not hours.is_finite() or hours < 0 or hours > MAX_HOURS_PER_RECORD:
        return None
    return hours.quantize(Decimal("0.0001"))


def _schema_problems(record) -> dict[str, list[str]] | None:
    """Problems by field according to the schema; None when the record is not even an object."""
    try:
        if _record_fast.is_valid(record):
            return {}
    except (UnicodeEncodeError, ValueError):  # a lone surrogate (Rust strings are UTF-8): the slow path
        pass
    if not isinstance(record, dict):
        return None
    messages = _field_messages()
    problems: dict[str, list[str]] = {}
    for error in _record_validator.iter_errors(record):
        if error.validator == "required":
            names = [name for name in USAGE_RECORD_SCHEMA["required"] if name not in record]
        else:
            names = [str(error.path[0])] if error.path else []
        for name in names:
            problems.setdefault(name, [messages[name]])
    return problems


def check_record(record, grant_map: dict[str, int]) -> tuple[dict | None, dict[str, list[str]]]:
    """(the values to store, {}) or (None, problems by field) for one record as received."""
    problems = _schema_problems(record)
    if problems is None:
        return None, {"record": [_("Expected an object.")]}
    if "record_id" not in problems and not storable_text(record["record_id"]):
        problems["record_id"] = [_message("record_id")]
    values: dict = {}
    if "grant_id" not in problems:
        grant_pk = grant_map.get(_canonical_uuid(record["grant_id"]))
        if grant_pk is None:
            problems["grant_id"] = [_message("grant_id")]
        values["grant_id"] = grant_pk
    if "gpu_hours" not in problems:
        values["gpu_hours"] = _hours(record["gpu_hours"])
        if values["gpu_hours"] is None:
            problems["gpu_hours"] = [_message("gpu_hours")]
    for name in ("started_at", "ended_at"):
        if name not in problems:
            values[name] = _instant(record[name])
            if values[name] is None:
                problems[name] = [_message(name)]
    if values.get("started_at") and values.get("ended_at") and values["ended_at"] < values["started_at"]:
        problems["ended_at"] = [_("The interval ends before it starts.")]
    if problems:
        return None, problems
    values["record_id"] = record["record_id"]
    return values, {}


@lru_cache(maxsize=8192)
def _canonical_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


def shown(value, limit: int = 200) -> str:
    """Outside data as printable ASCII (JSON escapes), cut to ``limit``: safe in a TextField, in
    JSONB and on a page whatever it holds (NUL, lone surrogates, control characters)."""
    try:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=True)
    except (ValueError, TypeError, RecursionError):
        text = repr(type(value))
    text = json.dumps(text, ensure_ascii=True)[1:-1] if isinstance(value, str) else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_entry(index: int, record, problems: dict[str, list[str]]) -> dict:
    record_id = record.get("record_id") if isinstance(record, dict) else None
    return {
        "index": index,
        "record_id": record_id if isinstance(record_id, str) and storable_text(record_id) else None,
        "errors": problems,
    }


def _grant_map(provider: Provider, records: list, chunk_size: int) -> dict[str, int]:
    wanted = sorted(
        {
            canonical
            for r in records
            if isinstance(r, dict)
            and isinstance(r.get("grant_id"), str)
            and (canonical := _canonical_uuid(r["grant_id"])) is not None
        }
    )
    grant_map: dict[str, int] = {}
    for i in range(0, len(wanted), chunk_size):
        grant_map.update(
            (str(public_id), pk)
            for public_id, pk in QuotaGrant.objects.filter(
                pool__provider=provider, public_id__in=wanted[i : i + chunk_size]
            ).values_list("public_id", "pk")
        )
    return grant_map


# --- the rejection log ---------------------------------------------------------------------------


def usage_rejection_record(
    *,
    provider: Provider,
    source: str,
    errors: list[dict],
    records: list | None = None,
    accepted: int = 0,
    cursor: str = "",
    problem: str = "",
) -> UsageRejection:
    """Keep what was refused (the first MAX_REJECTIONS_KEPT records, each with its reasons and an
    excerpt of what was sent) and how many, for the secretariat and the provider's operators."""
    kept = []
    for entry in errors[:MAX_REJECTIONS_KEPT]:
        index = entry.get("index")
        raw = records[index] if records is not None and isinstance(index, int) else None
        kept.append(
            {
                "index": index,
                "record_id": shown(entry["record_id"], 100) if entry.get("record_id") else None,
                "errors": {shown(k, 40): [shown(m, 300) for m in v] for k, v in entry["errors"].items()},
                "excerpt": shown(raw, 300) if raw is not None else "",
            }
        )
    rejection = UsageRejection.objects.create(
        provider=provider,
        source=source,
        rejected=len(errors),
        accepted=accepted,
        cursor=shown(cursor, 500),
        problem=shown(problem, 500),
        errors=kept,
    )
    logger.warning(
        "usage from %s (%s): %d records refused, %d accepted%s",
        provider.slug,
        source,
        len(errors),
        accepted,
        f" ({problem})" if problem else "",
    )
    return rejection


# --- ingestion -----------------------------------------------------------------------------------


def usage_ingest(
    *,
    provider: Provider,
    records: list,
    strict: bool = True,
    chunk_size: int = 5000,
    source: str = "",
    cursor: str = "",
) -> IngestResult:
    """Store usage records idempotently on (provider, record_id).

    strict (pushes): any invalid record refuses the whole batch with per-record errors
    (UsageRejected), and no usage is written. Not strict (pulls): invalid records are skipped and
    listed in ``skipped``. With ``source`` ("push" or "pull") refusals are also recorded as a
    ``UsageRejection``."""
    if not isinstance(records, list):
        raise UsageRejected(
            [{"index": None, "record_id": None, "errors": {"records": [_("Expected a list of records.")]}}]
        )
    grant_map = _grant_map(provider, records, chunk_size)
    rows: dict[str, UsageRecord] = {}
    errors: list[dict] = []
    duplicates_in_batch = 0
    for index, record in enumerate(records):
        values, problems = check_record(record, grant_map)
        if problems:
            errors.append(_error_entry(index, record, problems))
            continue
        if values["record_id"] in rows:
            duplicates_in_batch += 1
            continue
        rows[values["record_id"]] = UsageRecord(provider=provider, **values)
    if errors and strict:
        if source:
            usage_rejection_record(provider=provider, source=source, errors=errors, records=records)
        raise UsageRejected(errors)
    result = IngestResult(duplicates=duplicates_in_batch, skipped=errors)
    # One global order (record ids), all records before any monthly row: see the module docstring.
    new_rows = [rows[key] for key in sorted(rows)]
    with transaction.atomic():
        inserted: list[tuple[int, datetime, Decimal]] = []
        for i in range(0, len(new_rows), INSERT_CHUNK):
            part = _insert_usage(new_rows[i : i + INSERT_CHUNK])
            inserted += part
            result.accepted += len(part)
            result.duplicates += len(new_rows[i : i + INSERT_CHUNK]) - len(part)
        _add_to_months(inserted)
        if errors and source:
            usage_rejection_record(
                provider=provider,
                source=source,
                errors=errors,
                records=records,
                accepted=result.accepted,
                cursor=cursor,
            )
    return result


def _insert_usage(records: list[UsageRecord]) -> list[tuple[int, datetime, Decimal]]:
    """Insert the records that are not stored yet and return (grant, start, GPU-hours) of exactly
    those: ``ON CONFLICT DO NOTHING RETURNING`` (PostgreSQL and SQLite), so that concurrent pushes
    of the same records count and roll up each record once. Rows are inserted in the given order
    (callers sort them by record id)."""
    if not records:
        return []
    ops = connection.ops
    table = UsageRecord._meta.db_table
    now = ops.adapt_datetimefield_value(timezone.now())
    placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(records))
    params = []
    for r in records:
        params += [
            r.provider_id,
            r.record_id,
            r.grant_id,
            ops.adapt_decimalfield_value(r.gpu_hours, 12, 4),
            ops.adapt_datetimefield_value(r.started_at),
            ops.adapt_datetimefield_value(r.ended_at),
            now,
        ]
    columns = "provider_id, record_id, grant_id, gpu_hours, started_at, ended_at, received_at"
    sql = (
        f"INSERT INTO {table} ({columns}) VALUES {placeholders} "
        "ON CONFLICT (provider_id, record_id) DO NOTHING RETURNING grant_id, started_at, gpu_hours"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        returned = cursor.fetchall()
    rows = []
    for grant_id, started, hours in returned:
        if not isinstance(started, datetime):  # SQLite returns the stored text
            started = parse_datetime(started)
        if timezone.is_naive(started):  # stored in UTC
            started = started.replace(tzinfo=UTC)
        rows.append((grant_id, started, Decimal(str(hours))))
    return rows


def _add_to_months(inserted: list[tuple[int, datetime, Decimal]]) -> None:
    """Add the inserted records to the monthly rollup (UsageMonth), in the same transaction, in
    (grant, month) order so that concurrent ingestions lock the rows alike."""
    totals: dict[tuple[int, date], list] = {}
    for grant_id, started, hours in inserted:
        local = started.astimezone(TOKYO)
        key = (grant_id, date(local.year, local.month, 1))
        entry = totals.setdefault(key, [Decimal("0"), 0])
        entry[0] += hours
        entry[1] += 1
    if not totals:
        return
    ops = connection.ops
    table = UsageMonth._meta.db_table
    keys = sorted(totals)
    placeholders = ", ".join(["(%s, %s, %s, %s)"] * len(keys))
    params = []
    for grant_id, month in keys:
        hours, count = totals[(grant_id, month)]
        params += [
            grant_id,
            ops.adapt_datefield_value(month),
            ops.adapt_decimalfield_value(hours, 16, 4),
            count,
        ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (grant_id, month, gpu_hours, records) VALUES {placeholders} "
            "ON CONFLICT (grant_id, month) DO UPDATE SET "
            f"gpu_hours = {table}.gpu_hours + excluded.gpu_hours, "
            f"records = {table}.records + excluded.records",
            params,
        )


def _looks_like_uuid(value: str) -> bool:
    return isinstance(value, str) and _canonical_uuid(value) is not None


def _parse_time(value) -> datetime | None:
    """The aware datetime of a valid RFC 3339 string in the sane years, else None."""
    return _instant(value) if isinstance(value, str) and len(value) <= 40 else None


# --- pulls ---------------------------------------------------------------------------------------


def usage_pull(*, provider_id: int, max_pages: int = 100) -> IngestResult:
    """Pull usage through the adapter from the stored cursor. Each page is stored (its good
    records; the bad ones are skipped and recorded) and the cursor moves on in one transaction.
    A page that is not a page at all (no list of records) is recorded and skipped when it still
    names a new cursor; without one the pull stops there (retried at the next pull)."""
    from apps.providers.adapters import get_adapter

    provider = Provider.objects.get(pk=provider_id)
    adapter = get_adapter(provider)
    total = IngestResult()
    for _page in range(max_pages):
        try:
            batch = adapter.usage(provider.usage_cursor)
        except RecursionError:  # the adapter's JSON parser on an absurdly nested page
            with transaction.atomic():
                usage_rejection_record(
                    provider=provider,
                    source=UsageRejection.Source.PULL,
                    errors=[],
                    cursor=provider.usage_cursor,
                    problem="the page is nested too deeply to read",
                )
            break
        page = {"records": batch.records, "next_cursor": batch.next_cursor}
        cursor = batch.next_cursor
        cursor_ok = isinstance(cursor, str) and 0 < len(cursor) <= 2000 and storable_text(cursor)
        if not _page_validator.is_valid(page) or not cursor_ok:
            moved = cursor_ok and cursor != provider.usage_cursor
            with transaction.atomic():
                usage_rejection_record(
                    provider=provider,
                    source=UsageRejection.Source.PULL,
                    errors=[],
                    cursor=cursor if cursor_ok else "",
                    problem="the page is not {'records': [...], 'next_cursor': '...'}"
                    + ("; skipped" if moved else "; the cursor stays"),
                )
                if moved:
                    Provider.objects.filter(pk=provider.pk).update(usage_cursor=cursor)
            if not moved:
                break
            provider.usage_cursor = cursor
            continue
        if not batch.records:
            break
        with transaction.atomic():
            result = usage_ingest(
                provider=provider,
                records=batch.records,
                strict=False,
                source=UsageRejection.Source.PULL,
                cursor=provider.usage_cursor,
            )
            Provider.objects.filter(pk=provider.pk).update(usage_cursor=cursor)
        provider.usage_cursor = cursor
        total.accepted += result.accepted
        total.duplicates += result.duplicates
        total.skipped.extend(result.skipped)
    return total
