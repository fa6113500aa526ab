"""The minute-by-minute sweep: due retries, work left behind, operator bulk actions, then the due head checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.ports import Deps
from chalicelib.services import head_checks, operations
from chalicelib.services.head_checks import CheckReport, HeadCheckConfig


@dataclass(frozen=True)
class SweepConfig:
    head_checks: HeadCheckConfig
    batch_size: int = 500  # retries and recoveries per sweep; also each bulk operation's step
    stuck_after: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SweepReport:
    checks: CheckReport = field(default_factory=CheckReport)
    retries: int = 0
    recovered: int = 0
    operation_steps: int = 0
    skipped: bool = False  # another sweep was running


def sweep(
    *,
    clock: Callable[[], datetime],
    time_left_ms: Callable[[], int],
    random: Callable[[], float],
    config: SweepConfig,
    deps: Deps,
) -> SweepReport:
    """Enqueue what is due, in bounded batches, then check heads while time lasts.

    Running twice at once, or twice in a row, changes nothing: the sweep holds a lock, every delivery it enqueues is
    claimed in Redis first, and each head check is claimed on its row (so a sweep killed midway loses nothing).
    """
    with deps.locks.hold("sweep") as held:
        if not held:
            return SweepReport(skipped=True)
        now = clock()
        retries = _enqueue_due_retries(now=now, config=config, deps=deps)
        recovered = _recover_left_behind(now=now, config=config, deps=deps)
        steps = operations.advance_running(now=now, batch_size=config.batch_size, deps=deps)
        checks = head_checks.check_due_heads(
            clock=clock, time_left_ms=time_left_ms, random=random, config=config.head_checks, deps=deps
        )
        return SweepReport(checks, retries, recovered, steps)


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
    claimed = [
        (app_id, repository_id)
        for app_id, repository_id in watches
        if deps.locks.claim(f"deliver:{app_id}:{repository_id}", seconds=max(1, claim_seconds))
    ]
    deps.delivery_queue.request_deliveries(claimed)
    return len(claimed)
