"""Watched repositories, the watches that tie them to apps, and what the status API shows of both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Repository:
    id: str
    github_url: str
    owner: str
    name: str
    branch: str
    is_private: bool
    consecutive_failures: int
    circuit_open_until: datetime | None
    last_error: str | None
    last_head: str | None
    last_checked_at: datetime | None
    created_at: datetime
    last_scanned_at: datetime | None = None  # the last scan that covered the head
    next_check_at: datetime | None = None
    last_push_at: datetime | None = None  # the last verified GitHub push webhook


@dataclass(frozen=True)
class Watch:
    app_id: str
    repository_id: str
    github_token_encrypted: str | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    last_commit_sha: str | None
    last_synced_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class WatchStatus:
    """One watch as its app sees it: the repository, the sync state, and how far delivery has got."""

    repository: Repository
    watch: Watch
    snapshot_commit_sha: str | None
    files_total: int
    files_delivered: int
    files_pending: int
    deliveries_paused: bool = False
    paused_reason: str | None = None


@dataclass(frozen=True)
class NewRepository:
    id: str
    github_url: str
    owner: str
    name: str
    branch: str
    is_private: bool


@dataclass(frozen=True)
class NewWatch:
    app_id: str
    repository_id: str
    github_token_encrypted: str | None
