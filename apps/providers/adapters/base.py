"""The small interface every provider adapter implements."""

from collections.abc import Iterator
from dataclasses import dataclass, field


class ProviderError(Exception):
    """A call to a provider failed. ``permanent`` errors are not retried (bad request, refused
    credentials); ``stale`` means the provider already holds a newer version of the grant (its
    ``current_version`` is in ``detail``, the decoded error body)."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        stale: bool = False,
        status: int | None = None,
        detail: dict | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.stale = stale
        self.status = status
        self.detail = detail or {}


@dataclass
class QuotaState:
    grant_id: str
    version: int
    status: str  # "active" or "revoked"
    gpu_hours: str
    extra: dict = field(default_factory=dict)


@dataclass
class UsageBatch:
    records: list[dict]
    next_cursor: str


@dataclass
class AuditCheckpoint:
    """The portal's signed statement "event ``sequence`` of the audit chain has ``hash``" as a
    provider keeps it (``received_at`` is the provider's clock, empty when sending)."""

    sequence: int
    hash: str
    issued_at: str
    signature: str
    received_at: str = ""


class ProviderAdapter:
    """Talks to one provider. Implementations raise ProviderError for every failure."""

    def __init__(self, provider, *, timeout: float, deadline: float | None = None):
        self.provider = provider
        self.timeout = timeout  # connecting and each read
        self.deadline = 3 * timeout if deadline is None else deadline  # the whole request

    def apply(self, payload: dict, *, idempotency_key: str) -> QuotaState:
        raise NotImplementedError

    def revoke(self, grant_id: str, version: int, *, idempotency_key: str) -> QuotaState:
        raise NotImplementedError

    def list_quotas(self) -> Iterator[QuotaState]:
        raise NotImplementedError

    def usage(self, cursor: str) -> UsageBatch:
        raise NotImplementedError

    def audit_checkpoint_store(self, checkpoint: AuditCheckpoint) -> AuditCheckpoint:
        """Have the provider keep a signed checkpoint of the portal's audit chain; the answer is
        what it now holds for that sequence. A different hash already held for the sequence is a
        ProviderError (the provider keeps the first)."""
        raise NotImplementedError

    def audit_checkpoint_list(self) -> Iterator[AuditCheckpoint]:
        """Every checkpoint the provider holds, by sequence."""
        raise NotImplementedError
