"""Signed order and refund deliveries: ``X-Loyalty-Signature: t=<unix>,v1=<hex>``.

The signature is HMAC-SHA256 of ``f"{t}.{body}"``; any configured secret may match (so a
secret can be rotated without downtime), compared in constant time, and a timestamp more
than the tolerance away from now, either way, is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

from .errors import LoyaltyError

HEADER = "X-Loyalty-Signature"


class BadSignature(LoyaltyError):
    code = "bad_signature"
    http_status = 401


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value a sender puts on ``body``; shops and tests sign with it."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"


def verify(header: str | None, body: bytes, secrets: Sequence[str], *, tolerance: int, now: float) -> None:
    if not header:
        raise BadSignature(f"The {HEADER} header is missing.")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise BadSignature(f"The {HEADER} header must look like t=<unix time>,v1=<hex digest>.")
    if abs(now - timestamp) > tolerance:
        raise BadSignature("The signature's timestamp is too far from now; send it again, freshly signed.")
    signed = f"{timestamp}.".encode() + body
    ok = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        for candidate in candidates:
            ok |= hmac.compare_digest(expected, candidate)
    if not ok:
        raise BadSignature("The signature does not match the body.")
