"""Quota grants and their delivery to providers; usage coming back.

Delivery follows the transactional outbox: a grant change and its GrantOutbox row commit together;
after commit a task claims the row with a conditional UPDATE, calls the adapter outside any
transaction and records the outcome. The sweeper re-enqueues anything due or stale, so a lost
broker message or a crashed worker loses nothing; idempotency keys and grant versions make a
repeated delivery harmless at the provider.
"""

import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from apps.core.exceptions import ApplicationError
from apps.governance.services import audit_record, audit_record_many
from apps.providers.adapters import ProviderError, QuotaState, get_adapter, provider_http_deadline
from apps.providers.models import (
    DeliveryAttempt,
    GrantDrift,
    GrantOutbox,
    PoolPeriod,
    Provider,
    QuotaGrant,
)

logger = logging.getLogger(__name__)
GState = QuotaGrant.State
OState = GrantOutbox.State


# --- Grants -------------------------------------------------------------------------------------


def _grant_snapshot(grant: QuotaGrant) -> dict:
    return {
        "organization": grant.organization_id,
        "pool": grant.pool_id,
        "period": grant.period_id,
        "gpu_hours": str(grant.gpu_hours),
        "valid_from": grant.valid_from.isoformat(),
        "valid_until": grant.valid_until.isoformat(),
        "version": grant.version,
        "state": grant.state,
        "source": grant.source,
        "source_ref": grant.source_ref,
    }


def grant_payload(grant: QuotaGrant) -> dict:
    """The body of ``PUT /quotas/{grant_id}`` (docs/provider-api.md)."""
    return {
        "grant_id": str(grant.public_id),
        "version": grant.version,
        "organization": {"id": grant.organization.slug, "name": grant.organization.name_ja},
        "pool": grant.pool.code,
        "gpu_class": grant.pool.gpu_class,
        "gpu_hours": f"{grant.gpu_hours:.2f}",
        "valid_from": f"{grant.valid_from.isoformat()}T00:00:00Z",
        "valid_until": f"{grant.valid_until.isoformat()}T00:00:00Z",
    }


def _enqueue_delivery(outbox_id: int) -> None:
    """After commit: hand the row to a worker. If the broker is down the row stays pending and
    the sweeper sends it later, so a failure here is logged, never raised to the user."""
    _enqueue_deliveries([outbox_id])


def _enqueue_deliveries(outbox_ids: list[int]) -> int:
    """Publish one task message per row and record when each is due at a worker
    (``enqueued_at``, one UPDATE for all); returns how many were published."""
    from kombu.exceptions import OperationalError

    from apps.providers.tasks import outbox_deliver_task

    published = []
    for outbox_id in outbox_ids:
        try:
            outbox_deliver_task.delay(outbox_id)
        except Exception as exc:  # broker unreachable, serialisation… the outbox row is the source of truth
            logger.warning("could not enqueue outbox row %s; the sweeper retries", outbox_id, exc_info=True)
            if isinstance(exc, OperationalError | ConnectionError):
                break  # the broker is down: do not wait for it once per row
            continue
        published.append(outbox_id)
    if published:
        GrantOutbox.objects.filter(pk__in=published).update(enqueued_at=timezone.now())
    return len(published)


def outbox_mark_enqueued(*, outbox_id: int, due_in: float) -> None:
    """A retry was published with a countdown: the sweeper leaves the row to it until then."""
    GrantOutbox.objects.filter(pk=outbox_id).update(enqueued_at=timezone.now() + timedelta(seconds=due_in))


def _outbox_row(grant: QuotaGrant, operation: str, *, key_suffix: str = "") -> GrantOutbox:
    payload = (
        grant_payload(grant)
        if operation == GrantOutbox.Operation.APPLY
        else {"grant_id": str(grant.public_id)}
    )
    return GrantOutbox(
        grant=grant,
        provider_id=grant.pool.provider_id,
        operation=operation,
        version=grant.version,
        idempotency_key=f"{grant.public_id}:v{grant.version}:{operation}{key_suffix}",
        payload=payload,
        next_attempt_at=timezone.now(),
    )


def _write_outbox(grant: QuotaGrant, operation: str, *, key_suffix: str = "") -> GrantOutbox:
    # Older undelivered versions are superseded: the provider only needs the newest.
    GrantOutbox.objects.filter(grant=grant, state=OState.PENDING, version__lt=grant.version).update(
        state=OState.SUPERSEDED, completed_at=timezone.now()
    )
    row = _outbox_row(grant, operation, key_suffix=key_suffix)
    row.save(force_insert=True)
    transaction.on_commit(lambda: _enqueue_delivery(row.pk))
    return row


def _check_capacity(period: PoolPeriod, gpu_hours: Decimal, *, exclude_grant_id: int | None = None) -> None:
    granted = QuotaGrant.objects.filter(period=period, state__in=QuotaGrant.LIVE_STATES).exclude(
        pk=exclude_grant_id
    ).aggregate(total=Sum("gpu_hours"))["total"] or Decimal("0")
    _refuse_beyond_capacity(period, granted, gpu_hours)


def _refuse_beyond_capacity(period: PoolPeriod, granted: Decimal, gpu_hours: Decimal) -> None:
    if granted + gpu_hours > period.capacity_gpu_hours:
        raise ApplicationError(
            _("Not enough capacity on %(pool)s for this period: %(free)s GPU-hours left, %(asked)s asked.")
            % {
                "pool": f"{period.pool.name} ({period.pool.gpu_class})",
                "free": f"{period.capacity_gpu_hours - granted:,.2f}",
                "asked": f"{gpu_hours:,.2f}",
            },
            code="capacity_exceeded",
        )


def _clean_hours(gpu_hours) -> Decimal:
    try:
        value = Decimal(str(gpu_hours)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError) as exc:
        raise ApplicationError(_("GPU-hours must be a number."), code="invalid") from exc
    if value <= 0:
        raise ApplicationError(_("GPU-hours must be more than zero."), code="invalid")
    return value


@dataclass(frozen=True)
class GrantSpec:
    """One grant to create: GPU-hours for an organization on a pool period (within its dates)."""

    organization: object
    period_id: int
    gpu_hours: object
    valid_from: date | None = None
    valid_until: date | None = None


@transaction.atomic
def grant_create(
    *,
    organization,
    period_id: int,
    gpu_hours,
    actor,
    valid_from: date | None = None,
    valid_until: date | None = None,
    source: str = QuotaGrant.Source.MANUAL,
    source_ref: str = "",
) -> QuotaGrant:
    """Grant GPU-hours on a pool for (part of) a period; refused beyond the period's capacity.

    The period row is locked, so concurrent grants on one pool and period are checked one after
    the other and can never add up to more than its capacity."""
    spec = GrantSpec(organization, period_id, gpu_hours, valid_from, valid_until)
    [grant] = grants_create(specs=[spec], actor=actor, source=source, source_ref=source_ref)
    return grant


@transaction.atomic
def grants_create(*, specs: list[GrantSpec], actor, source: str, source_ref: str = "") -> list[QuotaGrant]:
    """Create many grants at once, all or nothing (a round's publication, a program award).

    Every period involved is locked (in id order, so two publications cannot deadlock), the
    capacity of each is checked against its live grants plus all the new ones on it, and the
    grants, their outbox rows and their audit events are written with one multi-row INSERT each.
    A refusal is the ApplicationError ``grant_create`` would raise for the first failing spec, with
    ``extra["index"]`` naming that spec."""
    if not specs:
        return []
    hours = []
    for index, spec in enumerate(specs):
        try:
            hours.append(_clean_hours(spec.gpu_hours))
        except ApplicationError as exc:
            exc.extra["index"] = index
            raise
    period_ids = sorted({spec.period_id for spec in specs})
    periods = {
        p.pk: p
        for p in PoolPeriod.objects.select_for_update(of=("self",))
        .select_related("pool__provider")
        .filter(pk__in=period_ids)
        .order_by("pk")
    }
    granted = dict(
        QuotaGrant.objects.filter(period_id__in=period_ids, state__in=QuotaGrant.LIVE_STATES)
        .values("period_id")
        .annotate(total=Sum("gpu_hours"))
        .values_list("period_id", "total")
    )
    grants = []
    for index, (spec, amount) in enumerate(zip(specs, hours, strict=True)):
        try:
            period = periods.get(spec.period_id)
            if period is None:
                raise ApplicationError(_("This pool period does not exist."), code="not_found")
            grant = _new_grant(spec, period, amount, granted.get(period.pk) or Decimal("0"), source)
        except ApplicationError as exc:
            exc.extra["index"] = index
            raise
        granted[period.pk] = (granted.get(period.pk) or Decimal("0")) + amount
        grant.source_ref = source_ref
        grant.created_by = actor if getattr(actor, "is_authenticated", False) else None
        grants.append(grant)
    grants = QuotaGrant.objects.bulk_create(grants, batch_size=1000)
    rows = GrantOutbox.objects.bulk_create(
        [_outbox_row(grant, GrantOutbox.Operation.APPLY) for grant in grants], batch_size=1000
    )
    row_ids = [row.pk for row in rows]
    transaction.on_commit(lambda: _enqueue_deliveries(row_ids))
    audit_record_many(
        actor=actor, action="grant.created", entries=[(g, None, _grant_snapshot(g)) for g in grants]
    )
    return grants


def _new_grant(
    spec: GrantSpec, period: PoolPeriod, hours: Decimal, granted: Decimal, source: str
) -> QuotaGrant:
    """The unsaved grant of ``spec`` on its locked ``period``, where ``granted`` GPU-hours are already
    live (or about to be); refused with the reason when it may not be created."""
    valid_from = spec.valid_from or period.starts_on
    valid_until = spec.valid_until or period.ends_on
    if not (period.starts_on <= valid_from < valid_until <= period.ends_on):
        raise ApplicationError(
            _("A grant must lie within its pool period (%(start)s to %(end)s).")
            % {"start": period.starts_on, "end": period.ends_on},
            code="invalid_dates",
        )
    if not (period.pool.is_active and period.pool.provider.is_active):
        raise ApplicationError(_("This pool is not active."), code="pool_inactive")
    membership = getattr(spec.organization, "membership", None)
    # Program awards may go to organizations that are not members (academic programs are open to
    # them); everything else needs an active membership. A suspended member gets nothing.
    no_membership_ok = source == QuotaGrant.Source.AWARD and membership is None
    if not no_membership_ok and (membership is None or membership.status != membership.Status.ACTIVE):
        raise ApplicationError(
            _("Only organizations with an active membership can be granted quota."),
            code="membership_inactive",
        )
    _refuse_beyond_capacity(period, granted, hours)
    return QuotaGrant(
        organization=spec.organization,
        period=period,
        pool=period.pool,  # with its provider, for the payload
        gpu_hours=hours,
        valid_from=valid_from,
        valid_until=valid_until,
        source=source,
    )


def _lock_grant(grant_id: int) -> QuotaGrant:
    try:
        grant = QuotaGrant.objects.select_related("organization", "pool__provider").get(pk=grant_id)
    except QuotaGrant.DoesNotExist as exc:
        raise ApplicationError(_("This grant does not exist."), code="not_found") from exc
    # Lock order everywhere: the period first, then the grant (as grant_create does).
    PoolPeriod.objects.select_for_update().get(pk=grant.period_id)
    return (
        QuotaGrant.objects.select_for_update()
        .select_related("organization", "pool__provider")
        .get(pk=grant_id)
    )


@transaction.atomic
def grant_change(*, grant_id: int, actor, gpu_hours=None, valid_until: date | None = None) -> QuotaGrant:
    grant = _lock_grant(grant_id)
    if grant.state in (GState.REVOKING, GState.REVOKED):
        raise ApplicationError(_("A revoked grant cannot be changed."), code="bad_transition")
    before = _grant_snapshot(grant)
    if gpu_hours is not None:
        hours = _clean_hours(gpu_hours)
        _check_capacity(grant.period, hours, exclude_grant_id=grant.pk)
        grant.gpu_hours = hours
    if valid_until is not None:
        if not (grant.valid_from < valid_until <= grant.period.ends_on):
            raise ApplicationError(_("The new end date is outside the pool period."), code="invalid_dates")
        grant.valid_until = valid_until
    if _grant_snapshot(grant) == before:
        return grant
    grant.version = F("version") + 1
    grant.state = GState.PENDING
    grant.last_error = ""
    grant.save()
    grant.refresh_from_db(fields=["version"])
    _write_outbox(grant, GrantOutbox.Operation.APPLY)
    audit_record(
        actor=actor, action="grant.changed", target=grant, before=before, after=_grant_snapshot(grant)
    )
    return grant


@transaction.atomic
def grant_revoke(*, grant_id: int, actor, reason: str = "") -> QuotaGrant:
    grant = _lock_grant(grant_id)
    if grant.state in (GState.REVOKING, GState.REVOKED):
        raise ApplicationError(_("This grant is already revoked."), code="bad_transition")
    before = _grant_snapshot(grant)
    grant.version = F("version") + 1
    grant.state = GState.REVOKING
    grant.save()
    grant.refresh_from_db(fields=["version"])
    _write_outbox(grant, GrantOutbox.Operation.REVOKE)
    audit_record(
        actor=actor,
        action="grant.revoked",
        target=grant,
        before=before,
        after={**_grant_snapshot(grant), "reason": reason},
    )
    return grant


@transaction.atomic
def grant_resend(*, grant_id: int, actor, above_version: int = 0) -> GrantOutbox:
    """Make the provider hold the portal's state of the grant again (after a permanent failure was
    fixed, or drift): the grant gets a NEW version, higher than its own and than ``above_version``
    (the version the provider reported), so that the provider applies it whatever it holds now —
    other GPU-hours, a revocation of its own, a version the portal never sent. Re-sending the same
    version would change nothing: the protocol answers an already-applied version as it stands."""
    grant = _lock_grant(grant_id)
    revoke = grant.state in (GState.REVOKING, GState.REVOKED) or (
        grant.state == GState.FAILED
        and GrantOutbox.objects.filter(grant=grant)
        .order_by("-version", "-pk")
        .values_list("operation", flat=True)
        .first()
        == GrantOutbox.Operation.REVOKE
    )
    operation = GrantOutbox.Operation.REVOKE if revoke else GrantOutbox.Operation.APPLY
    before = _grant_snapshot(grant)
    GrantOutbox.objects.filter(
        grant=grant, state__in=[OState.PENDING, OState.IN_FLIGHT, OState.FAILED]
    ).update(state=OState.SUPERSEDED, completed_at=timezone.now(), claimed_until=None, claim_token=None)
    grant.version = max(grant.version, above_version) + 1
    grant.state = GState.REVOKING if revoke else GState.PENDING
    grant.last_error = ""
    grant.save(update_fields=["version", "state", "last_error", "updated_at"])
    row = _write_outbox(grant, operation)
    audit_record(
        actor=actor,
        action="grant.resent",
        target=grant,
        before=before,
        after={**_grant_snapshot(grant), "outbox": row.pk},
    )
    return row


# --- Delivery -----------------------------------------------------------------------------------


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter: uniform in [base/2, base * 2^(attempts-1)], capped."""
    ceiling = min(settings.OUTBOX_BACKOFF_MAX, settings.OUTBOX_BACKOFF_BASE * (2 ** max(attempts - 1, 0)))
    return random.uniform(min(settings.OUTBOX_BACKOFF_BASE / 2, ceiling), ceiling)


@dataclass
class DeliveryOutcome:
    result: str  # "done", "retry", "failed", "skipped"
    retry_in: float = 0.0
    error: str = ""


def claim_seconds() -> float:
    """How long a claim lasts: OUTBOX_CLAIM_SECONDS, and always longer than a whole provider
    request may take (its deadline) plus a margin for the database work around it, so that a
    claim never expires while its holder may still be talking to the provider."""
    return max(settings.OUTBOX_CLAIM_SECONDS, provider_http_deadline() + CLAIM_MARGIN_SECONDS)


CLAIM_MARGIN_SECONDS = 5.0


def _claim(outbox_id: int) -> uuid.UUID | None:
    """Claim the row if it is due or its claim expired; return the claim's token (None: not claimed).
    Each claim gets a new token, so a worker whose claim was taken over can tell."""
    now = timezone.now()
    token = uuid.uuid4()
    claimed = (
        GrantOutbox.objects.filter(pk=outbox_id)
        .filter(
            Q(state=OState.PENDING, next_attempt_at__lte=now)
            | Q(state=OState.IN_FLIGHT, claimed_until__lt=now)
        )
        .update(
            state=OState.IN_FLIGHT,
            claimed_until=now + timedelta(seconds=claim_seconds()),
            claim_token=token,
            attempts=F("attempts") + 1,
        )
    )
    return token if claimed else None


def outbox_deliver(*, outbox_id: int) -> DeliveryOutcome:
    """Send one outbox row to its provider, at most one worker at a time.

    The claim lasts longer than the request's deadline, and only the holder of the current claim
    token records the outcome; the answer must say that the provider now holds what was sent."""
    token = _claim(outbox_id)
    if token is None:
        return DeliveryOutcome("skipped")
    row = GrantOutbox.objects.select_related("provider").get(pk=outbox_id)
    QuotaGrant.objects.filter(pk=row.grant_id, version=row.version, state=GState.PENDING).update(
        state=GState.SENT
    )
    started = time.monotonic()
    error: ProviderError | None = None
    try:
        adapter = get_adapter(row.provider)
        if row.operation == GrantOutbox.Operation.APPLY:
            answer = adapter.apply(row.payload, idempotency_key=row.idempotency_key)
        else:
            answer = adapter.revoke(row.payload["grant_id"], row.version, idempotency_key=row.idempotency_key)
        _check_answer(row, answer)
    except ProviderError as exc:
        error = exc
    duration_ms = int((time.monotonic() - started) * 1000)
    DeliveryAttempt.objects.create(
        provider_id=row.provider_id,
        outbox_id=row.pk,
        ok=error is None or error.stale,
        error=(error.message if error else "")[:500],
        duration_ms=duration_ms,
    )
    return _record_outcome(row.pk, token, error)


def _check_answer(row: GrantOutbox, answer: QuotaState) -> None:
    """A 200 answer counts only if it says the provider now holds what was sent; anything else is a
    permanent failure (a retry with the same Idempotency-Key would be answered the same)."""
    asked = row.payload
    problems = []
    if answer.grant_id != str(asked["grant_id"]):
        problems.append(f"grant {answer.grant_id!r}")
    if row.operation == GrantOutbox.Operation.APPLY:
        if answer.version != row.version:
            problems.append(f"version {answer.version} instead of {row.version}")
        if answer.status != "active":
            problems.append(f"status {answer.status!r} instead of 'active'")
        if _hours(answer.gpu_hours) != _hours(asked["gpu_hours"]):
            problems.append(f"{answer.gpu_hours or '?'} GPU-hours instead of {asked['gpu_hours']}")
        for name in ("valid_from", "valid_until", "pool"):
            theirs = answer.extra.get(name)
            if name in answer.extra and not _same_value(name, theirs, asked[name]):
                problems.append(f"{name} {theirs!r} instead of {asked[name]!r}")
    else:
        if answer.status != "revoked":
            problems.append(f"status {answer.status!r} instead of 'revoked'")
        if answer.version < row.version:
            problems.append(f"version {answer.version} instead of {row.version}")
    if problems:
        raise ProviderError(
            "the provider answered 200 but does not hold what was sent: " + "; ".join(problems),
            permanent=True,
        )


def _same_value(name: str, theirs, ours) -> bool:
    if name in ("valid_from", "valid_until"):
        a, b = parse_datetime(str(theirs or "")), parse_datetime(str(ours))
        return a is not None and b is not None and a == b
    return theirs == ours


def _stale_beyond_us(error: ProviderError, grant: QuotaGrant) -> int | None:
    """The provider's version when a 409 says it holds a version newer than any the portal made."""
    current = error.detail.get("current_version")
    if isinstance(current, int) and not isinstance(current, bool) and current > grant.version:
        return current
    return None


@transaction.atomic
def _record_outcome(outbox_id: int, token: uuid.UUID, error: ProviderError | None) -> DeliveryOutcome:
    row = GrantOutbox.objects.select_for_update().get(pk=outbox_id)
    if row.state != OState.IN_FLIGHT or row.claim_token != token:
        return DeliveryOutcome("skipped")  # superseded, or the claim expired and another worker holds it
    now = timezone.now()
    if error is not None and not error.permanent and not error.stale:
        delay = backoff_seconds(row.attempts)
        row.state = OState.PENDING
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.claimed_until = None
        row.claim_token = None
        row.last_error = error.message[:2000]
        row.save(update_fields=["state", "next_attempt_at", "claimed_until", "claim_token", "last_error"])
        QuotaGrant.objects.filter(pk=row.grant_id, version=row.version).update(
            last_error=error.message[:2000]
        )
        return DeliveryOutcome("retry", retry_in=delay, error=error.message)

    # Related rows fetched now: str(grant) in the audit record must not query while the chain head is locked.
    grant = (
        QuotaGrant.objects.select_for_update(of=("self",))
        .select_related("organization", "pool__provider")
        .get(pk=row.grant_id)
    )
    current = grant.version == row.version
    row.completed_at = now
    row.claimed_until = None
    row.claim_token = None
    if error is not None and error.stale and current and _stale_beyond_us(error, grant):
        # Not superseded by a newer portal version: the provider holds one the portal never sent.
        error = ProviderError(
            _(
                "The provider holds version %(theirs)s of this grant, newer than the portal's %(ours)s: "
                "resend the grant to replace it."
            )
            % {"theirs": _stale_beyond_us(error, grant), "ours": grant.version},
            permanent=True,
            status=409,
        )
    if error is None or error.stale:
        row.state = OState.DONE if error is None else OState.SUPERSEDED
        row.last_error = ""
        row.save(update_fields=["state", "completed_at", "claimed_until", "claim_token", "last_error"])
        if current and error is None:
            before = grant.state
            if row.operation == GrantOutbox.Operation.APPLY:
                grant.state, grant.applied_version = GState.ACTIVE, row.version
            else:
                grant.state = GState.REVOKED
            grant.last_error = ""
            grant.save(update_fields=["state", "applied_version", "last_error", "updated_at"])
            audit_record(
                actor=None,
                action=f"grant.{'applied' if grant.state == GState.ACTIVE else 'revoke_applied'}",
                target=grant,
                before={"state": before},
                after={"state": grant.state, "version": row.version},
            )
        return DeliveryOutcome("done")

    row.state = OState.FAILED
    row.last_error = error.message[:2000]
    row.save(update_fields=["state", "completed_at", "claimed_until", "claim_token", "last_error"])
    if current:
        before = grant.state
        grant.state = GState.FAILED
        grant.last_error = error.message[:2000]
        grant.save(update_fields=["state", "last_error", "updated_at"])
        audit_record(
            actor=None,
            action="grant.failed",
            target=grant,
            before={"state": before},
            after={"state": GState.FAILED, "error": error.message[:500]},
        )
    return DeliveryOutcome("failed", error=error.message)


def outbox_due_ids(*, limit: int = 1000) -> list[int]:
    """Rows to hand to a worker: due (pending) and not enqueued recently (a message for them may
    still be on its way: OUTBOX_REENQUEUE_SECONDS), or with an expired claim (its worker died: the
    claim outlasts any request, so nobody else will send it)."""
    now = timezone.now()
    recently = now - timedelta(seconds=settings.OUTBOX_REENQUEUE_SECONDS)
    return list(
        GrantOutbox.objects.filter(
            Q(state=OState.PENDING, next_attempt_at__lte=now)
            & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=recently))
            | Q(state=OState.IN_FLIGHT, claimed_until__lt=now)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def outbox_sweep(*, limit: int = 1000) -> int:
    """Re-enqueue every row that is due or whose claim expired (a crashed worker), unless a message
    for it was published recently; returns how many were enqueued."""
    return _enqueue_deliveries(outbox_due_ids(limit=limit))


# --- Reconciliation -----------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    checked: int = 0
    missing: int = 0
    extra: int = 0
    different: int = 0
    resolved: int = 0
    accepted: int = 0  # differences staff accepted that have not changed since
    error: str = ""


def provider_reconcile(*, provider_id: int) -> ReconcileReport:
    """Compare the provider's quotas with the settled grants of its pools; record drift."""
    provider = Provider.objects.get(pk=provider_id)
    report = ReconcileReport()
    try:
        theirs = {q.grant_id: q for q in get_adapter(provider).list_quotas()}
    except ProviderError as exc:
        report.error = exc.message
        return report
    unsettled = set(
        GrantOutbox.objects.filter(
            provider=provider, state__in=[OState.PENDING, OState.IN_FLIGHT]
        ).values_list("grant_id", flat=True)
    )
    found: set[tuple[str, str]] = set()
    differences: list[tuple] = []  # (grant or None, grant id, kind, ours, their quota)
    grants = QuotaGrant.objects.filter(pool__provider=provider).exclude(pk__in=unsettled)
    known_ids = set()
    for grant in grants.only("pk", "public_id", "version", "state", "gpu_hours").iterator(chunk_size=2000):
        gid = str(grant.public_id)
        known_ids.add(gid)
        report.checked += 1
        q = theirs.get(gid)
        ours = {"version": grant.version, "state": grant.state, "gpu_hours": f"{grant.gpu_hours:.2f}"}
        if grant.state == GState.ACTIVE:
            if q is None or q.status != "active":
                differences.append((grant, gid, GrantDrift.Kind.MISSING, ours, q))
            elif q.version != grant.version or _hours(q.gpu_hours) != grant.gpu_hours:
                differences.append((grant, gid, GrantDrift.Kind.DIFFERENT, ours, q))
        elif grant.state == GState.REVOKED and q is not None and q.status == "active":
            differences.append((grant, gid, GrantDrift.Kind.DIFFERENT, ours, q))
    all_ids = set(QuotaGrant.objects.filter(pool__provider=provider).values_list("public_id", flat=True))
    all_ids = {str(x) for x in all_ids}
    for gid, q in theirs.items():
        if gid not in all_ids and q.status == "active":
            differences.append((None, gid, GrantDrift.Kind.EXTRA, None, q))
    accepted = _accepted_differences(provider, {gid for _g, gid, *_rest in differences})
    for grant, gid, kind, ours, q in differences:
        if accepted.get((gid, kind)) == (ours, _theirs(q)):
            report.accepted += 1  # accepted by staff, and nothing changed since: stays accepted
            continue
        found.add((gid, kind))
        _drift(provider, grant, gid, kind, ours, q)
    for kind in GrantDrift.Kind.values:
        report_count = sum(1 for _gid, k in found if k == kind)
        setattr(report, kind, report_count)
    # Open drifts that no longer differ resolve themselves.
    for drift in GrantDrift.objects.filter(provider=provider, resolved_at__isnull=True):
        if (drift.grant_public_id, drift.kind) not in found and (
            drift.grant_id is None or drift.grant_id not in unsettled
        ):
            drift.resolved_at = timezone.now()
            drift.resolution = GrantDrift.Resolution.VANISHED
            drift.save(update_fields=["resolved_at", "resolution"])
            report.resolved += 1
    return report


def _hours(text: str) -> Decimal | None:
    try:
        return Decimal(text).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None


def _theirs(q) -> dict | None:
    return None if q is None else {"version": q.version, "status": q.status, "gpu_hours": q.gpu_hours}


def _accepted_differences(provider, gids: set[str]) -> dict[tuple[str, str], tuple]:
    """For each (grant id, kind) whose latest resolved drift was accepted by staff: the (ours,
    theirs) that was accepted. The same difference again stays accepted; a different one reopens."""
    latest: dict[tuple[str, str], GrantDrift] = {}
    gid_list = sorted(gids)
    for i in range(0, len(gid_list), 2000):
        for drift in (
            GrantDrift.objects.filter(
                provider=provider, grant_public_id__in=gid_list[i : i + 2000], resolved_at__isnull=False
            )
            .only("grant_public_id", "kind", "resolution", "ours", "theirs", "resolved_at")
            .order_by("resolved_at", "pk")
        ):
            latest[(drift.grant_public_id, drift.kind)] = drift
    return {
        key: (drift.ours, drift.theirs)
        for key, drift in latest.items()
        if drift.resolution == GrantDrift.Resolution.ACCEPTED
    }


def _drift(provider, grant, gid, kind, ours, q) -> None:
    theirs = _theirs(q)
    drift, created = GrantDrift.objects.get_or_create(
        provider=provider,
        grant_public_id=gid,
        kind=kind,
        resolved_at=None,
        defaults={"grant": grant, "ours": ours, "theirs": theirs},
    )
    if not created and (drift.ours != ours or drift.theirs != theirs):
        drift.ours, drift.theirs = ours, theirs
        drift.save(update_fields=["ours", "theirs"])


def _lock_open_drift(drift_id: int) -> GrantDrift:
    try:
        drift = GrantDrift.objects.select_for_update().get(pk=drift_id)
    except GrantDrift.DoesNotExist as exc:
        raise ApplicationError(_("This difference does not exist."), code="not_found") from exc
    if drift.resolved_at:
        raise ApplicationError(_("This difference is already resolved."), code="bad_transition")
    return drift


@transaction.atomic
def drift_resend(*, drift_id: int, actor, resend_grant: bool = True) -> GrantDrift:
    """Repair a difference: send the grant again as a new version above the one the provider
    reported, so that the provider ends up holding the portal's state (``grant_resend``).
    ``resend_grant=False`` only records the resolution (the grant was just resent for another
    difference)."""
    drift = _lock_open_drift(drift_id)
    if drift.grant_id is None:
        raise ApplicationError(
            _("The portal has no grant to send for this quota; accept it or ask the provider to remove it."),
            code="nothing_to_send",
        )
    their_version = (drift.theirs or {}).get("version")
    above = their_version if isinstance(their_version, int) and not isinstance(their_version, bool) else 0
    if resend_grant:
        grant_resend(grant_id=drift.grant_id, actor=actor, above_version=above)
    drift.resolved_at, drift.resolution, drift.resolved_by = (
        timezone.now(),
        GrantDrift.Resolution.RESENT,
        actor,
    )
    drift.save(update_fields=["resolved_at", "resolution", "resolved_by"])
    audit_record(
        actor=actor,
        action="drift.resent",
        target=drift,
        after={"kind": drift.kind, "grant": drift.grant_public_id, "above_version": above},
    )
    return drift


@transaction.atomic
def drift_accept(*, drift_id: int, actor, note: str = "") -> GrantDrift:
    """Record the difference as intended. It stays accepted while it does not change: the
    reconciler reopens it only for another difference (docs/provider-api.md, Reconciliation)."""
    drift = _lock_open_drift(drift_id)
    drift.resolved_at, drift.resolution, drift.resolved_by = (
        timezone.now(),
        GrantDrift.Resolution.ACCEPTED,
        actor,
    )
    drift.save(update_fields=["resolved_at", "resolution", "resolved_by"])
    audit_record(
        actor=actor,
        action="drift.accepted",
        target=drift,
        after={"kind": drift.kind, "grant": drift.grant_public_id, "note": note},
    )
    return drift


DRIFT_BULK_MAX = 500


@dataclass
class BulkResult:
    done: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (drift id, why)


def drifts_resolve(*, drift_ids: list[int], action: str, actor, note: str = "") -> BulkResult:
    """Resend or accept many differences at once (the staff drift page's bulk action).

    Each difference is resolved in its own transaction with its own audit events, as one at a
    time would be; those that cannot be (resolved meanwhile, nothing to send) are skipped with the
    reason. A grant with several differences is resent once."""
    if action not in ("resend", "accept"):
        raise ApplicationError(_("Choose resend or accept."), code="invalid")
    if action == "accept" and not note.strip():
        raise ApplicationError(_("Please give a note; it is kept in the audit log."), code="invalid")
    ids = sorted(set(drift_ids))
    if not ids:
        raise ApplicationError(_("Select at least one difference."), code="invalid")
    if len(ids) > DRIFT_BULK_MAX:
        raise ApplicationError(
            _("At most %(max)s differences at once.") % {"max": DRIFT_BULK_MAX}, code="invalid"
        )
    result = BulkResult()
    resent_grants: set[int] = set()
    for drift_id in ids:
        try:
            if action == "accept":
                drift_accept(drift_id=drift_id, actor=actor, note=note)
            else:
                grant_id = GrantDrift.objects.filter(pk=drift_id).values_list("grant_id", flat=True).first()
                drift_resend(drift_id=drift_id, actor=actor, resend_grant=grant_id not in resent_grants)
                resent_grants.add(grant_id)
        except ApplicationError as exc:
            result.skipped.append((drift_id, exc.message))
        else:
            result.done.append(drift_id)
    return result


# --- Usage --------------------------------------------------------------------------------------
# Moved to apps/providers/usage.py; the old names stay importable from here.

from apps.providers.usage import (  # noqa: E402
    INSERT_CHUNK,
    MAX_HOURS_PER_RECORD,
    TOKYO,
    IngestResult,
    UsageRejected,
    _add_to_months,
    _insert_usage,
    _looks_like_uuid,
    _parse_time,
    usage_ingest,
    usage_pull,
)

__all__ = [
    "INSERT_CHUNK",
    "MAX_HOURS_PER_RECORD",
    "TOKYO",
    "IngestResult",
    "UsageRejected",
    "_add_to_months",
    "_insert_usage",
    "_looks_like_uuid",
    "_parse_time",
    "usage_ingest",
    "usage_pull",
]
