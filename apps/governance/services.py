import json
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from apps.governance.models import GENESIS_HASH, AuditChainHead, AuditEvent


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
        AuditChainHead.objects.filter(pk=head.pk).update(last_hash=prev_hash, last_event_id=events[-1].pk)
    return events


@dataclass
class ChainReport:
    ok: bool
    checked: int
    broken_event_id: int | None = None
    reason: str = ""


def audit_chain_verify(*, chunk_size: int = 2000) -> ChainReport:
    """Walk the chain by id; report the first row whose hash or link does not hold."""
    expected_prev = GENESIS_HASH
    checked = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=chunk_size):
        if event.prev_hash != expected_prev:
            return ChainReport(False, checked, event.pk, "previous-hash link broken")
        if event.compute_hash() != event.hash:
            return ChainReport(False, checked, event.pk, "content does not match its hash")
        expected_prev = event.hash
        checked += 1
    head = AuditChainHead.objects.filter(pk=1).first()
    if head and checked and head.last_hash != expected_prev:
        return ChainReport(False, checked, head.last_event_id, "chain is missing its last rows")
    return ChainReport(True, checked)
