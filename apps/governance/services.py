import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.governance.models import GENESIS_HASH, AuditChainHead, AuditEvent, AuditVerification

logger = logging.getLogger(__name__)


def _jsonable(data):
    if data is None:
        return None
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _event(*, actor, action: str, target, before, after, occurred_at) -> AuditEvent:
    actor_obj = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent(
        occurred_at=occurred_at,
        actor=actor_obj,
        actor_label=(actor_obj.email if actor_obj else str(actor or "system"))[:255],
        action=action,
        target_type=target._meta.label_lower,
        target_id=str(target.pk),
        target_repr=str(target)[:255],
        before=_jsonable(before),
        after=_jsonable(after),
    )


def audit_record(
    *,
    actor,
    action: str,
    target,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append one AuditEvent to the chain, inside the caller's transaction.

    ``target`` is a model instance. The chain head row is locked so that concurrent writers
    append one after another; the lock is held until the caller's transaction commits.
    """
    [event] = audit_record_many(actor=actor, action=action, entries=[(target, before, after)])
    return event


def audit_record_many(*, actor, action: str, entries: list[tuple]) -> list[AuditEvent]:
    """Append one AuditEvent per ``(target, before, after)`` entry, in that order, with one lock of
    the chain head and one multi-row INSERT (a round publishing thousands of grants). The rows get
    increasing ids in the order given, so the chain reads as if ``audit_record`` had been called for
    each entry."""
    if not entries:
        return []
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(
            pk=1, defaults={"last_hash": GENESIS_HASH}
        )
        now = timezone.now()
        events = []
        prev_hash = head.last_hash
        for target, before, after in entries:
            event = _event(
                actor=actor, action=action, target=target, before=before, after=after, occurred_at=now
            )
            event.prev_hash = prev_hash
            event.hash = prev_hash = event.compute_hash()
            events.append(event)
        if len(events) == 1:
            events[0].save(force_insert=True)
        else:
            AuditEvent.objects.bulk_create(events, batch_size=1000)
        length = head.length + len(events)
        AuditChainHead.objects.filter(pk=head.pk).update(
            last_hash=prev_hash, last_event_id=events[-1].pk, length=length
        )
        every = getattr(settings, "AUDIT_CHECKPOINT_EVERY_EVENTS", 1000)
        if every and head.length // every != length // every:
            transaction.on_commit(_enqueue_checkpoint)
    return events


def _enqueue_checkpoint() -> None:
    """After a multiple of AUDIT_CHECKPOINT_EVERY_EVENTS events: checkpoint the head with every
    provider now rather than at the next beat. A lost message only delays it to the beat task."""
    from apps.governance.tasks import audit_checkpoint_send_task

    try:
        audit_checkpoint_send_task.delay()
    except Exception:
        logger.warning("could not enqueue an audit checkpoint", exc_info=True)


@dataclass
class ChainReport:
    """``ok`` means the chain holds locally and agrees with every checkpoint that was read.
    ``checkpoint_problems`` name the provider and sequence of each checkpoint that disagrees (or
    whose signature is not the portal's); ``unreachable`` names the providers whose checkpoints could
    not be read: then the comparison is incomplete (``complete`` is False), never silently passed."""

    ok: bool
    checked: int
    broken_event_id: int | None = None
    reason: str = ""
    checkpoint_problems: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    providers_checked: list[str] = field(default_factory=list)
    checkpoints_checked: int = 0

    @property
    def complete(self) -> bool:
        return not self.unreachable


def audit_chain_verify(*, chunk_size: int = 2000, check_providers: bool = False) -> ChainReport:
    """Walk the chain by id; report the first row whose hash or link does not hold, a chain shorter
    or longer than its head records (an emptied or rewound chain), and with ``check_providers``
    every checkpoint held by a provider that the chain does not match."""
    from apps.governance import checkpoints

    held = checkpoints.audit_checkpoints_fetch() if check_providers else None
    wanted = held.by_sequence if held else {}
    # The head before the walk: the chain must reach it. Events appended during the walk are
    # verified too; the head read after the walk must know every event walked.
    head_before = AuditChainHead.objects.filter(pk=1).first()
    expected_prev = GENESIS_HASH
    checked = 0
    hashes_at_wanted: dict[int, str] = {}
    broken = None
    walk_complete = False
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if event.prev_hash != expected_prev:
            broken = (event.pk, "previous-hash link broken")
            break
        if event.compute_hash() != event.hash:
            broken = (event.pk, "content does not match its hash")
            break
        expected_prev = event.hash
        checked += 1
        if checked in wanted:
            hashes_at_wanted[checked] = event.hash
        if head_before and checked == head_before.length and event.hash != head_before.last_hash:
            broken = (event.pk, "the chain head records another hash for this position")
            break
    else:
        walk_complete = True
    if broken is None and head_before and checked < head_before.length:
        broken = (
            head_before.last_event_id,
            f"the chain has {checked} events but its head records {head_before.length}: events were removed",
        )
    if broken is None:
        head_after = AuditChainHead.objects.filter(pk=1).first()
        if checked and (head_after is None or checked > head_after.length):
            broken = (
                None,
                f"the chain has {checked} events but its head records "
                f"{head_after.length if head_after else 0}: events were added behind the head's back",
            )
    report = ChainReport(broken is None, checked)
    if broken is not None:
        report.broken_event_id, report.reason = broken
    if held is not None:
        checkpoints.compare(
            report=report,
            held=held,
            hashes=hashes_at_wanted,
            chain_length=checked,
            walk_complete=walk_complete,
        )
    return report


# --- stored verifications ----------------------------------------------------------------------------
VERIFICATION_RUNNING_FOR = 30 * 60  # seconds after which a "running" verification counts as lost


def audit_verification_request(*, actor) -> AuditVerification:
    """Staff's "verify now": record a run and leave the walk and the provider calls to a worker.
    A verification already running (and not lost) is returned instead of starting a second one."""
    from apps.governance.tasks import audit_verification_run_task

    with transaction.atomic():
        since = timezone.now() - timedelta(seconds=VERIFICATION_RUNNING_FOR)
        running = AuditVerification.objects.filter(
            outcome=AuditVerification.Outcome.RUNNING, started_at__gte=since
        ).first()
        if running is not None:
            return running
        verification = AuditVerification.objects.create(started_at=timezone.now(), requested_by=actor)
        transaction.on_commit(partial(audit_verification_run_task.delay, verification.pk))
    return verification


def audit_verification_run(*, verification_id: int | None = None) -> AuditVerification:
    """Walk the chain, compare it with every provider's checkpoints and store the verdict (the
    beat task passes no id and gets a new row)."""
    if verification_id is None:
        verification = AuditVerification.objects.create(started_at=timezone.now())
    else:
        verification = AuditVerification.objects.get(pk=verification_id)
        if verification.outcome != AuditVerification.Outcome.RUNNING:
            return verification  # a retried task: the verdict is already stored
    report = audit_chain_verify(check_providers=True)
    if not report.ok:
        outcome = AuditVerification.Outcome.BROKEN
    elif not report.complete:
        outcome = AuditVerification.Outcome.INCOMPLETE
    else:
        outcome = AuditVerification.Outcome.INTACT
    reason = report.reason
    if report.broken_event_id:
        reason = f"event #{report.broken_event_id}: {reason}"
    verification.outcome = outcome
    verification.finished_at = timezone.now()
    verification.events_checked = report.checked
    verification.checkpoints_checked = report.checkpoints_checked
    verification.reason = reason
    verification.problems = list(report.checkpoint_problems)
    verification.unreachable = list(report.unreachable)
    verification.providers_checked = list(report.providers_checked)
    verification.save()
    if outcome == AuditVerification.Outcome.BROKEN:
        logger.error(
            "audit chain verification %s failed: %s %s", verification.pk, reason, report.checkpoint_problems
        )
    return verification
