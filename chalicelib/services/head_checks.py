"""Head checks in bulk: has each due repository's branch moved? Only those that moved (or never got a scan) go on
to the scan queue; a quiet repository costs one `ls-refs` request and a share of two statements.

Checks are claimed in Postgres (a lease on each row), so sweeps may run side by side and one killed midway loses
nothing: its unrecorded claims lapse and the next sweep takes those repositories again. Results are recorded as
they come, a batch at a time, so a repository that hangs until its timeout holds up no other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from chalicelib.domain import head_checks
from chalicelib.domain.head_checks import CheckPolicy, CheckRecord, CheckTarget, HeadProbe, ProbedHead
from chalicelib.ports import Deps

logger = logging.getLogger(__name__)

# Claims last long enough for a batch's slowest check (its timeout) and its recording, with room to spare.
_CLAIM_LEASE = timedelta(minutes=2)
# Stop taking new batches this long before the function's time runs out: the last batch must finish.
_MARGIN_MS = 15_000


@dataclass(frozen=True)
class HeadCheckConfig:
    git_base_url: str
    policy: CheckPolicy
    batch_size: int = 500  # repositories claimed at a time
    record_every: int = 100  # results written per statement


@dataclass
class CheckReport:
    checked: int = 0
    unchanged: int = 0
    moved: int = 0  # scans owed: moved heads, and repositories never snapshotted
    failed: int = 0
    oldest_overdue: timedelta = field(default_factory=timedelta)


def check_due_heads(
    *,
    clock: Callable[[], datetime],
    time_left_ms: Callable[[], int],
    random: Callable[[], float],
    config: HeadCheckConfig,
    deps: Deps,
) -> CheckReport:
    """Check every due repository, oldest first, while the function has time; say how far behind the oldest is."""
    report = CheckReport()
    while time_left_ms() > _MARGIN_MS:
        now = clock()
        with deps.store.transaction() as tx:
            targets = tx.repositories.claim_due_checks(now=now, until=now + _CLAIM_LEASE, limit=config.batch_size)
        if not targets:
            break
        _check(targets, clock=clock, random=random, config=config, deps=deps, report=report)
    now = clock()
    with deps.store.transaction() as tx:
        oldest_due = tx.repositories.oldest_due_check(now=now)
    report.oldest_overdue = max(timedelta(), now - oldest_due) if oldest_due is not None else timedelta()
    return report


def _check(
    targets: list[CheckTarget],
    *,
    clock: Callable[[], datetime],
    random: Callable[[], float],
    config: HeadCheckConfig,
    deps: Deps,
    report: CheckReport,
) -> None:
    by_id = {target.repository_id: target for target in targets}
    for answers in _in_batches(deps.heads.heads(_probes(targets, config=config, deps=deps)), config.record_every):
        answered = [(by_id[probed.key], probed) for probed in answers]
        _record(answered, now=clock(), random=random, config=config, deps=deps, report=report)


def _probes(targets: Iterable[CheckTarget], *, config: HeadCheckConfig, deps: Deps) -> Iterable[HeadProbe]:
    for target in targets:
        # A public repository is read without anyone's token, so no app's token can break another app's sync.
        token = deps.cipher.decrypt(target.token_encrypted) if target.is_private and target.token_encrypted else None
        url = f"{config.git_base_url}/{target.owner}/{target.name}.git"
        yield HeadProbe(target.repository_id, url, target.branch, token)


def _record(
    answered: list[tuple[CheckTarget, ProbedHead]],
    *,
    now: datetime,
    random: Callable[[], float],
    config: HeadCheckConfig,
    deps: Deps,
    report: CheckReport,
) -> None:
    records = [
        head_checks.after_check(target, probed, now=now, policy=config.policy, random=random)
        for target, probed in answered
    ]
    opened = [record.repository_id for record in records if record.circuit_opened]
    with deps.store.transaction() as tx:
        tx.repositories.record_checks(records, checked_at=now)
        owed_notices = [(app_id, rid) for rid in opened for app_id in tx.watches.owe_sync_failed(rid, opened_at=now)]
    # A scan asked for twice (a push and a check at once) runs once: the second finds the first covered it.
    deps.scan_queue.request_scans([record.repository_id for record in records if record.scan_owed], now)
    # sync_failed goes out through the delivery consumer, signed, retried and logged like every webhook.
    deps.delivery_queue.request_deliveries(owed_notices)
    _count(records, report)
    for record in records:
        if record.error is not None:
            logger.warning("head check failed", extra={"repository_id": record.repository_id, "error": record.error})


def _in_batches(items: Iterable[ProbedHead], size: int) -> Iterator[list[ProbedHead]]:
    batch: list[ProbedHead] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count(records: list[CheckRecord], report: CheckReport) -> None:
    report.checked += len(records)
    report.failed += sum(1 for record in records if record.error is not None)
    report.moved += sum(1 for record in records if record.scan_owed)
    report.unchanged += sum(1 for record in records if record.error is None and not record.scan_owed)
