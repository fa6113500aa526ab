"""The minute-by-minute sweep: due rescans, due retries, work left behind, and operator bulk actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.ports import Deps
from chalicelib.services import operations


@dataclass(frozen=True)
class SweepConfig:
    rescan_interval: timedelta = timedelta(minutes=5)
    batch_size: int = 500  # per kind of work and sweep; also each bulk operation's step
    stuck_after: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SweepReport:
    scans: int = 0
    retries: int = 0
    recovered: int = 0
    operation_steps: int = 0
    skipped: bool = False  # another sweep was running


def sweep(*, now: datetime, config: SweepConfig, deps: Deps) -> SweepReport:
    """Enqueue what is due, in bounded batches. Running twice at once, or twice in a row, changes nothing.

    The sweep holds a lock, and every enqueue is claimed in Redis first: a repository whose scan is
    already waiting in the queue is not enqueued again until that claim expires.
    """
    with deps.locks.hold("sweep") as held:
        if not held:
            return SweepReport(skipped=True)
        return SweepReport(
            scans=_enqueue_due_scans(now=now, config=config, deps=deps),
            retries=_enqueue_due_retries(now=now, config=config, deps=deps),
            recovered=_recover_left_behind(now=now, config=config, deps=deps),
            operation_steps=operations.advance_running(now=now, batch_size=config.batch_size, deps=deps),
        )


def _enqueue_due_scans(*, now: datetime, config: SweepConfig, deps: Deps) -> int:
    interval = config.rescan_interval
    with deps.store.transaction() as tx:
        due = tx.repositories.due_for_scan(checked_before=now - interval, now=now, limit=config.batch_size)
    claim_seconds = max(1, min(int(interval.total_seconds()), 900))
    enqueued = 0
    for repository_id in due:
        if deps.locks.claim(f"scan:{repository_id}", seconds=claim_seconds):
            deps.scan_queue.request_scan(repository_id, now)
            enqueued += 1
    return enqueued


def _enqueue_due_retries(*, now: datetime, config: SweepConfig, deps: Deps) -> int:
    with deps.store.transaction() as tx:
        due = tx.watches.due_retries(now=now, limit=config.batch_size)
    return _enqueue_deliveries(due, claim_seconds=60, deps=deps)


def _recover_left_behind(*, now: datetime, config: SweepConfig, deps: Deps) -> int:
    """Watches a crashed job left `syncing`, or whose delivery request was lost, get a new request.

    A job that is still running holds the watch's lock, so the request it gets is harmless: it finds
    the lock taken and leaves word. Expired locks need nothing: their TTL already freed them.
    """
    stuck_after = config.stuck_after
    with deps.store.transaction() as tx:
        stuck = tx.watches.left_behind(updated_before=now - stuck_after, now=now, limit=config.batch_size)
        for app_id, repository_id in stuck:
            tx.watches.touch(app_id, repository_id)  # so the next sweep waits a whole period again
    return _enqueue_deliveries(stuck, claim_seconds=int(stuck_after.total_seconds()), deps=deps)


def _enqueue_deliveries(watches: list[tuple[str, str]], *, claim_seconds: int, deps: Deps) -> int:
    enqueued = 0
    for app_id, repository_id in watches:
        if deps.locks.claim(f"deliver:{app_id}:{repository_id}", seconds=max(1, claim_seconds)):
            deps.delivery_queue.request_delivery(app_id, repository_id)
            enqueued += 1
    return enqueued
