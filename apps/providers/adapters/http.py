"""The one HTTP client for provider APIs: signed requests, time-outs, errors classified.

Every request is bounded twice: ``timeout`` bounds connecting and each read (a provider that says
nothing), and ``deadline`` bounds the whole exchange, from connecting to the last byte of the body
(a provider that answers one byte at a time would otherwise restart the read time-out with every
byte and hold the request, and the outbox row's claim, for as long as it likes). At the deadline a
watchdog shuts the socket down, which ends any read in progress at once."""

import contextlib
import http.client
import json
import socket
import threading
import time
from urllib.parse import urlsplit

from apps.providers import signing
from apps.providers.adapters.base import ProviderError

RETRYABLE_4XX = {408, 409, 425, 429}
MAX_ANSWER_BYTES = 20 * 1024 * 1024  # a quota list page of 1,000 items is ~400 kB


class _Watchdog:
    """Shuts the connection's socket down when the deadline passes."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float):
        self.connection = connection
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        sock = self.connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()


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
    deadline: float | None = None,
) -> dict:
    """Send a signed JSON request; return the decoded answer or raise ProviderError.

    ``path`` is relative to ``base_url`` and may carry a query string. ``timeout`` bounds the
    connection and each read, ``deadline`` (seconds, default ``3 * timeout``) the whole request.
    409 answers are returned to the caller as ProviderError(stale=…) with the decoded body in
    ``detail``."""
    if not base_url:
        raise ProviderError("the provider has no API base URL", permanent=True)
    deadline = 3 * timeout if deadline is None else deadline
    url = base_url.rstrip("/") + path
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() if body is not None else b""
    split = urlsplit(url)
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ProviderError(f"the provider's API base URL is not an http(s) URL: {base_url}", permanent=True)
    signed_path = split.path + (f"?{split.query}" if split.query else "")
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Connection": "close",
        signing.HEADER_KEY_ID: key_id,
        **signing.sign(secret=secret, method=method, path=signed_path, body=data),
    }
    if idempotency_key:
        headers[signing.HEADER_IDEMPOTENCY_KEY] = idempotency_key
    connection_class = http.client.HTTPSConnection if split.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(split.hostname, split.port, timeout=min(timeout, deadline))
    started = time.monotonic()
    watchdog = _Watchdog(connection, deadline)
    try:
        with watchdog:
            connection.request(
                method,
                signed_path or "/",
                body=data if method in ("PUT", "POST", "PATCH") else None,
                headers=headers,
            )
            response = connection.getresponse()
            raw = response.read(MAX_ANSWER_BYTES + 1)
            status, reason = response.status, response.reason
    except (TimeoutError, http.client.HTTPException, OSError) as exc:
        if watchdog.fired:
            raise ProviderError(
                f"the provider did not finish answering within the {deadline:g} s deadline"
            ) from exc
        if isinstance(exc, TimeoutError):
            raise ProviderError("time-out waiting for the provider") from exc
        raise ProviderError(f"connection failed: {exc}") from exc
    finally:
        connection.close()
    if watchdog.fired or time.monotonic() - started > deadline:
        raise ProviderError(f"the provider did not finish answering within the {deadline:g} s deadline")
    if len(raw) > MAX_ANSWER_BYTES:
        raise ProviderError("the provider's answer is too large")
    if status >= 400:
        try:
            detail = json.loads(raw or b"{}")
        except ValueError:
            detail = {}
        if not isinstance(detail, dict):
            detail = {}
        text = detail.get("error") or detail.get("code") or reason or raw[:200].decode("utf-8", "replace")
        message = f"HTTP {status}: {text}"
        if status == 409 and detail.get("code") == "stale_version":
            raise ProviderError(message, stale=True, status=409, detail=detail)
        permanent = 400 <= status < 500 and status not in RETRYABLE_4XX
        raise ProviderError(message, permanent=permanent, status=status, detail=detail)
    if not 200 <= status < 300:
        raise ProviderError(f"unexpected HTTP {status} from the provider")
    try:
        answer = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ProviderError("the provider answered with invalid JSON") from exc
    if not isinstance(answer, dict):
        raise ProviderError("the provider answered with JSON that is not an object")
    return answer
