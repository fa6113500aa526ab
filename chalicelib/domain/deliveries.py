"""What a watch lacks and what to do after each attempt to send it (docs/protocol.md §1.1 and §1.5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain import retry_schedule
from chalicelib.domain.bundles import BundleSlot

EVENT_ORDER = {"delete": 0, "create": 1, "update": 2}
# SQS delays a message by at most 15 minutes; longer waits are kept in Postgres for the sweep.
SQS_MAX_DELAY_SECONDS = 900
# A failed watch (out of attempts) is tried once more after this, then after twice as long each time, up to the cap:
# a receiver that is down for days gets about one request an hour, not a burst at every change.
FAILED_RETRY_FIRST = timedelta(minutes=1)
FAILED_RETRY_CAP = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Change:
    """One file the app lacks: sent as `event`, acknowledged into the ledger as (path, sha256)."""

    event: str  # create, update or delete
    path: str
    sha256: bytes  # the new content's; for a delete, the sha the app last acknowledged
    previous_sha256: bytes | None  # updates only: what the app holds now
    size: int | None
    is_binary: bool
    slot: BundleSlot | None = None  # where the new content is stored, when in a bundle


@dataclass(frozen=True)
class Retry:
    """What happens to a watch after a failed attempt."""

    attempts: int
    failed: bool  # out of attempts: `failed` until the next change, a request, or `next_attempt_at`
    delay_seconds: int | None  # when to try again, through the queue; None when failed (the sweep retries it)
    next_attempt_at: datetime | None


def in_protocol_order(changes: list[Change]) -> list[Change]:
    """Deletes, then creates, then updates; within each, by path in byte order."""
    return sorted(changes, key=protocol_order_key)


def protocol_order_key(change: Change) -> tuple[int, bytes]:
    return EVENT_ORDER[change.event], change.path.encode("utf-8")


def plan_retry(
    attempts_before: int,
    *,
    now: datetime,
    retry_after: int | None,
    max_attempts: int,
    base_delay_ms: int,
    random: Callable[[], float],
) -> Retry:
    """Count this failure and choose the wait: the receiver's Retry-After when it gave one, else backoff; out of
    attempts, a long wait that doubles with each failed round (docs/protocol.md §1.5)."""
    attempts = attempts_before + 1
    if attempts >= max_attempts:
        rounds = min(attempts - max_attempts, 16)  # past 16 doublings the cap has long won
        wait = min(FAILED_RETRY_CAP, FAILED_RETRY_FIRST * 2**rounds)
        return Retry(attempts, failed=True, delay_seconds=None, next_attempt_at=now + wait)
    if retry_after is not None:
        seconds = retry_after
    else:
        seconds = -(-retry_schedule.backoff_delay_ms(attempts, base_delay_ms, random=random) // 1000)
    return Retry(attempts, failed=False, delay_seconds=seconds, next_attempt_at=now + timedelta(seconds=seconds))


@dataclass(frozen=True)
class Attempt:
    """One try to send one webhook, as the attempt log keeps it."""

    id: int | None
    path: str | None
    event: str
    delivery_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    attempted_at: datetime
