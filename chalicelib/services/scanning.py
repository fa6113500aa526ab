"""Scanning a repository: probe the head, fetch trees then new blobs, snapshot, store, fan out to watches."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar

from chalicelib import errors
from chalicelib.domain import binary_detection, circuit_breaker, snapshots
from chalicelib.domain.bundles import NewContent
from chalicelib.domain.repositories import Repository, Watch
from chalicelib.domain.snapshots import BlobFacts
from chalicelib.ports import Deps

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class ScanConfig:
    git_base_url: str = "https://github.com"
    max_file_bytes: int = 100 * 1024 * 1024
    circuit_breaker_threshold: int = 5
    circuit_breaker_cooldown: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class ScanResult:
    outcome: str  # scanned, unchanged, busy, skipped, failed
    commit: str | None = None
    deliveries: int = 0
    blobs_read: int = 0


def scan_repository(
    repository_id: str, requested_at: datetime, *, now: datetime, config: ScanConfig, deps: Deps, refresh: bool = False
) -> ScanResult:
    """Scan unless a scan that probed the head after the request already covered it.

    One scan runs at a time per repository. A request that finds the lock taken leaves word first and
    tries the lock second, and the holder reads the word after letting go; so either the holder sees
    the word and queues one more scan, or the request gets the lock itself. Nothing is lost, and a
    burst of requests costs one scan.
    """
    lock = f"scan:{repository_id}"
    deps.locks.ask_again(lock, requested_at)
    with deps.locks.hold(lock) as held:
        if not held:
            return ScanResult("busy")
        result = _scan_if_needed(repository_id, requested_at, now=now, config=config, deps=deps, refresh=refresh)
    later = deps.locks.asked_again_since(lock, now)
    if later is not None:
        deps.scan_queue.request_scan(repository_id, later)
    return result


def _scan_if_needed(
    repository_id: str, requested_at: datetime, *, now: datetime, config: ScanConfig, deps: Deps, refresh: bool
) -> ScanResult:
    with deps.store.transaction() as tx:
        repository = tx.repositories.get(repository_id)
        watches = tx.watches.of_repository(repository_id)
        last_commit = None if refresh else tx.snapshots.commit(repository_id)
    if repository is None or not watches:
        return ScanResult("skipped")
    if repository.last_scanned_at is not None and repository.last_scanned_at >= requested_at:
        return ScanResult("skipped")
    circuit = circuit_breaker.Circuit(repository.consecutive_failures, repository.circuit_open_until)
    if circuit.is_open(now):
        return ScanResult("skipped")
    try:
        return _scan(repository, watches, last_commit, now=now, config=config, deps=deps)
    except errors.GitFailure as failure:
        _record_failure(repository, circuit, str(failure), now=now, config=config, deps=deps)
        return ScanResult("failed")


def _scan(
    repository: Repository,
    watches: list[Watch],
    last_commit: str | None,
    *,
    now: datetime,
    config: ScanConfig,
    deps: Deps,
) -> ScanResult:
    token = _github_token(watches, deps=deps)
    url = f"{config.git_base_url}/{repository.owner}/{repository.name}.git"
    head = _git(deps.git.head, url, repository.branch, token)
    if head is None:
        raise errors.GitFailure(f"branch {repository.branch} not found")
    # The scan is recorded last, once the snapshot is stored and the fan-out queued: a scan killed before that has
    # not covered its request, so the queue's retry of it must not be skipped. The retry finds the head stored and
    # fans out.
    if head == last_commit:
        deliveries = _fan_out(repository.id, now=now, deps=deps)
        with deps.store.transaction() as tx:
            tx.repositories.record_scan(repository.id, scanned_at=now)
            if repository.consecutive_failures:
                tx.repositories.record_success(repository.id, head=head)
        return ScanResult("unchanged", head, deliveries=deliveries)
    tree = _git(deps.git.fetch_tree, url, repository.branch, token, since=last_commit, commit=head)
    is_ignored = deps.git.ignore_filter(tree.docoraignore) if tree.docoraignore is not None else None
    selection = snapshots.select_files(tree.entries, is_ignored)
    scope = tree.touched_paths()  # None when the whole tree was listed
    # Read only now that the head has moved, and only the rows of the paths the listing covers.
    with deps.store.transaction() as tx:
        previous = tx.snapshots.files(repository.id, scope)
        if last_commit is None:
            facts = {}  # a refresh forgets what it knew of every blob, so each is read again and the bucket refilled
        elif scope is None:
            facts = snapshots.blob_facts(previous.values())
        else:
            facts = tx.snapshots.blob_facts(repository.id, sorted(set(selection.files.values())))
    unknown = sorted(snapshots.unknown_blobs(selection, facts))
    if unknown:
        blobs = deps.git.read_blobs(url, token, unknown)
        new_contents = _learn_facts(
            blobs, facts, snapshots.first_paths(selection), max_file_bytes=config.max_file_bytes
        )
        placed = deps.contents.put_many(new_contents)
        for blob_id in unknown:
            learnt = facts[blob_id]
            if (slot := placed.get(learnt.sha256.hex())) is not None:
                facts[blob_id] = BlobFacts(learnt.sha256, learnt.size, learnt.is_binary, slot)
    files, skipped = snapshots.build_snapshot(selection, facts, max_file_bytes=config.max_file_bytes)
    delta = snapshots.snapshot_delta(previous, files, skipped, scope=scope)
    with deps.store.transaction() as tx:
        tx.snapshots.apply(repository.id, commit=tree.commit, delta=delta, taken_at=now)
        tx.repositories.record_success(repository.id, head=tree.commit)
    deliveries = _fan_out(repository.id, now=now, deps=deps)
    with deps.store.transaction() as tx:
        tx.repositories.record_scan(repository.id, scanned_at=now)
    return ScanResult("scanned", tree.commit, deliveries=deliveries, blobs_read=len(unknown))


def _learn_facts(
    blobs: Iterator[tuple[str, bytes]], facts: dict[str, BlobFacts], paths: dict[str, str], *, max_file_bytes: int
) -> Iterator[NewContent]:
    """Learn each new blob's facts as it arrives and hand its content on for upload, with its first file's path."""
    while (blob := _git(next, blobs, None)) is not None:
        blob_id, content = blob
        digest = hashlib.sha256(content)
        facts[blob_id] = BlobFacts(
            digest.digest(), len(content), is_binary=not binary_detection.content_is_text(content)
        )
        if len(content) <= max_file_bytes:
            yield NewContent(digest.hexdigest(), content, paths[blob_id])


def _fan_out(repository_id: str, *, now: datetime, deps: Deps) -> int:
    """After the snapshot is committed: one delivery request per watch whose ledger differs from it."""
    with deps.store.transaction() as tx:
        app_ids = tx.watches.needing_delivery(repository_id, now=now)
    deps.delivery_queue.request_deliveries([(app_id, repository_id) for app_id in app_ids])
    return len(app_ids)


def _record_failure(
    repository: Repository,
    circuit: circuit_breaker.Circuit,
    error: str,
    *,
    now: datetime,
    config: ScanConfig,
    deps: Deps,
) -> None:
    after = circuit_breaker.after_failure(
        circuit, now=now, threshold=config.circuit_breaker_threshold, cooldown=config.circuit_breaker_cooldown
    )
    with deps.store.transaction() as tx:
        tx.repositories.record_failure(repository.id, circuit=after.circuit, error=error)
        tx.repositories.record_scan(repository.id, scanned_at=now)
        owed = tx.watches.owe_sync_failed(repository.id, opened_at=now) if after.opened else []
    logger.warning("scan failed", extra={"repository_id": repository.id, "error": error, "opened": after.opened})
    # sync_failed goes out through the delivery consumer like every other webhook, so it is signed,
    # retried and logged the same way, and never waits behind file deliveries (docs/protocol.md §1.7).
    deps.delivery_queue.request_deliveries([(app_id, repository.id) for app_id in owed])


def _github_token(watches: list[Watch], *, deps: Deps) -> str | None:
    """Any watching app's token reads the repository; the most recently registered one is used."""
    for watch in sorted(watches, key=lambda w: w.created_at, reverse=True):
        if watch.github_token_encrypted is not None:
            return deps.cipher.decrypt(watch.github_token_encrypted)
    return None


def _git(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run one git call; its refusals become GitFailure with the adapter's plain message."""
    try:
        return call(*args, **kwargs)
    except (errors.NotFound, errors.Unprocessable, errors.Unavailable) as error:
        raise errors.GitFailure(str(error)) from error
