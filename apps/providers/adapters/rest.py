"""Adapter for the Alliance Provider API v1 (docs/provider-api.md)."""

from collections.abc import Iterator
from urllib.parse import quote, urlencode

from apps.providers.adapters import http
from apps.providers.adapters.base import ProviderAdapter, ProviderError, QuotaState, UsageBatch


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
