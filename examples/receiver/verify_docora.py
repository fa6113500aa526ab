"""Checks that a request came from Docora: HMAC-SHA256 of the raw body, at most 300 s old, compared in constant time."""

import hashlib
import hmac
import time
from collections.abc import Mapping

MAX_AGE_SECONDS = 300


def verify_docora(body: bytes, headers: Mapping[str, str], key: str, now: float | None = None) -> bool:
    """True when `body`, the bytes exactly as received, was signed with `key` less than 300 s from `now`.

    `headers` maps the request's header names (in any case) to their values. While a key rotation
    overlap is active, X-Docora-Signature-Previous carries a second signature: either one may match.
    """
    found = {name.lower(): value for name, value in headers.items()}
    timestamp = found.get("x-docora-timestamp", "")
    # Twelve digits reach the year 33658; a longer header is junk, and int() refuses thousands of digits.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > MAX_AGE_SECONDS:
        return False
    mac = hmac.new(key.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    expected = ("sha256=" + mac.hexdigest()).encode("ascii")
    given = (found.get("x-docora-signature", ""), found.get("x-docora-signature-previous", ""))
    return any(hmac.compare_digest(expected, value.encode("utf-8", "replace")) for value in given)
