"""Checking heads: when each repository is next due, and what one check's answer means for it.

A check is one `ls-refs` request. A head that did not move costs nothing more: the repository's row gets its check
time, its next check and its circuit, written with the rest of its batch. A moved head, or a repository that was
never snapshotted, is owed a scan. A failure counts toward the circuit breaker exactly as a failed scan does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain import circuit_breaker
from chalicelib.domain.circuit_breaker import Circuit

# Pushes arrive for repositories whose GitHub webhook points here; within this long of the last one, polling is only
# the fallback for pushes GitHub failed to send.
PUSHES_RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class CheckTarget:
    """A repository claimed for a check, with what deciding on the answer needs."""

    repository_id: str
    owner: str
    name: str
    branch: str
    is_private: bool
    last_head: str | None  # the snapshot's commit; None: never snapshotted
    token_encrypted: str | None  # a watching app's GitHub token, for a private repository
    circuit: Circuit
    last_push_at: datetime | None


@dataclass(frozen=True)
class HeadProbe:
    key: str  # the caller's name for it: the repository id
    url: str
    branch: str
    token: str | None


@dataclass(frozen=True)
class ProbedHead:
    key: str
    head: str | None  # None: the branch or the repository has no commit, or the check failed (`error` says why)
    error: str | None


@dataclass(frozen=True)
class CheckPolicy:
    poll_interval: timedelta  # RESCAN_INTERVAL_MS
    push_fallback_interval: timedelta  # PUSH_FALLBACK_INTERVAL_MS, for repositories with recent pushes
    jitter: float  # a check comes up to this fraction of its interval early, which spreads bursts over time
    circuit_breaker_threshold: int
    circuit_breaker_cooldown: timedelta


@dataclass(frozen=True)
class CheckRecord:
    """What one check writes on its repository's row, and what it leads to."""

    repository_id: str
    next_check_at: datetime
    circuit: Circuit
    error: str | None
    scan_owed: bool  # the head moved, or the repository was never snapshotted
    circuit_opened: bool  # this failure opened the circuit: each watching app is owed one sync_failed


def interval_for(target: CheckTarget, *, now: datetime, policy: CheckPolicy) -> timedelta:
    """Push first: a repository that had a verified push lately is polled only as a fallback."""
    pushed_lately = target.last_push_at is not None and now - target.last_push_at < PUSHES_RECENT
    return policy.push_fallback_interval if pushed_lately else policy.poll_interval


def next_check_at(now: datetime, interval: timedelta, *, jitter: float, random: Callable[[], float]) -> datetime:
    """Within the interval, up to `jitter` of it early: repositories registered together drift apart, so every sweep
    gets about the same share of checks instead of all of them every `interval`."""
    return now + interval * (1 - jitter * random())


def after_check(
    target: CheckTarget, probed: ProbedHead, *, now: datetime, policy: CheckPolicy, random: Callable[[], float]
) -> CheckRecord:
    next_at = next_check_at(now, interval_for(target, now=now, policy=policy), jitter=policy.jitter, random=random)
    if probed.head is None:
        error = probed.error or f"branch {target.branch} not found"
        after = circuit_breaker.after_failure(
            target.circuit,
            now=now,
            threshold=policy.circuit_breaker_threshold,
            cooldown=policy.circuit_breaker_cooldown,
        )
        return CheckRecord(target.repository_id, next_at, after.circuit, error, False, after.opened)
    if probed.head != target.last_head:
        # The scan owed closes the circuit when it succeeds; until then the repository keeps its state.
        return CheckRecord(target.repository_id, next_at, target.circuit, None, True, False)
    return CheckRecord(target.repository_id, next_at, circuit_breaker.CLOSED, None, False, False)
