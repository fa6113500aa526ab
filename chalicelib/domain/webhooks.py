"""Webhook payloads as the exact bytes receivers verify, and the ids and signatures that go with them.

docs/protocol.md §1.2 to 1.4. Original receivers check the signature against `JSON.stringify(JSON.parse(body))`,
so a body is only valid when JavaScript re-serialises it to the very bytes that were signed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.chunks import Chunk

EVENTS = ("create", "update", "delete", "sync_failed")
BASE64 = "base64"

# Python and JSON.stringify agree on every character except UTF-16 surrogates (checked against Node 20 for
# U+0000 to U+007F, U+2028, U+2029 and the rest): Python writes them raw, which UTF-8 cannot encode, while
# JavaScript joins a high+low pair into one character and escapes a lone one as lowercase `\udxxx`.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_PAIR_OR_LONE = re.compile("([\ud800-\udbff][\udc00-\udfff])|[\ud800-\udfff]")


@dataclass(frozen=True)
class RepositoryRef:
    repository_id: str
    github_url: str
    owner: str
    name: str


def create_body(
    repo: RepositoryRef,
    path: str,
    sha: str,
    size: int,
    content: str,
    content_encoding: str | None,
    commit_sha: str,
    timestamp: datetime,
    chunk: Chunk | None = None,
) -> bytes:
    file = _file(path, sha, size, content, content_encoding, chunk)
    return serialise(
        {
            "repository": _repository(repo),
            "file": file,
            "commit_sha": commit_sha,
            "timestamp": format_timestamp(timestamp),
        }
    )


def update_body(
    repo: RepositoryRef,
    path: str,
    sha: str,
    size: int,
    content: str,
    content_encoding: str | None,
    previous_sha: str,
    commit_sha: str,
    timestamp: datetime,
    chunk: Chunk | None = None,
) -> bytes:
    file = _file(path, sha, size, content, content_encoding, chunk)
    return serialise(
        {
            "repository": _repository(repo),
            "file": file,
            "previous_sha": previous_sha,
            "commit_sha": commit_sha,
            "timestamp": format_timestamp(timestamp),
        }
    )


def delete_body(repo: RepositoryRef, path: str, sha: str, commit_sha: str, timestamp: datetime) -> bytes:
    """`sha` is the one last delivered to this app, not anything in the repository."""
    return serialise(
        {
            "repository": _repository(repo),
            "file": {"path": path, "sha": sha},
            "commit_sha": commit_sha,
            "timestamp": format_timestamp(timestamp),
        }
    )


def sync_failed_body(
    repo: RepositoryRef,
    message: str,
    consecutive_failures: int,
    threshold: int,
    cooldown_until: datetime,
    retry_count: int,
    timestamp: datetime,
) -> bytes:
    """`message` must already be free of credentials and userinfo URLs; this function cannot tell."""
    return serialise(
        {
            "event": "sync_failed",
            "repository": _repository(repo),
            "error": {"type": "git_failure", "message": message},
            "circuit_breaker": {
                "status": "open",
                "consecutive_failures": consecutive_failures,
                "threshold": threshold,
                "cooldown_until": format_timestamp(cooldown_until),
            },
            "retry_count": retry_count,
            "timestamp": format_timestamp(timestamp),
        }
    )


def serialise(payload: dict[str, Any]) -> bytes:
    """Compact JSON, keys in insertion order, non-ASCII as UTF-8: the bytes JSON.stringify gives back."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE_PAIR_OR_LONE.sub(_as_javascript_writes, text)
    return text.encode("utf-8")


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, like JavaScript's toISOString (which truncates)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def delivery_id(app_id: str, repository_id: str, path: str, sha: str, event: str) -> str:
    """The same for every retry and rescan of one change, and different for any other change."""
    digest = hashlib.sha256()
    for field in (app_id, repository_id, path, sha, event):
        encoded = field.encode("utf-8", "surrogatepass")
        # Length-prefixed, so ("a/b", "c") and ("a", "b/c") cannot collide.
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return "dlv_" + digest.hexdigest()[:32]


def signature(key: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def headers(
    app_id: str,
    key: str,
    body: bytes,
    event: str,
    delivery_id: str,
    timestamp: int,
    version: str,
    previous_key: str | None = None,
) -> dict[str, str]:
    """Request headers for one signed body; `previous_key` adds a second signature while a key rotates."""
    values = {
        "Content-Type": "application/json",
        "X-Docora-App-Id": app_id,
        "X-Docora-Timestamp": str(timestamp),
        "X-Docora-Signature": signature(key, timestamp, body),
        "X-Docora-Event": _checked_event(event),
        "X-Docora-Delivery": delivery_id,
        "User-Agent": f"Docora/{version}",
    }
    if previous_key is not None:
        values["X-Docora-Signature-Previous"] = signature(previous_key, timestamp, body)
    return values


def event_url(base_url: str, event: str) -> str:
    return f"{base_url.rstrip('/')}/{_checked_event(event)}"


def _repository(repo: RepositoryRef) -> dict[str, str]:
    return {
        "repository_id": repo.repository_id,
        "github_url": repo.github_url,
        "owner": repo.owner,
        "name": repo.name,
    }


def _file(
    path: str, sha: str, size: int, content: str, content_encoding: str | None, chunk: Chunk | None
) -> dict[str, Any]:
    file: dict[str, Any] = {"path": path, "sha": sha, "size": size, "content": content}
    if content_encoding is not None:
        if content_encoding != BASE64:
            raise ValueError(f"unknown content encoding {content_encoding!r}")
        file["content_encoding"] = content_encoding
    if chunk is not None:
        file["chunk"] = {"id": chunk.id, "index": chunk.index, "total": chunk.total}
    return file


def _checked_event(event: str) -> str:
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    return event


def _as_javascript_writes(match: re.Match[str]) -> str:
    pair = match.group(1)
    if pair is not None:
        return pair.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    return f"\\u{ord(match.group()):04x}"
