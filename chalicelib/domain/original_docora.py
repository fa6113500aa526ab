"""The original TypeScript Docora's rows, as the importer reads them, and the rules that turn them into Docora's.

docs/migrating.md is the operator's side of this; ORIGINAL-SCHEMA.md (the team's notes) describes the source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

# Every column the importer reads, by table, with the Liquibase changeset that made the table's final state.
READ_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "apps": (
        "001 and 004-01",
        (
            "app_id",
            "token_hash",
            "app_name",
            "base_url",
            "email",
            "website",
            "description",
            "created_at",
            "updated_at",
            "client_auth_key_encrypted",
        ),
    ),
    "repositories": (
        "002-repositories and 005-01",
        (
            "repository_id",
            "github_url",
            "owner",
            "name",
            "is_private",
            "created_at",
            "consecutive_failures",
            "circuit_open_until",
        ),
    ),
    "app_repositories": (
        "002-app-repositories and 003-01",
        (
            "app_id",
            "repository_id",
            "github_token_encrypted",
            "created_at",
            "status",
            "retry_count",
            "last_error",
            "last_scanned_at",
        ),
    ),
    "repository_snapshots": ("003-02", ("repository_id", "commit_sha", "branch")),
    "app_delivered_files": ("006-01", ("app_id", "repository_id", "file_path", "file_sha", "delivered_at")),
}

# The original tracked one branch per repository: its snapshot's, `main` before the first snapshot.
DEFAULT_BRANCH = "main"
# Imported apps keep the original's strictly sequential delivery (docs/protocol.md §1.5).
IMPORTED_MAX_IN_FLIGHT = 1

_APP_ID = re.compile(r"app_[0-9a-f]{24}")
_REPOSITORY_ID = re.compile(r"repo_[0-9a-f]{24}")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_BCRYPT = re.compile(r"\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}")
_STATUSES = {"pending_snapshot": "pending", "scanning": "pending", "synced": "synced", "failed": "failed"}


@dataclass(frozen=True)
class OriginalApp:
    app_id: str
    app_name: str
    base_url: str
    email: str
    website: str | None
    description: str | None
    token_hash: str
    client_auth_key_encrypted: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class OriginalRepository:
    repository_id: str
    github_url: str
    owner: str
    name: str
    is_private: bool
    consecutive_failures: int
    circuit_open_until: datetime | None
    created_at: datetime
    branch: str | None  # of its snapshot; None before the first one
    commit_sha: str | None


@dataclass(frozen=True)
class OriginalWatch:
    app_id: str
    repository_id: str
    github_token_encrypted: str | None
    status: str
    retry_count: int
    last_error: str | None
    last_scanned_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class LedgerEntry:
    repository_id: str
    path: str
    sha256: str  # hex, as the original stored it
    delivered_at: datetime


@dataclass(frozen=True)
class ImportedWatch:
    """A watch as Docora stores it."""

    app_id: str
    repository_id: str
    github_token_encrypted: str | None
    status: str
    attempts: int
    last_error: str | None
    last_commit_sha: str | None
    last_synced_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class AppImport:
    """One app with everything that hangs off it: written in one transaction, so an interrupted import leaves whole
    apps."""

    app: OriginalApp
    base_url: str
    paused_reason: str | None  # set: imported paused, for this reason
    repositories: tuple[OriginalRepository, ...]
    watches: tuple[ImportedWatch, ...]
    ledger: tuple[LedgerEntry, ...]


def schema_problems(found: Mapping[str, set[str]]) -> list[str]:
    """What the source lacks of the original's final schema, one sentence per table; [] when it has all of it."""
    problems = []
    for table, (changesets, columns) in READ_COLUMNS.items():
        have = found.get(table)
        if not have:
            problems.append(f"table {table} is missing (changeset {changesets})")
            continue
        missing = [column for column in columns if column not in have]
        if missing:
            problems.append(f"table {table} lacks column(s) {', '.join(missing)} (changeset {changesets})")
    return problems


def app_problem(app: OriginalApp) -> str | None:
    """Why Docora cannot take this app at all, or None."""
    if not _APP_ID.fullmatch(app.app_id):
        return "app_id is not app_ followed by 24 hex characters"
    if not _BCRYPT.fullmatch(app.token_hash):
        return "token_hash is not a bcrypt hash, so no token could ever authenticate"
    return None


def repository_problem(repository: OriginalRepository) -> str | None:
    if not _REPOSITORY_ID.fullmatch(repository.repository_id):
        return "repository_id is not repo_ followed by 24 hex characters"
    if not repository.owner or not repository.name:
        return "owner or name is empty"
    if repository.consecutive_failures < 0:
        return "consecutive_failures is negative"
    return None


def branch_of(repository: OriginalRepository) -> str:
    return repository.branch or DEFAULT_BRANCH


def imported_watch(watch: OriginalWatch, repository: OriginalRepository) -> tuple[ImportedWatch, str | None]:
    """The watch with its status mapped, and a note when the status was not one the original used."""
    status = _STATUSES.get(watch.status)
    note = None if status else f"status {watch.status!r} is not one the original used; imported as pending"
    synced = status == "synced"
    imported = ImportedWatch(
        app_id=watch.app_id,
        repository_id=watch.repository_id,
        github_token_encrypted=watch.github_token_encrypted,
        status=status or "pending",
        attempts=max(watch.retry_count, 0),
        last_error=watch.last_error if status == "failed" else None,
        last_commit_sha=repository.commit_sha if synced else None,
        last_synced_at=watch.last_scanned_at if synced else None,
        created_at=watch.created_at,
    )
    return imported, note


def is_sha256_hex(value: str) -> bool:
    return _SHA256_HEX.fullmatch(value) is not None
