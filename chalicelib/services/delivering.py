"""Delivering a watch: send the app what its ledger lacks, in protocol order, and record every answer."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from chalicelib import __version__, errors
from chalicelib.domain import chunks, deliveries, retry_schedule, webhooks
from chalicelib.domain.apps import App
from chalicelib.domain.bundles import StoredContent
from chalicelib.domain.deliveries import Attempt, Change
from chalicelib.domain.repositories import Repository, Watch
from chalicelib.ports import Deps, WebhookResult

logger = logging.getLogger(__name__)

ATTEMPTS_KEPT_PER_WATCH = 500
# Stop this long before the Lambda's end, so the job can record where it stopped and hand over.
_MARGIN_MS = 35_000
_READ_BYTES = 3 * 64 * 1024  # a multiple of 3: base64 slices then need no carry between reads
# Rate-limit tokens are taken this many at a time: one Redis call per block, not per file. Those a job stops before
# using are not given back, so the app may go a little under its rate, never over it.
_TOKENS_PER_TAKE = 32
# Contents sent in one request and no bigger than this are read whole a few files ahead (on real S3 a read is a
# network round trip); bigger ones are opened and streamed when their turn comes, so memory stays bounded.
_READ_AHEAD_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DeliveryConfig:
    rate_limit_per_minute: int = 6000
    webhook_timeout: timedelta = timedelta(seconds=30)
    sync_failed_timeout: timedelta = timedelta(seconds=10)
    chunk_threshold_bytes: int = 1_048_576
    chunk_size_chars: int = 524_288
    max_retry_attempts: int = 5
    retry_base_delay_ms: int = 1000
    circuit_breaker_threshold: int = 5


@dataclass(frozen=True)
class Delivered:
    outcome: str  # synced, busy, gone, paused, continued, paced, retrying, failed, waiting
    sent: int = 0


@dataclass(frozen=True)
class _Job:
    app: App
    watch: Watch
    repository: Repository
    commit: str | None
    key: str
    previous_key: str | None  # the key a rotation replaced, while its overlap lasts
    clock: Callable[[], datetime]
    config: DeliveryConfig
    deps: Deps

    @property
    def ref(self) -> webhooks.RepositoryRef:
        repo = self.repository
        return webhooks.RepositoryRef(repo.id, repo.github_url, repo.owner, repo.name)


def deliver_watch(
    app_id: str,
    repository_id: str,
    *,
    clock: Callable[[], datetime],
    time_left_ms: Callable[[], int],
    random: Callable[[], float],
    config: DeliveryConfig,
    deps: Deps,
) -> Delivered:
    """Reconcile one watch under its lock; a request that finds the lock taken gets one more run afterwards."""
    lock = f"deliver:{app_id}:{repository_id}"
    started = clock()
    deps.locks.ask_again(lock, started)
    with deps.locks.hold(lock) as held:
        if not held:
            return Delivered("busy")
        result = _reconcile(
            app_id, repository_id, clock=clock, time_left_ms=time_left_ms, random=random, config=config, deps=deps
        )
    if deps.locks.asked_again_since(lock, started) is not None and result.outcome in ("synced", "gone"):
        deps.delivery_queue.request_delivery(app_id, repository_id)
    return result


def _reconcile(
    app_id: str,
    repository_id: str,
    *,
    clock: Callable[[], datetime],
    time_left_ms: Callable[[], int],
    random: Callable[[], float],
    config: DeliveryConfig,
    deps: Deps,
) -> Delivered:
    with deps.store.transaction() as tx:
        app, watch = tx.apps.get(app_id), tx.watches.get(app_id, repository_id)
        repository, commit = tx.repositories.get(repository_id), tx.snapshots.commit(repository_id)
    if app is None or watch is None or repository is None:
        return Delivered("gone")
    if app.delivery_state == "paused":
        return Delivered("paused")
    previous = app.previous_key_until(clock())
    previous_key = deps.cipher.decrypt(previous) if previous is not None else None
    key = deps.cipher.decrypt(app.client_auth_key_encrypted)
    job = _Job(app, watch, repository, commit, key, previous_key, clock, config, deps)
    _notify_sync_failed(job)
    with deps.store.transaction() as tx:
        pending = tx.deliveries.pending(app_id, repository_id)
        if pending:
            tx.watches.start_sync(app_id, repository_id)
        elif commit is not None:
            tx.watches.finish_sync(app_id, repository_id, commit=commit, at=clock())
    if not pending:
        return Delivered("synced" if commit is not None else "waiting")
    return _send_all(job, pending, time_left_ms=time_left_ms, random=random)


@dataclass(frozen=True)
class _Stop:
    """Why the sending loop stopped, and what the job must record for it."""

    outcome: str  # continued, paced, paused, missing, refused, synced
    sent: int
    change: Change | None = None
    answer: tuple[WebhookResult, Attempt] | None = None  # refused: the receiver's last answer


def _send_all(
    job: _Job, pending: list[Change], *, time_left_ms: Callable[[], int], random: Callable[[], float]
) -> Delivered:
    deps, app_id, repository_id = job.deps, job.app.id, job.repository.id
    try:
        stop = _send_until_stopped(job, pending, time_left_ms=time_left_ms)
        deps.store.settle()  # the answer to the last acknowledgement, before anything else is written
    except errors.NotFound:
        return Delivered("gone")  # unwatched or deleted mid-job: nothing more goes out
    if stop.outcome == "missing" and stop.change is not None:
        _content_missing(job, stop.change)
        return Delivered("waiting", stop.sent)
    if stop.outcome == "refused" and stop.answer is not None:
        result, attempt = stop.answer
        _record_attempt(job, attempt)
        return _after_failure(
            job, retry_schedule.classify_status(result.status_code), result, random=random, sent=stop.sent
        )
    if stop.outcome == "synced":
        with deps.store.transaction() as tx:
            tx.watches.finish_sync(app_id, repository_id, commit=job.commit, at=job.clock())
            tx.deliveries.trim_attempts(app_id, repository_id, keep=ATTEMPTS_KEPT_PER_WATCH)
    return Delivered(stop.outcome, stop.sent)


def _send_until_stopped(job: _Job, pending: list[Change], *, time_left_ms: Callable[[], int]) -> _Stop:
    """POST each change in turn and acknowledge each delivered one; NotFound when the watch went away meanwhile."""
    deps, app_id, repository_id = job.deps, job.app.id, job.repository.id
    tokens = 0
    read_ahead = [_stored(change) for change in pending if _reads_ahead(job, change)]
    with deps.contents.read_each(read_ahead) as contents:
        for sent, change in enumerate(pending):
            if time_left_ms() < _MARGIN_MS:
                deps.delivery_queue.request_delivery(app_id, repository_id)
                return _Stop("continued", sent)
            if tokens == 0:
                block = min(_TOKENS_PER_TAKE, len(pending) - sent)
                tokens, wait = deps.rate_limiter.acquire_many(
                    f"deliver:{app_id}", job.config.rate_limit_per_minute, up_to=block
                )
                if wait is not None:
                    deps.delivery_queue.request_delivery(app_id, repository_id, delay_seconds=wait)
                    return _Stop("paced", sent)
            tokens -= 1
            answer = _send_change(job, change, contents)
            if answer is None:
                return _Stop("missing", sent, change)
            if retry_schedule.classify_status(answer[0].status_code) != retry_schedule.DELIVERED:
                return _Stop("refused", sent, change, answer)
            # Sent at once, its answer read only after the next POST: the database writes the row while the next
            # file goes out. A job killed at any point thus re-sends at most the change in flight, as its row is
            # on its way before the next POST starts; but a watch deleted or an app paused meanwhile may get one
            # file more.
            # Not durable either, which spares a disk sync per file: only a crash of the database itself may undo
            # the acknowledgements of its last fraction of a second (before its WAL writer or any durable commit
            # flushed them); those files then go out again under the same X-Docora-Delivery, which at-least-once
            # delivery allows (docs/protocol.md §1.5).
            if not deps.store.acknowledge(app_id, repository_id, change, answer[1]):
                return _Stop("paused", sent + 1)  # by an operator meanwhile: seen one file late, like a deletion
    return _Stop("synced", len(pending))


def _reads_ahead(job: _Job, change: Change) -> bool:
    size = change.size or 0
    if change.event == "delete" or size > _READ_AHEAD_MAX_BYTES:
        return False
    return not chunks.needs_chunks(change.is_binary, size, job.config.chunk_threshold_bytes)


def _stored(change: Change) -> StoredContent:
    return StoredContent(change.sha256.hex(), change.size or 0, change.slot)


def _send_change(job: _Job, change: Change, contents: Iterator[bytes]) -> tuple[WebhookResult, Attempt] | None:
    """Send one change (every slice of it, in order); the last answer, or None when its content is missing.

    `contents` yields the contents of the changes `_reads_ahead` picks, in order.
    """
    sha = change.sha256.hex()
    delivery_id = webhooks.delivery_id(job.app.id, job.repository.id, change.path, sha, change.event)
    if change.event == "delete":
        body = webhooks.delete_body(job.ref, change.path, sha, job.commit or "", job.clock())
        return _post(job, change.event, change.path, delivery_id, [(delivery_id, body)])
    try:
        content = next(contents) if _reads_ahead(job, change) else job.deps.contents.open(_stored(change))
    except errors.NotFound:
        return None
    if isinstance(content, bytes):
        return _post(job, change.event, change.path, delivery_id, [(delivery_id, _whole_body(job, change, content))])
    with content:
        return _post(job, change.event, change.path, delivery_id, _file_bodies(job, change, delivery_id, content))


def _file_bodies(job: _Job, change: Change, delivery_id: str, stream: BinaryIO) -> Iterator[tuple[str, bytes]]:
    config = job.config
    if not chunks.needs_chunks(change.is_binary, change.size or 0, config.chunk_threshold_bytes):
        yield delivery_id, _whole_body(job, change, stream.read())
        return
    total = chunks.slice_count(change.size or 0, config.chunk_size_chars)
    transfer = chunks.chunk_id(delivery_id)
    pieces = iter(lambda: stream.read(_READ_BYTES), b"")
    for index, text in enumerate(chunks.base64_slices(pieces, config.chunk_size_chars)):
        chunk = chunks.Chunk(transfer, index, total)
        yield chunks.slice_delivery_id(delivery_id, index), _body(job, change, text, webhooks.BASE64, chunk)


def _whole_body(job: _Job, change: Change, data: bytes) -> bytes:
    if change.is_binary:
        return _body(job, change, base64.b64encode(data).decode("ascii"), webhooks.BASE64, None)
    return _body(job, change, data.decode("utf-8"), None, None)


def _body(job: _Job, change: Change, content: str, encoding: str | None, chunk: chunks.Chunk | None) -> bytes:
    sha, size, commit, now = change.sha256.hex(), change.size or 0, job.commit or "", job.clock()
    if change.event == "update" and change.previous_sha256 is not None:
        previous = change.previous_sha256.hex()
        return webhooks.update_body(job.ref, change.path, sha, size, content, encoding, previous, commit, now, chunk)
    return webhooks.create_body(job.ref, change.path, sha, size, content, encoding, commit, now, chunk)


def _post(
    job: _Job,
    event: str,
    path: str | None,
    delivery_id: str,
    bodies: Iterator[tuple[str, bytes]] | list[tuple[str, bytes]],
    *,
    timeout: timedelta | None = None,
) -> tuple[WebhookResult, Attempt]:
    """The one way a webhook leaves: POST each body in turn, signed, stopping at the first that is not acknowledged.

    Returns the last answer, and the attempt to log for it.
    """
    url = webhooks.event_url(job.app.base_url, event)
    seconds = (timeout or job.config.webhook_timeout).total_seconds()
    result, total_ms = WebhookResult(None, None, "nothing to send", 0), 0
    for request_id, body in bodies:
        moment = int(job.clock().timestamp())
        headers = webhooks.headers(job.app.id, job.key, body, event, request_id, moment, __version__, job.previous_key)
        result = job.deps.webhooks.send(url, body, headers, timeout=seconds)
        total_ms += result.duration_ms
        if retry_schedule.classify_status(result.status_code) != retry_schedule.DELIVERED:
            break
    return result, _attempt(job, path, event, delivery_id, result, total_ms)


def _after_failure(
    job: _Job, outcome: str, result: WebhookResult, *, random: Callable[[], float], sent: int
) -> Delivered:
    deps, app_id, repository_id, now = job.deps, job.app.id, job.repository.id, job.clock()
    error = _describe(result)
    if outcome == retry_schedule.GONE:
        with deps.store.transaction() as tx:
            tx.apps.pause(app_id, reason="the receiver answered 410 Gone")
            tx.watches.record_delivery_failure(
                app_id, repository_id, retry=deliveries.Retry(job.watch.attempts, False, None, None), error=error
            )
        return Delivered("paused", sent)
    retry_after = None
    if outcome == retry_schedule.THROTTLED:
        retry_after = retry_schedule.retry_after_seconds(result.retry_after, now)
    retry = deliveries.plan_retry(
        # Attempts count failures in a row: a job that got files through before failing starts the count afresh,
        # so a receiver that fails now and then keeps syncing, and only one that takes nothing ends up `failed`.
        0 if sent else job.watch.attempts,
        now=now,
        retry_after=retry_after,
        max_attempts=job.config.max_retry_attempts,
        base_delay_ms=job.config.retry_base_delay_ms,
        random=random,
    )
    with deps.store.transaction() as tx:
        tx.watches.record_delivery_failure(app_id, repository_id, retry=retry, error=error)
    if retry.failed:
        return Delivered("failed", sent)
    if retry.delay_seconds is not None and retry.delay_seconds <= deliveries.SQS_MAX_DELAY_SECONDS:
        deps.delivery_queue.request_delivery(app_id, repository_id, delay_seconds=retry.delay_seconds)
    # A longer wait stays in next_attempt_at, where the sweep finds it.
    return Delivered("retrying", sent)


def _notify_sync_failed(job: _Job) -> None:
    """Best effort, once per circuit opening: taken first, so a failure here is never retried."""
    deps, repository = job.deps, job.repository
    with deps.store.transaction() as tx:
        opened_at = tx.watches.take_sync_failed(job.app.id, repository.id)
    if opened_at is None or repository.circuit_open_until is None:
        return
    body = webhooks.sync_failed_body(
        job.ref,
        repository.last_error or "the repository could not be read",
        repository.consecutive_failures,
        job.config.circuit_breaker_threshold,
        repository.circuit_open_until,
        repository.consecutive_failures,
        job.clock(),
    )
    delivery_id = webhooks.delivery_id(job.app.id, repository.id, "", opened_at.isoformat(), "sync_failed")
    _, attempt = _post(
        job, "sync_failed", None, delivery_id, [(delivery_id, body)], timeout=job.config.sync_failed_timeout
    )
    _record_attempt(job, attempt)


def _content_missing(job: _Job, change: Change) -> None:
    """The bucket lost the content (expired, deleted): a refreshing scan uploads it again and fans out."""
    deps = job.deps
    logger.warning("content missing", extra={"repository_id": job.repository.id, "sha256": change.sha256.hex()})
    retry = deliveries.Retry(job.watch.attempts, failed=False, delay_seconds=None, next_attempt_at=None)
    with deps.store.transaction() as tx:
        tx.watches.record_delivery_failure(
            job.app.id, job.repository.id, retry=retry, error="file content is missing; a rescan was requested"
        )
    deps.scan_queue.request_scan(job.repository.id, job.clock(), refresh=True)


def _attempt(
    job: _Job, path: str | None, event: str, delivery_id: str, result: WebhookResult, duration_ms: int
) -> Attempt:
    return Attempt(
        id=None,
        path=path,
        event=event,
        delivery_id=delivery_id,
        attempt=job.watch.attempts + 1,
        status_code=result.status_code,
        error=None
        if retry_schedule.classify_status(result.status_code) == retry_schedule.DELIVERED
        else _describe(result),
        duration_ms=duration_ms,
        attempted_at=job.clock(),
    )


def _record_attempt(job: _Job, attempt: Attempt) -> None:
    try:
        with job.deps.store.transaction() as tx:
            tx.deliveries.log_attempt(job.app.id, job.repository.id, attempt)
    except errors.NotFound:
        pass  # the watch went away mid-job; its log went with it


def _describe(result: WebhookResult) -> str:
    if result.status_code is None:
        return result.error or "no answer"
    if 300 <= result.status_code < 400:
        return f"the receiver answered {result.status_code} (redirects are not followed)"
    return f"the receiver answered {result.status_code}"
