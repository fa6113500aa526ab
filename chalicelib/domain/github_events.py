"""GitHub's webhook deliveries: their signature, and the branch and repository a push names."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from chalicelib import errors
from chalicelib.domain import github_urls

_BRANCH_PREFIX = "refs/heads/"


@dataclass(frozen=True)
class Push:
    github_url: str  # normalised, as repositories are stored
    branch: str | None  # None for a tag push


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256 over the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected.encode("ascii"), header.encode("utf-8", "replace"))


def parse_push(body: bytes) -> Push:
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise errors.InvalidInput("the push payload is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("repository"), dict):
        raise errors.InvalidInput.field("repository", "is required")
    ref, full_name = payload.get("ref"), payload["repository"].get("full_name")
    if not isinstance(ref, str):
        raise errors.InvalidInput.field("ref", "must be a string")
    if not isinstance(full_name, str):
        raise errors.InvalidInput.field("repository.full_name", "must be a string")
    url = github_urls.parse_github_url(f"https://github.com/{full_name}", field="repository.full_name")
    branch = ref.removeprefix(_BRANCH_PREFIX) if ref.startswith(_BRANCH_PREFIX) else None
    return Push(github_url=url.url, branch=branch)
