"""Adapter registry: a provider's ``adapter_kind`` names the class that speaks its protocol.

Adding a provider with another protocol means adding one module here and one line below."""

from django.conf import settings
from django.utils.module_loading import import_string

from apps.providers.adapters.base import (
    AuditCheckpoint,
    ProviderAdapter,
    ProviderError,
    QuotaState,
    UsageBatch,
)

ADAPTERS = {
    "rest_v1": "apps.providers.adapters.rest.RestAdapter",
}


def get_adapter(provider, *, timeout: float | None = None, deadline: float | None = None) -> ProviderAdapter:
    """The adapter for ``provider``; ``timeout`` bounds connecting and each read, ``deadline`` a whole
    request (PROVIDER_HTTP_TIMEOUT and PROVIDER_HTTP_DEADLINE by default)."""
    try:
        cls = import_string(ADAPTERS[provider.adapter_kind])
    except KeyError as exc:
        raise ProviderError(f"unknown adapter kind {provider.adapter_kind!r}", permanent=True) from exc
    return cls(
        provider,
        timeout=settings.PROVIDER_HTTP_TIMEOUT if timeout is None else timeout,
        deadline=provider_http_deadline() if deadline is None else deadline,
    )


def provider_http_deadline() -> float:
    """Seconds a whole provider request may take: PROVIDER_HTTP_DEADLINE, or 3 times the time-out."""
    return getattr(settings, "PROVIDER_HTTP_DEADLINE", None) or 3 * settings.PROVIDER_HTTP_TIMEOUT


__all__ = [
    "AuditCheckpoint",
    "ProviderAdapter",
    "ProviderError",
    "QuotaState",
    "UsageBatch",
    "get_adapter",
    "provider_http_deadline",
]
