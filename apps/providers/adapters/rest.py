"""Adapter for the Alliance Provider API v1 (docs/provider-api.md)."""

from collections.abc import Iterator
from urllib.parse import quote, urlencode

from apps.providers.adapters import http
from apps.providers.adapters.base import (
    AuditCheckpoint,
    ProviderAdapter,
    ProviderError,
    QuotaState,
    UsageBatch,
)


def _state(data: dict) -> QuotaState:
    try:
        return QuotaState(
            grant_id=str(data["grant_id"]),
            version=int(data["version"]),
            status=str(data["status"]),
            gpu_hours=str(data.get("gpu_hours") or ""),
            extra={k: v for k, v in data.items() if k not in ("grant_id", "version", "status", "gpu_hours")},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(f"unexpected answer from the provider: {data!r:.200}") from exc


def _checkpoint(data) -> AuditCheckpoint:
    try:
        sequence = data["sequence"]
        if isinstance(sequence, bool) or not isinstance(sequence, int):
            raise TypeError("sequence is not an integer")
        return AuditCheckpoint(
            sequence=sequence,
            hash=str(data["hash"]),
            issued_at=str(data["issued_at"]),
            signature=str(data["signature"]),
            received_at=str(data.get("received_at") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderError(f"unexpected checkpoint from the provider: {data!r:.200}") from exc


class RestAdapter(ProviderAdapter):
    def _call(self, method, path, body=None, idempotency_key=None):
        return http.request(
            base_url=self.provider.api_base_url,
            key_id=self.provider.api_key_id,
            secret=self.provider.api_secret,
            method=method,
            path=path,
            body=body,
            idempotency_key=idempotency_key,
            timeout=self.timeout,
            deadline=self.deadline,
        )

    def apply(self, payload: dict, *, idempotency_key: str) -> QuotaState:
        grant_id = quote(str(payload["grant_id"]), safe="")
        return _state(self._call("PUT", f"/quotas/{grant_id}", payload, idempotency_key))

    def revoke(self, grant_id: str, version: int, *, idempotency_key: str) -> QuotaState:
        path = f"/quotas/{quote(grant_id, safe='')}?{urlencode({'version': version})}"
        return _state(self._call("DELETE", path, None, idempotency_key))

    def list_quotas(self) -> Iterator[QuotaState]:
        cursor = ""
        while True:
            query = urlencode({"limit": 1000, **({"cursor": cursor} if cursor else {})})
            page = self._call("GET", f"/quotas?{query}")
            for item in page.get("items", []):
                yield _state(item)
            cursor = page.get("next_cursor") or ""
            if not cursor:
                return

    def usage(self, cursor: str) -> UsageBatch:
        query = urlencode({"limit": 1000, **({"cursor": cursor} if cursor else {})})
        page = self._call("GET", f"/usage?{query}")
        # Passed on as received: usage.usage_pull checks the page and each record (a list of
        # records, a string cursor) and records what it cannot use.
        if not isinstance(page, dict):
            return UsageBatch(records=page, next_cursor=cursor)
        return UsageBatch(records=page.get("records", []), next_cursor=page.get("next_cursor") or cursor)

    def audit_checkpoint_store(self, checkpoint: AuditCheckpoint) -> AuditCheckpoint:
        body = {
            "sequence": checkpoint.sequence,
            "hash": checkpoint.hash,
            "issued_at": checkpoint.issued_at,
            "signature": checkpoint.signature,
        }
        return _checkpoint(self._call("PUT", f"/audit/checkpoints/{int(checkpoint.sequence)}", body))

    def audit_checkpoint_list(self) -> Iterator[AuditCheckpoint]:
        cursor = ""
        while True:
            query = urlencode({"limit": 1000, **({"cursor": cursor} if cursor else {})})
            page = self._call("GET", f"/audit/checkpoints?{query}")
            items = page.get("items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                raise ProviderError(f"unexpected answer from the provider: {page!r:.200}")
            for item in items:
                yield _checkpoint(item)
            next_cursor = page.get("next_cursor") or ""
            if next_cursor and (not isinstance(next_cursor, str) or next_cursor == cursor):
                raise ProviderError(f"the checkpoint cursor does not advance: {next_cursor!r:.100}")
            cursor = next_cursor
            if not cursor:
                return
