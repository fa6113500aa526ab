"""Sending one change to one app: its body (or its slices, in order), signed, POSTed, and the attempt to log for it.

A transfer runs on one of the job's sender threads and touches nothing but the receiver, the bucket (a big content is
streamed from it) and the clock: the database is the job's main thread's alone.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from chalicelib import __version__, errors
from chalicelib.domain import chunks, webhooks
from chalicelib.domain.apps import App
from chalicelib.domain.bundles import StoredContent
from chalicelib.domain.deliveries import Attempt, Change
from chalicelib.domain.repositories import Repository
from chalicelib.domain.retry_schedule import Answer, classify_status
from chalicelib.ports import Deps, WebhookResult

_READ_BYTES = 3 * 64 * 1024  # a multiple of 3: base64 slices then need no carry between reads
# Contents sent in one request and no bigger than this are read ahead by the job (on S3 a read is a round trip);
# bigger ones are opened and streamed by the transfer itself, so memory stays bounded.
READ_AHEAD_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Sender:
    """What every transfer to one app needs: who it goes to, how it is signed, and how long a request may take."""

    app: App
    repository: Repository
    commit: str
    key: str
    previous_key: str | None  # the key a rotation replaced, while its overlap lasts
    attempt: int  # the number this attempt has in the watch's log
    timeout: timedelta
    chunk_threshold_bytes: int
    chunk_size_chars: int
    clock: Callable[[], datetime]
    deps: Deps

    @property
    def ref(self) -> webhooks.RepositoryRef:
        repo = self.repository
        return webhooks.RepositoryRef(repo.id, repo.github_url, repo.owner, repo.name)


@dataclass(frozen=True)
class Sent:
    """A finished transfer: the receiver's last answer and what it means, or a content the bucket lacks."""

    result: WebhookResult
    attempt: Attempt
    answer: Answer
    missing: bool = False


def reads_ahead(change: Change, chunk_threshold_bytes: int) -> bool:
    size = change.size or 0
    if change.event == "delete" or size > READ_AHEAD_MAX_BYTES:
        return False
    return not chunks.needs_chunks(change.is_binary, size, chunk_threshold_bytes)


def stored(change: Change) -> StoredContent:
    return StoredContent(change.sha256.hex(), change.size or 0, change.slot)


def transfer(sender: Sender, change: Change, content: bytes | None) -> Sent:
    """Send one change: `content` when the job read it ahead, else streamed from the bucket (a delete has none)."""
    sha = change.sha256.hex()
    delivery_id = webhooks.delivery_id(sender.app.id, sender.repository.id, change.path, sha, change.event)
    if change.event == "delete":
        body = webhooks.delete_body(sender.ref, change.path, sha, sender.commit, sender.clock())
        return post(sender, change.event, change.path, delivery_id, [(delivery_id, body)])
    if content is not None:
        return post(
            sender, change.event, change.path, delivery_id, [(delivery_id, _whole_body(sender, change, content))]
        )
    try:
        stream = sender.deps.contents.open(stored(change))
    except errors.NotFound:
        missing = WebhookResult(None, None, "content missing", 0)
        return Sent(missing, _attempt(sender, change, delivery_id), Answer.FAILED, missing=True)
    with stream:
        return post(sender, change.event, change.path, delivery_id, _file_bodies(sender, change, delivery_id, stream))


def notice(sender: Sender, body: bytes, delivery_id: str, timeout: timedelta) -> Sent:
    """A sync_failed notice: one request, signed and logged like any webhook (docs/protocol.md §1.7)."""
    return post(sender, "sync_failed", None, delivery_id, [(delivery_id, body)], timeout=timeout)


def post(
    sender: Sender,
    event: str,
    path: str | None,
    delivery_id: str,
    bodies: Iterator[tuple[str, bytes]] | list[tuple[str, bytes]],
    *,
    timeout: timedelta | None = None,
) -> Sent:
    """The one way a webhook leaves: POST each body in turn, signed, stopping at the first that is not acknowledged."""
    url = webhooks.event_url(sender.app.base_url, event)
    seconds = (timeout or sender.timeout).total_seconds()
    result, total_ms = WebhookResult(None, None, "nothing to send", 0), 0
    for request_id, body in bodies:
        moment = int(sender.clock().timestamp())
        headers = webhooks.headers(
            sender.app.id, sender.key, body, event, request_id, moment, __version__, sender.previous_key
        )
        result = sender.deps.webhooks.send(url, body, headers, timeout=seconds)
        total_ms += result.duration_ms
        if classify_status(result.status_code) is not Answer.DELIVERED:
            break
    answer = classify_status(result.status_code)
    attempt = Attempt(
        id=None,
        path=path,
        event=event,
        delivery_id=delivery_id,
        attempt=sender.attempt,
        status_code=result.status_code,
        error=None if answer is Answer.DELIVERED else describe(result),
        duration_ms=total_ms,
        attempted_at=sender.clock(),
    )
    return Sent(result, attempt, answer)


def describe(result: WebhookResult) -> str:
    if result.status_code is None:
        return result.error or "no answer"
    if 300 <= result.status_code < 400:
        return f"the receiver answered {result.status_code} (redirects are not followed)"
    return f"the receiver answered {result.status_code}"


def _attempt(sender: Sender, change: Change, delivery_id: str) -> Attempt:
    return Attempt(None, change.path, change.event, delivery_id, sender.attempt, None, "content missing", 0,
                   sender.clock())  # fmt: skip


def _file_bodies(sender: Sender, change: Change, delivery_id: str, stream: BinaryIO) -> Iterator[tuple[str, bytes]]:
    if not chunks.needs_chunks(change.is_binary, change.size or 0, sender.chunk_threshold_bytes):
        yield delivery_id, _whole_body(sender, change, stream.read())
        return
    total = chunks.slice_count(change.size or 0, sender.chunk_size_chars)
    transfer_id = chunks.chunk_id(delivery_id)
    pieces = iter(lambda: stream.read(_READ_BYTES), b"")
    for index, text in enumerate(chunks.base64_slices(pieces, sender.chunk_size_chars)):
        chunk = chunks.Chunk(transfer_id, index, total)
        yield chunks.slice_delivery_id(delivery_id, index), _body(sender, change, text, webhooks.BASE64, chunk)


def _whole_body(sender: Sender, change: Change, data: bytes) -> bytes:
    if change.is_binary:
        return _body(sender, change, base64.b64encode(data).decode("ascii"), webhooks.BASE64, None)
    return _body(sender, change, data.decode("utf-8"), None, None)


def _body(sender: Sender, change: Change, content: str, encoding: str | None, chunk: chunks.Chunk | None) -> bytes:
    sha, size, now = change.sha256.hex(), change.size or 0, sender.clock()
    if change.event == "update" and change.previous_sha256 is not None:
        previous = change.previous_sha256.hex()
        return webhooks.update_body(sender.ref, change.path, sha, size, content, encoding, previous, sender.commit, now,
                                    chunk)  # fmt: skip
    return webhooks.create_body(sender.ref, change.path, sha, size, content, encoding, sender.commit, now, chunk)
