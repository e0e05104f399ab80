"""The one HTTP client for provider APIs: signed requests, time-outs, errors classified."""

import http.client
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from apps.providers import signing
from apps.providers.adapters.base import ProviderError

RETRYABLE_4XX = {408, 409, 425, 429}


def request(
    *,
    base_url: str,
    key_id: str,
    secret: str,
    method: str,
    path: str,
    body: dict | None = None,
    idempotency_key: str | None = None,
    timeout: float,
) -> dict:
    """Send a signed JSON request; return the decoded answer or raise ProviderError.

    ``path`` is relative to ``base_url`` and may carry a query string. 409 answers are returned
    to the caller as ProviderError(stale=…) with the decoded body in ``message``."""
    if not base_url:
        raise ProviderError("the provider has no API base URL", permanent=True)
    url = base_url.rstrip("/") + path
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else b""
    split = urlsplit(url)
    signed_path = split.path + (f"?{split.query}" if split.query else "")
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        signing.HEADER_KEY_ID: key_id,
        **signing.sign(secret=secret, method=method, path=signed_path, body=data),
    }
    if idempotency_key:
        headers[signing.HEADER_IDEMPOTENCY_KEY] = idempotency_key
    req = urllib.request.Request(
        url, data=data if method in ("PUT", "POST", "PATCH") else None, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()[:2000]
        try:
            detail = json.loads(raw or b"{}")
        except ValueError:
            detail = {"error": raw.decode("utf-8", "replace")}
        message = f"HTTP {exc.code}: {detail.get('error') or detail.get('code') or exc.reason}"
        if exc.code == 409 and detail.get("code") == "stale_version":
            raise ProviderError(message, stale=True, status=409) from exc
        permanent = 400 <= exc.code < 500 and exc.code not in RETRYABLE_4XX
        raise ProviderError(message, permanent=permanent, status=exc.code) from exc
    except TimeoutError as exc:
        raise ProviderError("time-out waiting for the provider") from exc
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProviderError(f"connection failed: {reason}") from exc
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise ProviderError("the provider answered with invalid JSON") from exc
