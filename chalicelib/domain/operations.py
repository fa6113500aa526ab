"""Operator bulk actions: many watches retried or resynced in batches, with progress and cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

KINDS = ("retry_failed", "resync")


@dataclass(frozen=True)
class Operation:
    id: str
    kind: str
    app_id: str | None
    status: str  # running, done, cancelled
    total: int
    done: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ListQuery:
    """One page of an operator list: search text, sort column, order, and the window."""

    search: str | None
    sort: str
    descending: bool
    limit: int
    offset: int


@dataclass(frozen=True)
class ListPage:
    items: list[dict[str, object]]
    total: int


def like_pattern(search: str) -> str:
    """A LIKE pattern matching `search` anywhere, with LIKE's own wildcards taken literally."""
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
