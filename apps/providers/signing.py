"""Request signing shared by the portal, its adapters and the provider simulator.

Every request carries:

    X-Alliance-Key-Id:     which shared secret signed it
    X-Alliance-Timestamp:  Unix seconds when it was signed
    X-Alliance-Signature:  v1=<hex HMAC-SHA256(secret, message)>, where message is
                           "<timestamp>.<METHOD>.<path with query>.<sha256 hex of body>"

A receiver rejects a signature that does not match or a timestamp outside the replay window
(default 300 s either way). Standard library only: the simulator imports this without Django.
"""

import hashlib
import hmac
import time

HEADER_KEY_ID = "X-Alliance-Key-Id"
HEADER_TIMESTAMP = "X-Alliance-Timestamp"
HEADER_SIGNATURE = "X-Alliance-Signature"
HEADER_IDEMPOTENCY_KEY = "Idempotency-Key"
REPLAY_WINDOW_SECONDS = 300


class SignatureError(Exception):
    """The request is not signed correctly; ``reason`` says why (safe to show the caller)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _message(timestamp: str, method: str, path: str, body: bytes) -> bytes:
    return f"{timestamp}.{method.upper()}.{path}.{hashlib.sha256(body or b'').hexdigest()}".encode()


def sign(*, secret: str, method: str, path: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers (timestamp and signature) for a request; ``path`` includes the query string."""
    ts = str(int(time.time() if timestamp is None else timestamp))
    digest = hmac.new(secret.encode(), _message(ts, method, path, body), hashlib.sha256).hexdigest()
    return {HEADER_TIMESTAMP: ts, HEADER_SIGNATURE: f"v1={digest}"}


def verify(
    *,
    secret: str,
    method: str,
    path: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float | None = None,
    window: int = REPLAY_WINDOW_SECONDS,
) -> None:
    """Raise SignatureError unless the signature is valid and fresh."""
    if not timestamp or not signature:
        raise SignatureError("missing signature headers")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        # Also keeps a 400-digit "timestamp" from overflowing the float comparison below.
        raise SignatureError("timestamp is not an integer")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise SignatureError("timestamp is not an integer") from exc
    current = time.time() if now is None else now
    if abs(current - ts) > window:
        raise SignatureError("timestamp outside the replay window")
    if not signature.startswith("v1="):
        raise SignatureError("unknown signature version")
    expected = hmac.new(secret.encode(), _message(timestamp, method, path, body), hashlib.sha256).hexdigest()
    provided = signature[3:]
    # compare_digest raises TypeError on non-ASCII str; such a signature cannot match anyway.
    if not provided.isascii() or not hmac.compare_digest(expected, provided):
        raise SignatureError("signature does not match")


# ----- audit chain checkpoints (docs/provider-api.md, "Audit checkpoints") ---------------------------
#
# A checkpoint is the portal's statement "event number <sequence> of my audit chain has hash <hash>,
# as of <issued_at>". The portal signs it with the provider's shared secret; the provider keeps it and
# shows it back, and the portal checks the signature again before it trusts what it reads.

CHECKPOINT_CONTEXT = "alliance-audit-checkpoint.v1"


def _checkpoint_message(key_id: str, sequence: int, hash: str, issued_at: str) -> bytes:
    return f"{CHECKPOINT_CONTEXT}\n{key_id}\n{int(sequence)}\n{hash}\n{issued_at}".encode()


def sign_checkpoint(*, secret: str, key_id: str, sequence: int, hash: str, issued_at: str) -> str:
    """``v1=<hex HMAC-SHA256>`` over the checkpoint's fields and the key id it is shown to."""
    message = _checkpoint_message(key_id, sequence, hash, issued_at)
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def checkpoint_signature_valid(
    *, secret: str, key_id: str, sequence: int, hash: str, issued_at: str, signature
) -> bool:
    if not isinstance(signature, str) or not signature.startswith("v1=") or not signature.isascii():
        return False
    if not isinstance(hash, str) or not isinstance(issued_at, str):
        return False
    expected = sign_checkpoint(
        secret=secret, key_id=key_id, sequence=sequence, hash=hash, issued_at=issued_at
    )
    return hmac.compare_digest(expected, signature)
