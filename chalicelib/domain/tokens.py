"""Identifiers and secrets the service hands out, and the constant-work ways of checking them."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

_APP_ID = re.compile(r"app_[0-9a-f]{24}")
_REPOSITORY_ID = re.compile(r"repo_[0-9a-f]{24}")
_BEARER_TOKEN = re.compile(r"docora_[0-9a-f]{64}")
# A label, not a secret: it derives a lookup key from ENCRYPTION_KEY so that the AES key itself
# is never used as an HMAC key as well.
_LOOKUP_KEY_LABEL = b"docora/token-lookup/v1"


def new_app_id() -> str:
    return "app_" + secrets.token_hex(12)


def new_repository_id() -> str:
    return "repo_" + secrets.token_hex(12)


def new_operation_id() -> str:
    return "op_" + secrets.token_hex(12)


def new_bearer_token() -> str:
    return "docora_" + secrets.token_hex(32)


def new_client_auth_key() -> str:
    """A webhook signing key for apps that did not bring their own: 64 hex characters, 256 bits."""
    return secrets.token_hex(32)


def is_app_id(value: object) -> bool:
    return isinstance(value, str) and _APP_ID.fullmatch(value) is not None


def is_repository_id(value: object) -> bool:
    return isinstance(value, str) and _REPOSITORY_ID.fullmatch(value) is not None


def looks_like_bearer_token(value: object) -> bool:
    return isinstance(value, str) and _BEARER_TOKEN.fullmatch(value) is not None


def token_lookup_key(token: str, secret: bytes) -> bytes:
    """An index key for a bearer token.

    bcrypt hashes are salted, so they cannot be looked up; this keyed digest finds the one candidate
    row whose bcrypt hash is then checked, which keeps authentication one bcrypt check whatever the
    number of apps. Keyed, so a leaked table does not let anyone test guesses offline without the secret.
    """
    lookup_secret = hmac.new(secret, _LOOKUP_KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(lookup_secret, token.encode("utf-8"), hashlib.sha256).digest()


def same_secret(a: str, b: str) -> bool:
    """Compare two secrets in time that does not depend on where they first differ."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_session_id() -> str:
    """An operator's dashboard session: 256 bits, URL-safe, for a cookie."""
    return secrets.token_urlsafe(32)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)
