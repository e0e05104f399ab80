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


def get_adapter(provider, *, timeout: float | None = None) -> ProviderAdapter:
    try:
        cls = import_string(ADAPTERS[provider.adapter_kind])
    except KeyError as exc:
        raise ProviderError(f"unknown adapter kind {provider.adapter_kind!r}", permanent=True) from exc
    return cls(provider, timeout=settings.PROVIDER_HTTP_TIMEOUT if timeout is None else timeout)


__all__ = ["AuditCheckpoint", "ProviderAdapter", "ProviderError", "QuotaState", "UsageBatch", "get_adapter"]
