"""Checkpoints of the audit chain kept by every provider (docs/decisions.md, "Audit log").

The hash chain shows that a row was edited; it cannot show that the whole log was emptied and
written again, or that its tail was cut together with the head. So the portal regularly shows each
provider a checkpoint of the chain's head — "event ``sequence`` has ``hash``, as of ``issued_at``",
signed with that provider's shared secret — and the provider keeps the first one it is shown for
each sequence. Verification reads them back from every provider: rewriting history then means
forging every provider's copy too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC

from django.conf import settings
from django.utils import timezone

from apps.governance.models import AuditChainHead, AuditEvent

logger = logging.getLogger(__name__)

MISMATCH_REASON = "the chain does not match the checkpoints held by the providers"


def _providers():
    from apps.providers.models import Provider

    return Provider.objects.filter(is_active=True).exclude(api_base_url="").order_by("slug")


def _label(provider) -> str:
    return f"{provider.name_en} ({provider.slug})"


@dataclass
class CheckpointSendResult:
    sequence: int | None
    hash: str = ""
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def audit_checkpoint_send() -> CheckpointSendResult:
    """Show every active provider with an API a signed checkpoint of the chain's current head.

    Runs outside any transaction (HTTP). Nothing is sent for an empty chain, or when the head does
    not name a stored event with its hash (then verification has something to say first). A
    provider that fails is logged and tried again at the next run; the others are not held up."""
    from apps.providers import signing
    from apps.providers.adapters import AuditCheckpoint, ProviderError, get_adapter

    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None or not head.length:
        return CheckpointSendResult(None)
    if not AuditEvent.objects.filter(pk=head.last_event_id, hash=head.last_hash).exists():
        logger.error("audit chain head names no stored event with its hash: no checkpoint sent")
        return CheckpointSendResult(None)
    issued_at = timezone.now().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    result = CheckpointSendResult(head.length, head.last_hash)
    for provider in _providers():
        secret = provider.api_secret
        if not secret:
            result.failed[provider.slug] = "no shared secret is configured"
            continue
        checkpoint = AuditCheckpoint(
            sequence=head.length,
            hash=head.last_hash,
            issued_at=issued_at,
            signature=signing.sign_checkpoint(
                secret=secret,
                key_id=provider.api_key_id,
                sequence=head.length,
                hash=head.last_hash,
                issued_at=issued_at,
            ),
        )
        try:
            get_adapter(provider).audit_checkpoint_store(checkpoint)
        except ProviderError as exc:
            result.failed[provider.slug] = exc.message
            logger.warning(
                "audit checkpoint %s not stored at %s: %s", head.length, provider.slug, exc.message
            )
        else:
            result.sent.append(provider.slug)
    return result


@dataclass
class HeldCheckpoints:
    """What the providers hold: by sequence, the (provider label, checkpoint) pairs with a valid
    signature; the problems found while reading (forged signatures); unreachable providers."""

    by_sequence: dict[int, list[tuple[str, object]]] = field(default_factory=lambda: defaultdict(list))
    problems: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    providers: list[str] = field(default_factory=list)
    count: int = 0


def _signing_keys(provider) -> list[tuple[str, str]]:
    """(key id, secret) pairs a checkpoint held by ``provider`` may be signed with: the current
    ones, then those retired by a rotation (AUDIT_CHECKPOINT_RETIRED_KEYS = {slug: [(key id,
    secret), ...]}), kept only to verify the checkpoints signed before it."""
    keys = [(provider.api_key_id, provider.api_secret)] if provider.api_secret else []
    retired = getattr(settings, "AUDIT_CHECKPOINT_RETIRED_KEYS", {}).get(provider.slug, [])
    return keys + [(str(key_id), str(secret)) for key_id, secret in retired if secret]


def audit_checkpoints_fetch() -> HeldCheckpoints:
    """Read every checkpoint back from every active provider with an API and check that the portal
    signed it (with that provider's secret, for that provider's key id)."""
    from apps.providers import signing
    from apps.providers.adapters import ProviderError, get_adapter

    held = HeldCheckpoints()
    for provider in _providers():
        label = _label(provider)
        keys = _signing_keys(provider)
        if not provider.api_secret:
            held.unreachable.append(f"{label}: no shared secret is configured")
            continue
        try:
            items = list(get_adapter(provider).audit_checkpoint_list())
        except ProviderError as exc:
            held.unreachable.append(f"{label}: {exc.message}")
            continue
        held.providers.append(label)
        for item in items:
            held.count += 1
            valid = any(
                signing.checkpoint_signature_valid(
                    secret=secret,
                    key_id=key_id,
                    sequence=item.sequence,
                    hash=item.hash,
                    issued_at=item.issued_at,
                    signature=item.signature,
                )
                for key_id, secret in keys
            )
            if not valid:
                held.problems.append(
                    f"{label} holds checkpoint #{item.sequence} (hash {item.hash[:16]}…, issued "
                    f"{item.issued_at}) whose signature is not the portal's: forged or corrupted"
                )
                continue
            held.by_sequence[item.sequence].append((label, item))
    return held


def compare(
    *, report, held: HeldCheckpoints, hashes: dict[int, str], chain_length: int, walk_complete: bool
) -> None:
    """Fill ``report`` (a ChainReport) with what the checkpoints say about the chain just walked.

    ``hashes`` maps the checkpointed sequences the walk reached to the chain's hash there;
    ``chain_length`` is how far the walk got (the whole chain when ``walk_complete``)."""
    problems = list(held.problems)
    for sequence in sorted(held.by_sequence):
        for label, item in held.by_sequence[sequence]:
            if sequence in hashes:
                if hashes[sequence] != item.hash:
                    problems.append(
                        f"{label} holds checkpoint #{sequence} (issued {item.issued_at}) with hash "
                        f"{item.hash[:16]}…, but the chain's event #{sequence} has {hashes[sequence][:16]}…: "
                        "the chain was rewritten"
                    )
            elif walk_complete and sequence > chain_length:
                problems.append(
                    f"{label} holds checkpoint #{sequence} (issued {item.issued_at}), but the chain "
                    f"ends at event #{chain_length}: events were removed or the chain was rewritten"
                )
            elif walk_complete:
                problems.append(
                    f"{label} holds checkpoint #{sequence} (issued {item.issued_at}), which is no "
                    "position of the chain (sequences start at 1)"
                )
            # else: the chain breaks before this sequence, which the report already says.
    report.checkpoint_problems = problems
    report.unreachable = list(held.unreachable)
    report.providers_checked = list(held.providers)
    report.checkpoints_checked = held.count
    if problems:
        report.ok = False
        if not report.reason:
            report.reason = MISMATCH_REASON
