"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>", valid for five minutes."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from typing import Mapping

from adapters.base import PushIdentity, WebhookSignatureError

REPLAY_WINDOW_SECONDS = 300


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def webhook_signature(secret: str | bytes, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 a carrier sends for `body` pushed at unix time `timestamp`."""
    return hmac.new(_key(secret), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secret: str | bytes,
    now: datetime,
    *,
    carrier: str,
    timestamp_header: str,
    signature_header: str,
    signature_prefix: str = "",
) -> PushIdentity:
    """The identity of a push whose headers carry a fresh, valid signature of body; else
    WebhookSignatureError. The identity is a digest of exactly what the signature covers."""
    if not secret:
        raise WebhookSignatureError("no webhook secret configured", carrier=carrier)
    lowered = {k.lower(): v for k, v in headers.items()}
    stamp = lowered.get(timestamp_header.lower())
    signature = lowered.get(signature_header.lower())
    if not stamp or not signature:
        raise WebhookSignatureError(
            f"missing {timestamp_header} or {signature_header} header", carrier=carrier
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookSignatureError(f"{timestamp_header} is not a unix time", carrier=carrier) from None
    # A replayed push is rejected whichever way the clocks are off.
    if abs(now.timestamp() - timestamp) > REPLAY_WINDOW_SECONDS:
        raise WebhookSignatureError(
            "stale webhook: timestamp outside the five-minute window", carrier=carrier
        )
    if signature_prefix:
        if not signature.startswith(signature_prefix):
            raise WebhookSignatureError("bad webhook signature", carrier=carrier)
        signature = signature[len(signature_prefix):]
    expected = webhook_signature(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise WebhookSignatureError("bad webhook signature", carrier=carrier)
    # Not the header text: "+1700000000", "01700000000" or an upper-case signature verify the same.
    digest = hashlib.sha256(str(timestamp).encode() + b"." + body).hexdigest()
    signed_at = datetime.fromtimestamp(timestamp, timezone.utc)
    return PushIdentity(digest, signed_at, signed_at + timedelta(seconds=REPLAY_WINDOW_SECONDS))
