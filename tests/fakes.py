"""In-memory stand-ins for every port that does I/O. Unit tests use these, not mocks.

Each one is held to the real adapter's behaviour by a contract test in tests/integration/.
"""

from __future__ import annotations

import copy
import hashlib
import io
import itertools
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from dulwich.ignore import IgnoreFilter, read_ignore_patterns

from chalicelib import errors
from chalicelib.domain import deliveries, github_urls, snapshots
from chalicelib.domain.apps import App, AppChanges, NewApp, PausedBy
from chalicelib.domain.bundles import BundleSlot, NewContent, StoredContent, StoredObjects
from chalicelib.domain.circuit_breaker import Circuit
from chalicelib.domain.deliveries import Attempt, Change, Retry
from chalicelib.domain.git_refs import check_branch_name
from chalicelib.domain.head_checks import CheckRecord, CheckTarget, HeadProbe, ProbedHead
from chalicelib.domain.operations import ListPage, ListQuery, Operation
from chalicelib.domain.operator_sessions import FailedFilter, OperatorSession
from chalicelib.domain.repositories import NewRepository, NewWatch, Repository, Watch, WatchStatus
from chalicelib.domain.snapshots import BlobFacts, FetchedTree, SkippedFile, SnapshotDelta, SnapshotFile, TreeEntry
from chalicelib.ports import GitHubRepository, SlotLease, SlotRequest, Transaction, WebhookResult


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Tables:
    apps: dict[str, tuple[App, bytes | None]] = field(default_factory=dict)
    repositories: dict[str, Repository] = field(default_factory=dict)
    watches: dict[tuple[str, str], Watch] = field(default_factory=dict)
    snapshots: dict[str, tuple[str, dict[str, bytes]]] = field(default_factory=dict)
    ledger: dict[tuple[str, str], dict[str, bytes]] = field(default_factory=dict)
    snapshot_files: dict[str, dict[str, SnapshotFile]] = field(default_factory=dict)
    snapshot_skipped: dict[str, dict[str, SkippedFile]] = field(default_factory=dict)
    snapshot_taken_at: dict[str, datetime] = field(default_factory=dict)
    sync_failed_owed: dict[tuple[str, str], datetime] = field(default_factory=dict)
    check_claims: dict[str, datetime] = field(default_factory=dict)
    attempts: dict[tuple[str, str], list[Attempt]] = field(default_factory=dict)
    updated_at: dict[tuple[str, str], datetime] = field(default_factory=dict)
    operations: dict[str, tuple[Operation, list[tuple[str, str]]]] = field(default_factory=dict)  # and what is left
    last_attempt_id: int = 0  # an identity column: ids keep rising whatever a trim or a delete removes


class InMemoryApps:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def add(self, app: NewApp) -> App:
        if app.id in self._tables.apps or any(lookup == app.token_lookup for _, lookup in self._tables.apps.values()):
            raise errors.Conflict("an app with this id or token already exists")
        stored = App(
            id=app.id,
            app_name=app.app_name,
            email=app.email,
            website=app.website,
            description=app.description,
            base_url=app.base_url,
            token_hash=app.token_hash,
            client_auth_key_encrypted=app.client_auth_key_encrypted,
            delivery_state="active",
            created_at=_now(),
        )
        self._tables.apps[app.id] = (stored, app.token_lookup)
        return stored

    def get(self, app_id: str) -> App | None:
        row = self._tables.apps.get(app_id)
        return row[0] if row else None

    def get_many(self, app_ids: list[str]) -> dict[str, App]:
        return {app_id: self._tables.apps[app_id][0] for app_id in app_ids if app_id in self._tables.apps}

    def by_token_lookup(self, token_lookup: bytes) -> App | None:
        return next((app for app, lookup in self._tables.apps.values() if lookup == token_lookup), None)

    def awaiting_token_lookup(self) -> list[App]:
        waiting = [app for app, lookup in self._tables.apps.values() if lookup is None]
        return sorted(waiting, key=lambda app: (app.created_at, app.id))

    def claim_token_lookup(self, app_id: str, token_lookup: bytes) -> bool:
        app, lookup = self._tables.apps[app_id]
        if lookup is not None:
            return False
        self._tables.apps[app_id] = (app, token_lookup)
        return True

    def add_imported(self, app: App) -> None:
        """What the importer writes: an app with a bcrypt hash and no lookup key yet (the Postgres side is SQL)."""
        self._tables.apps[app.id] = (app, None)

    def record_receiver_answer(self, app_id: str, *, succeeded: bool, timed_out: bool, at: datetime) -> datetime | None:
        app = self.get(app_id)
        if app is None:
            return None
        self._change(
            app_id,
            consecutive_timeouts=app.consecutive_timeouts + 1 if timed_out else 0,
            failing_since=None if succeeded else (app.failing_since or at),
            last_success_at=at if succeeded else app.last_success_at,
        )
        return None if succeeded else (app.failing_since or at)

    def pause(self, app_id: str, *, reason: str, by: PausedBy) -> None:
        self._change(app_id, delivery_state="paused", paused_reason=reason, paused_by=by.value)

    def resume(self, app_id: str) -> None:
        self._change(
            app_id,
            delivery_state="active",
            paused_reason=None,
            paused_by=None,
            consecutive_timeouts=0,
            failing_since=None,
        )

    def set_token(self, app_id: str, *, token_lookup: bytes, token_hash: str) -> None:
        app, _ = self._tables.apps[app_id]
        self._tables.apps[app_id] = (replace(app, token_hash=token_hash), token_lookup)

    def rotate_key(self, app_id: str, *, key_encrypted: str, previous_until: datetime) -> None:
        app, _ = self._tables.apps[app_id]
        self._change(
            app_id,
            client_auth_key_encrypted=key_encrypted,
            previous_client_auth_key_encrypted=app.client_auth_key_encrypted,
            previous_client_auth_key_expires_at=previous_until,
        )

    def update(self, app_id: str, changes: AppChanges) -> None:
        self._change(app_id, **{field: value for field, value in vars(changes).items() if value is not None})

    def delete(self, app_id: str) -> bool:
        if self._tables.apps.pop(app_id, None) is None:
            return False
        for key in [key for key in self._tables.watches if key[0] == app_id]:
            del self._tables.watches[key]
            self._tables.ledger.pop(key, None)
            self._tables.attempts.pop(key, None)
        operations = self._tables.operations.items()
        self._tables.operations = {key: row for key, row in operations if row[0].app_id != app_id}
        return True

    def _change(self, app_id: str, **changes: object) -> None:
        if app_id in self._tables.apps:
            app, lookup = self._tables.apps[app_id]
            self._tables.apps[app_id] = (replace(app, **changes), lookup)


class InMemoryRepositories:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get(self, repository_id: str) -> Repository | None:
        return self._tables.repositories.get(repository_id)

    def find(self, github_url: str, branch: str) -> Repository | None:
        wanted = (github_urls.comparable(github_url), branch)
        return next(
            (
                r
                for r in self._tables.repositories.values()
                if (github_urls.comparable(r.github_url), r.branch) == wanted
            ),
            None,
        )

    def add(self, repository: NewRepository) -> Repository:
        existing = self.find(repository.github_url, repository.branch)
        if existing is not None:
            return existing
        stored = Repository(
            **vars(repository),
            consecutive_failures=0,
            circuit_open_until=None,
            last_error=None,
            last_head=None,
            last_checked_at=None,
            created_at=_now(),
        )
        self._tables.repositories[stored.id] = stored
        return stored

    def delete_if_unwatched(self, repository_id: str) -> bool:
        if (
            any(key[1] == repository_id for key in self._tables.watches)
            or repository_id not in self._tables.repositories
        ):
            return False
        del self._tables.repositories[repository_id]
        self._tables.snapshots.pop(repository_id, None)
        self._tables.snapshot_files.pop(repository_id, None)
        self._tables.snapshot_skipped.pop(repository_id, None)
        return True

    def record_scan(self, repository_id: str, *, scanned_at: datetime) -> None:
        self._update(repository_id, last_checked_at=scanned_at, last_scanned_at=scanned_at)

    def record_push(self, repository_id: str, *, at: datetime) -> None:
        self._update(repository_id, last_push_at=at)

    def record_success(self, repository_id: str, *, head: str) -> None:
        self._update(repository_id, last_head=head, consecutive_failures=0, circuit_open_until=None, last_error=None)

    def record_failure(self, repository_id: str, *, circuit: Circuit, error: str) -> None:
        self._update(
            repository_id,
            consecutive_failures=circuit.consecutive_failures,
            circuit_open_until=circuit.open_until,
            last_error=error,
        )

    def claim_due_checks(self, *, now: datetime, until: datetime, limit: int) -> list[CheckTarget]:
        due = [
            r for r in self._due(now) if r.id not in self._tables.check_claims or self._tables.check_claims[r.id] <= now
        ]
        due.sort(key=lambda r: (r.next_check_at is not None, r.next_check_at or now, r.id))
        claimed = due[:limit]
        self._tables.check_claims.update({r.id: until for r in claimed})
        return [self._target(r) for r in claimed]

    def record_checks(self, records: Sequence[CheckRecord], *, checked_at: datetime) -> None:
        for record in records:
            self._tables.check_claims.pop(record.repository_id, None)
            kept_error = (
                None
                if record.circuit.consecutive_failures == 0
                else self._tables.repositories[record.repository_id].last_error
            )
            self._update(
                record.repository_id,
                last_checked_at=checked_at,
                next_check_at=record.next_check_at,
                consecutive_failures=record.circuit.consecutive_failures,
                circuit_open_until=record.circuit.open_until,
                last_error=record.error if record.error is not None else kept_error,
            )

    def oldest_due_check(self, *, now: datetime) -> datetime | None:
        return min((r.next_check_at or r.created_at for r in self._due(now)), default=None)

    def _due(self, now: datetime) -> list[Repository]:
        watched = {repository_id for _, repository_id in self._tables.watches}
        return [
            r
            for r in self._tables.repositories.values()
            if r.id in watched
            and (r.next_check_at is None or r.next_check_at <= now)
            and (r.circuit_open_until is None or r.circuit_open_until <= now)
        ]

    def _target(self, repository: Repository) -> CheckTarget:
        tokens = [
            w
            for w in self._tables.watches.values()
            if w.repository_id == repository.id and w.github_token_encrypted is not None
        ]
        newest = max(tokens, key=lambda w: w.created_at, default=None)
        return CheckTarget(
            repository.id,
            repository.owner,
            repository.name,
            repository.branch,
            repository.is_private,
            repository.last_head,
            newest.github_token_encrypted if newest else None,
            Circuit(repository.consecutive_failures, repository.circuit_open_until),
            repository.last_push_at,
        )

    def reset_circuit(self, repository_id: str) -> bool:
        if repository_id not in self._tables.repositories:
            return False
        self._update(repository_id, consecutive_failures=0, circuit_open_until=None)
        return True

    def _update(self, repository_id: str, **changes: object) -> None:
        if repository_id in self._tables.repositories:
            self._tables.repositories[repository_id] = replace(self._tables.repositories[repository_id], **changes)


class InMemoryWatches:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def get(self, app_id: str, repository_id: str) -> Watch | None:
        return self._tables.watches.get((app_id, repository_id))

    def get_many(self, repository_id: str, app_ids: list[str]) -> dict[str, Watch]:
        found = ((app_id, self._tables.watches.get((app_id, repository_id))) for app_id in app_ids)
        return {app_id: watch for app_id, watch in found if watch is not None}

    def add(self, watch: NewWatch) -> Watch:
        key = (watch.app_id, watch.repository_id)
        if key not in self._tables.watches:
            if watch.app_id not in self._tables.apps or watch.repository_id not in self._tables.repositories:
                raise errors.Conflict("the app or the repository no longer exists")
            self._tables.watches[key] = Watch(
                **vars(watch),
                status="pending",
                attempts=0,
                last_error=None,
                next_attempt_at=None,
                last_commit_sha=None,
                last_synced_at=None,
                created_at=_now(),
            )
        return self._tables.watches[key]

    def delete(self, app_id: str, repository_id: str) -> bool:
        self._tables.ledger.pop((app_id, repository_id), None)
        self._tables.attempts.pop((app_id, repository_id), None)
        return self._tables.watches.pop((app_id, repository_id), None) is not None

    def set_github_token(self, app_id: str, repository_id: str, token_encrypted: str | None) -> None:
        key = (app_id, repository_id)
        if key in self._tables.watches:
            self._tables.watches[key] = replace(self._tables.watches[key], github_token_encrypted=token_encrypted)

    def status(self, app_id: str, repository_id: str) -> WatchStatus | None:
        watch = self.get(app_id, repository_id)
        return None if watch is None else self._status(watch)

    def statuses(self, app_id: str) -> list[WatchStatus]:
        watches = [w for (owner, _), w in self._tables.watches.items() if owner == app_id]
        return [self._status(w) for w in sorted(watches, key=lambda w: (w.created_at, w.repository_id))]

    def of_repository(self, repository_id: str) -> list[Watch]:
        watches = [w for (_, repo), w in self._tables.watches.items() if repo == repository_id]
        return sorted(watches, key=lambda w: (w.created_at, w.app_id))

    def needing_delivery(self, repository_id: str, *, now: datetime) -> list[str]:
        _, files = self._tables.snapshots.get(repository_id, (None, {}))
        needing = []
        for watch in self.of_repository(repository_id):
            failed = watch.status == "failed"
            waiting = watch.next_attempt_at is not None and watch.next_attempt_at > now and not failed
            paused = self._tables.apps[watch.app_id][0].delivery_state == "paused"
            if self._tables.ledger.get((watch.app_id, repository_id), {}) != files and not waiting and not paused:
                status = watch.status if watch.status == "syncing" else "pending"
                self._tables.watches[(watch.app_id, repository_id)] = replace(
                    watch,
                    status=status,
                    attempts=0 if failed else watch.attempts,
                    next_attempt_at=None if failed else watch.next_attempt_at,
                )
                needing.append(watch.app_id)
        return sorted(needing)

    def due_retries(self, *, now: datetime, limit: int) -> list[tuple[str, str]]:
        due = [
            w
            for w in self._tables.watches.values()
            if w.next_attempt_at is not None
            and w.next_attempt_at <= now
            and w.status in ("pending", "failed")
            and self._active(w)
        ]
        return [(w.app_id, w.repository_id) for w in sorted(due, key=lambda w: w.next_attempt_at)[:limit]]

    def left_behind(self, *, updated_before: datetime, now: datetime, limit: int) -> list[tuple[str, str]]:
        stuck = [
            w
            for w in self._tables.watches.values()
            if w.status in ("pending", "syncing")
            and self._tables.updated_at.get((w.app_id, w.repository_id), w.created_at) < updated_before
            and (w.next_attempt_at is None or w.next_attempt_at <= now)
            and self._active(w)
            and w.repository_id in self._tables.snapshots
        ]
        return [(w.app_id, w.repository_id) for w in stuck[:limit]]

    def reset_for_retry(self, app_id: str, repository_id: str) -> bool:
        if (app_id, repository_id) not in self._tables.watches:
            return False
        self._update(app_id, repository_id, status="pending", attempts=0, last_error=None, next_attempt_at=None)
        return True

    def touch(self, app_id: str, repository_id: str) -> None:
        self._tables.updated_at[(app_id, repository_id)] = datetime.now(UTC)

    def _active(self, watch: Watch) -> bool:
        return self._tables.apps[watch.app_id][0].delivery_state == "active"

    def owe_sync_failed(self, repository_id: str, *, opened_at: datetime) -> list[str]:
        owed = [watch.app_id for watch in self.of_repository(repository_id)]
        self._tables.sync_failed_owed.update({(app_id, repository_id): opened_at for app_id in owed})
        return sorted(owed)

    def start_sync(self, app_id: str, repository_id: str) -> None:
        self._update(app_id, repository_id, status="syncing")

    def finish_sync(self, app_id: str, repository_id: str, *, commit: str | None, at: datetime) -> None:
        self._update(
            app_id,
            repository_id,
            status="synced",
            attempts=0,
            last_error=None,
            next_attempt_at=None,
            last_commit_sha=commit,
            last_synced_at=at,
        )

    def record_delivery_failure(self, app_id: str, repository_id: str, *, retry: Retry, error: str) -> None:
        status = "failed" if retry.failed else "pending"
        self._update(
            app_id,
            repository_id,
            status=status,
            attempts=retry.attempts,
            last_error=error,
            next_attempt_at=retry.next_attempt_at,
        )

    def take_sync_failed(self, app_id: str, repository_id: str) -> datetime | None:
        return self._tables.sync_failed_owed.pop((app_id, repository_id), None)

    def _update(self, app_id: str, repository_id: str, **changes: object) -> None:
        key = (app_id, repository_id)
        if key in self._tables.watches:
            self._tables.watches[key] = replace(self._tables.watches[key], **changes)
            self._tables.updated_at[key] = datetime.now(UTC)

    def _status(self, watch: Watch) -> WatchStatus:
        commit, files = self._tables.snapshots.get(watch.repository_id, (None, {}))
        ledger = self._tables.ledger.get((watch.app_id, watch.repository_id), {})
        delivered = sum(1 for path, sha in ledger.items() if files.get(path) == sha)
        removed = sum(1 for path in ledger if path not in files)
        return WatchStatus(
            repository=self._tables.repositories[watch.repository_id],
            watch=watch,
            snapshot_commit_sha=commit,
            files_total=len(files),
            files_delivered=delivered,
            files_pending=len(files) - delivered + removed,
            deliveries_paused=self._tables.apps[watch.app_id][0].delivery_state == "paused",
            paused_reason=self._tables.apps[watch.app_id][0].paused_reason,
        )


class InMemorySnapshots:
    """Snapshots kept as whole files; `tables.snapshots` mirrors them as path -> sha256 for the status view."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def commit(self, repository_id: str) -> str | None:
        return self._tables.snapshots.get(repository_id, (None, {}))[0]

    def files(self, repository_id: str, paths: list[str] | None = None) -> dict[str, SnapshotFile]:
        files = self._tables.snapshot_files.get(repository_id, {})
        return {path: file for path, file in files.items() if paths is None or path in paths}

    def blob_facts(self, repository_id: str, blob_ids: list[str]) -> dict[str, BlobFacts]:
        files = self._tables.snapshot_files.get(repository_id, {}).values()
        return {blob_id: facts for blob_id, facts in snapshots.blob_facts(files).items() if blob_id in blob_ids}

    def contents_only_in(self, repository_ids: list[str]) -> StoredObjects:
        def objects(ids: Iterable[str]) -> StoredObjects:
            files = [f for rid in ids for f in self._tables.snapshot_files.get(rid, {}).values()]
            contents = {f.sha256.hex() for f in files if f.slot is None}
            return StoredObjects(sorted(contents), sorted({f.slot.bundle for f in files if f.slot is not None}))

        return objects(repository_ids).without(
            objects(rid for rid in self._tables.snapshot_files if rid not in repository_ids)
        )

    def apply(
        self,
        repository_id: str,
        *,
        commit: str,
        delta: SnapshotDelta,
        taken_at: datetime,
    ) -> None:
        files = self._tables.snapshot_files.setdefault(repository_id, {})
        for path in delta.removed:
            files.pop(path, None)
        for file in delta.written:
            if file.path in files:
                raise errors.Conflict(f"{file.path} is already in the snapshot")  # the primary key would refuse it
            files[file.path] = file
        self._tables.snapshots[repository_id] = (commit, {path: f.sha256 for path, f in files.items()})
        self._tables.snapshot_taken_at[repository_id] = taken_at
        skipped = self._tables.snapshot_skipped.setdefault(repository_id, {})
        for path in list(skipped) if delta.scope is None else delta.scope:
            skipped.pop(path, None)
        skipped.update((item.path, item) for item in delta.skipped)


class InMemoryDeliveries:
    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def pending(self, app_id: str, repository_id: str) -> list[Change]:
        files = self._tables.snapshot_files.get(repository_id, {})
        ledger = self._tables.ledger.get((app_id, repository_id), {})
        changes = [Change("delete", path, sha, None, None, False) for path, sha in ledger.items() if path not in files]
        for path, file in files.items():
            if path not in ledger:
                changes.append(Change("create", path, file.sha256, None, file.size, file.is_binary, file.slot))
            elif ledger[path] != file.sha256:
                changes.append(Change("update", path, file.sha256, ledger[path], file.size, file.is_binary, file.slot))
        return deliveries.in_protocol_order(changes)

    def forget_all(self, app_id: str, repository_id: str) -> None:
        self._tables.ledger.pop((app_id, repository_id), None)

    def forget_snapshot_paths(self, app_id: str, repository_id: str) -> None:
        files = self._tables.snapshot_files.get(repository_id, {})
        ledger = self._tables.ledger.get((app_id, repository_id), {})
        for path in [path for path in ledger if path in files]:
            del ledger[path]

    def log_attempt(self, app_id: str, repository_id: str, attempt: Attempt) -> None:
        if (app_id, repository_id) not in self._tables.watches:
            raise errors.NotFound("the watch no longer exists")
        log = self._tables.attempts.setdefault((app_id, repository_id), [])
        self._tables.last_attempt_id += 1
        log.append(replace(attempt, id=self._tables.last_attempt_id))

    def trim_attempts(self, app_id: str, repository_id: str, *, keep: int) -> None:
        log = self._tables.attempts.get((app_id, repository_id), [])
        del log[: max(0, len(log) - keep)]

    def attempts(self, app_id: str, repository_id: str, *, limit: int, before: int | None) -> list[Attempt]:
        log = self._tables.attempts.get((app_id, repository_id), [])
        newest_first = [a for a in reversed(log) if before is None or (a.id or 0) < before]
        return newest_first[:limit]


class InMemoryOperations:
    """Bulk operations, each with the watches it has still to do, taken from the front."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def create(
        self, operation_id: str, *, kind: str, app_id: str | None, watches: list[tuple[str, str]], now: datetime
    ) -> None:
        operation = Operation(operation_id, kind, app_id, "running", len(watches), 0, now, now)
        self._tables.operations[operation_id] = (operation, list(watches))

    def get(self, operation_id: str) -> Operation | None:
        row = self._tables.operations.get(operation_id)
        return row[0] if row else None

    def take(self, operation_id: str, *, count: int, now: datetime) -> list[tuple[str, str]]:
        operation, remaining = self._tables.operations.get(operation_id, (None, []))
        if operation is None or operation.status != "running":
            return []
        taken, rest = remaining[:count], remaining[count:]
        status = "running" if rest else "done"  # an operation over no watches is done at its first take
        advanced = replace(operation, status=status, done=operation.done + len(taken), updated_at=now)
        self._tables.operations[operation_id] = (advanced, rest)
        return taken

    def cancel(self, operation_id: str, *, now: datetime) -> bool:
        operation = self.get(operation_id)
        if operation is None or operation.status != "running":
            return False
        self._tables.operations[operation_id] = (replace(operation, status="cancelled", updated_at=now), [])
        return True

    def running(self, *, limit: int) -> list[str]:
        running = [operation for operation, _ in self._tables.operations.values() if operation.status == "running"]
        return [operation.id for operation in sorted(running, key=lambda operation: operation.created_at)[:limit]]

    def recent(self, *, limit: int) -> list[Operation]:
        operations = sorted((operation for operation, _ in self._tables.operations.values()), key=lambda o: o.id)
        return sorted(operations, key=lambda operation: operation.created_at, reverse=True)[:limit]


@dataclass(frozen=True)
class _OperatorList:
    searched: tuple[str, ...]
    sorts: dict[str, str]  # each sortable name and the column it orders by
    key: tuple[str, ...]  # orders rows that share the sort value, which the SQL leaves to chance


# As chalicelib/adapters/postgres_admin.py declares them; "attempted_at" orders by the attempt's id, as the SQL does.
_OPERATOR_LISTS = {
    "apps": _OperatorList(
        ("id", "app_name", "email", "base_url"),
        {
            "created_at": "created_at",
            "app_name": "app_name",
            "email": "email",
            "failing_since": "failing_since",
            "last_success_at": "last_success_at",
        },
        ("id",),
    ),
    "repositories": _OperatorList(
        ("id", "github_url"),
        {
            "created_at": "created_at",
            "github_url": "github_url",
            "last_checked_at": "last_checked_at",
            "consecutive_failures": "consecutive_failures",
        },
        ("id",),
    ),
    "failed_watches": _OperatorList(
        ("app_id", "repository_id", "app_name", "github_url"),
        {"updated_at": "updated_at", "attempts": "attempts"},
        ("app_id", "repository_id"),
    ),
    "attempts": _OperatorList(("app_id", "repository_id", "path", "error"), {"attempted_at": "id"}, ("id",)),
}


class InMemoryAdminViews:
    """The operator's counts and lists, read from the tables the way postgres_admin's SQL reads them."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    def counts(self, *, now: datetime, hour_ago: datetime) -> dict[str, object]:
        apps = [app for app, _ in self._tables.apps.values()]
        repositories = self._tables.repositories.values()
        recent = [a for log in self._tables.attempts.values() for a in log if a.attempted_at > hour_ago]
        statuses = [watch.status for watch in self._tables.watches.values()]
        return {
            "apps": len(apps),
            "paused_apps": sum(app.delivery_state == "paused" for app in apps),
            "repositories": len(repositories),
            "open_circuits": sum(r.circuit_open_until is not None and r.circuit_open_until > now for r in repositories),
            "attempts_last_hour": len(recent),
            "failures_last_hour": sum(attempt.error is not None for attempt in recent),
            "overdue_checks": sum((r.next_check_at or r.created_at) < now - _OVERDUE_AFTER for r in repositories),
            "watches": {status: statuses.count(status) for status in ("pending", "syncing", "synced", "failed")},
        }

    def page(self, name: str, query: ListQuery) -> ListPage:
        listed = _OPERATOR_LISTS[name]
        rows = {
            "apps": self._apps,
            "repositories": self._repositories,
            "failed_watches": self._failed_watches,
            "attempts": self._attempts,
        }[name]()
        if query.search:
            # ILIKE against like_pattern(search): a case-insensitive substring, its % _ and \ taken literally.
            needle = query.search.lower()
            rows = [row for row in rows if any(needle in (row[column] or "").lower() for column in listed.searched)]
        column = listed.sorts[query.sort]
        # NULL sorts after every value, as in Postgres: last ascending, first descending.
        rows.sort(key=lambda row: (row[column] is None, row[column], *(row[k] for k in listed.key)),
                  reverse=query.descending)  # fmt: skip
        return ListPage(items=rows[query.offset : query.offset + query.limit], total=len(rows))

    def sortable(self, name: str) -> tuple[str, ...]:
        return tuple(_OPERATOR_LISTS[name].sorts)

    def failed_watches(self, app_id: str | None) -> list[tuple[str, str]]:
        failed = [key for key, watch in self._tables.watches.items() if watch.status == "failed"]
        return sorted(key for key in failed if app_id is None or key[0] == app_id)

    def watches_of_app(self, app_id: str) -> list[tuple[str, str]]:
        return sorted(key for key in self._tables.watches if key[0] == app_id)

    def failed_page(self, matching: FailedFilter, *, limit: int, offset: int) -> ListPage:
        rows = [row for row in self._failed_watches() if _matches(row, matching)]
        rows.sort(key=lambda row: (row["app_id"], row["repository_id"]))
        rows.sort(key=lambda row: row["updated_at"], reverse=True)
        return ListPage(items=rows[offset : offset + limit], total=len(rows))

    def failed_matching(self, matching: FailedFilter) -> list[tuple[str, str]]:
        matched = [row for row in self._failed_watches() if _matches(row, matching)]
        return sorted((row["app_id"], row["repository_id"]) for row in matched)

    def _apps(self) -> list[dict[str, object]]:
        shown = ("id", "app_name", "email", "base_url", "delivery_state", "paused_reason", "created_at",
                 "failing_since", "last_success_at")  # fmt: skip
        return [
            _columns(app, *shown)
            | {
                "watches": sum(owner == app.id for owner, _ in self._tables.watches),
                "failed_watches": sum(
                    w.status == "failed" for (owner, _), w in self._tables.watches.items() if owner == app.id
                ),
            }
            for app, _ in self._tables.apps.values()
        ]

    def _repositories(self) -> list[dict[str, object]]:
        shown = ("id", "github_url", "branch", "is_private", "last_head", "last_checked_at", "consecutive_failures",
                 "circuit_open_until", "last_error", "created_at")  # fmt: skip
        return [
            _columns(r, *shown, "next_check_at")
            | {
                "watches": sum(watched == r.id for _, watched in self._tables.watches),
                "app_names": self._names_watching(r.id),
            }
            for r in self._tables.repositories.values()
        ]

    def _names_watching(self, repository_id: str) -> list[str]:
        owners = [owner for owner, watched in self._tables.watches if watched == repository_id]
        return [name for name, _ in sorted((self._tables.apps[owner][0].app_name, owner) for owner in owners)[:20]]

    def _failed_watches(self) -> list[dict[str, object]]:
        return [
            _columns(w, "app_id", "repository_id")
            | {
                "app_name": self._tables.apps[w.app_id][0].app_name,
                "github_url": self._tables.repositories[w.repository_id].github_url,
                "attempts": w.attempts,
                "last_error": w.last_error,
                "updated_at": self._tables.updated_at.get(key, w.created_at),
            }
            for key, w in self._tables.watches.items()
            if w.status == "failed"
        ]

    def _attempts(self) -> list[dict[str, object]]:
        shown = ("path", "event", "delivery_id", "attempt", "status_code", "error", "duration_ms", "attempted_at")
        return [
            {"id": a.id, "app_id": app_id, "repository_id": repository_id} | _columns(a, *shown)
            for (app_id, repository_id), log in self._tables.attempts.items()
            for a in log
        ]


def _columns(row: object, *names: str) -> dict[str, object]:
    return {name: getattr(row, name) for name in names}


_OVERDUE_AFTER = timedelta(minutes=2)  # as postgres_admin.OVERDUE_AFTER


def _contains(value: object, text: str | None) -> bool:
    return not text or text.lower() in str(value or "").lower()


def _matches(row: dict[str, Any], matching: FailedFilter) -> bool:
    return (
        (_contains(row["app_id"], matching.app) or _contains(row["app_name"], matching.app))
        and (_contains(row["repository_id"], matching.repository) or _contains(row["github_url"], matching.repository))
        and (matching.error is None or (row["last_error"] is not None and _contains(row["last_error"], matching.error)))
    )


class InMemorySessions:
    """Sessions by id, each gone once its time is up (by the clock the caller passes to `put`, and `now` here)."""

    def __init__(self) -> None:
        self.kept: dict[str, OperatorSession] = {}
        self.now: datetime | None = None  # set by a test to let sessions expire

    def put(self, session: OperatorSession, *, now: datetime) -> None:
        self.kept[session.id] = session

    def get(self, session_id: str) -> OperatorSession | None:
        session = self.kept.get(session_id)
        if session is not None and self.now is not None and session.expires_at <= self.now:
            return None
        return session

    def end(self, session_id: str) -> None:
        self.kept.pop(session_id, None)


class InMemoryStore:
    def __init__(self) -> None:
        self.tables = _Tables()
        self.pings_fail = False
        self._unread_answer: bool | errors.NotFound = True  # what the last acknowledgement's answer will say

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        self._unread_answer = True  # as Store.transaction: an answer left unread belongs to a job that is over
        saved = copy.deepcopy(self.tables)
        try:
            yield Transaction(
                apps=InMemoryApps(self.tables),
                repositories=InMemoryRepositories(self.tables),
                watches=InMemoryWatches(self.tables),
                snapshots=InMemorySnapshots(self.tables),
                deliveries=InMemoryDeliveries(self.tables),
                operations=InMemoryOperations(self.tables),
                admin=InMemoryAdminViews(self.tables),
            )
        except BaseException:
            self.tables.__dict__.update(saved.__dict__)  # roll back, like Postgres would
            raise

    def acknowledge(self, app_id: str, repository_id: str, change: Change, attempt: Attempt) -> bool:
        active = self.settle()
        try:
            with self.transaction() as tx:
                tx.deliveries.log_attempt(app_id, repository_id, attempt)  # NotFound when the watch is gone
                ledger = self.tables.ledger.setdefault((app_id, repository_id), {})
                if change.event == "delete":
                    ledger.pop(change.path, None)
                else:
                    ledger[change.path] = change.sha256
            app = self.tables.apps.get(app_id)
            self._unread_answer = app is not None and app[0].delivery_state == "active"
        except errors.NotFound as refusal:
            self._unread_answer = refusal  # told with the next call, as the real answer is read then
        return active

    def settle(self) -> bool:
        answer, self._unread_answer = self._unread_answer, True
        if isinstance(answer, errors.NotFound):
            raise answer
        return answer

    def ping(self) -> None:
        if self.pings_fail:
            raise errors.Unavailable("the database is not available")


class StaticGitHub:
    """GitHub as a table: repositories by (owner, name), each readable with its token or by anyone."""

    def __init__(self) -> None:
        self.repositories: dict[tuple[str, str], tuple[GitHubRepository, str | None, tuple[str, ...]]] = {}
        self.failure: errors.ServiceError | None = None
        self.calls: list[tuple[str, str, str | None]] = []

    def add(self, owner: str, name: str, *, private: bool = False, token: str | None = None,
            default_branch: str = "main", branches: tuple[str, ...] = ("main",)) -> None:  # fmt: skip
        found = GitHubRepository(owner=owner, name=name, is_private=private, default_branch=default_branch)
        self.repositories[(owner, name)] = (found, token, branches)

    def repository(self, owner: str, name: str, token: str | None) -> GitHubRepository:
        self.calls.append((owner, name, token))
        if self.failure is not None:
            raise self.failure
        return self._readable(owner, name, token)[0]

    def has_branch(self, owner: str, name: str, branch: str, token: str | None) -> bool:
        _, _, branches = self._readable(owner, name, token)
        return branch in branches

    def _readable(self, owner: str, name: str, token: str | None):  # type: ignore[no-untyped-def]
        entry = self.repositories.get((owner, name))
        if entry is None or (entry[0].is_private and entry[1] != token):
            raise errors.NotFound("repository not found, or not readable with the given token")
        return entry


class StaticRepo:
    """One repository of a StaticGitRemote, changed with the same calls as a served TestRepo (docora_local.standins).

    Trees are flat: path -> (mode, object id). Commit ids are made up but stable; blob ids are git's own.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.branches: dict[str, str] = {}
        self.trees: dict[str, dict[bytes, tuple[int, str]]] = {}  # by commit id
        self.blobs: dict[str, bytes] = {}
        self.token: str | None = None  # needed to read it, when set
        self.failure: int | None = None  # the status every request gets, as GitServer.fail_with

    def commit(
        self,
        files: Mapping[str | bytes, bytes | None],
        message: str = "change",
        *,
        symlinks: Mapping[str | bytes, str] | None = None,
        submodules: Mapping[str | bytes, str] | None = None,
        branch: str = "main",
    ) -> str:
        """Write (bytes) or delete (None) files and add symlinks and submodule links on `branch`; the new head."""
        parent = self.branches.get(branch)
        tree = dict(self.trees[parent]) if parent is not None else {}
        for path, content in files.items():
            if content is None:
                tree.pop(_git_path(path), None)
            else:
                tree[_git_path(path)] = (_REGULAR_FILE, self._store(content))
        for path, target in (symlinks or {}).items():
            tree[_git_path(path)] = (_SYMLINK, self._store(target.encode()))  # git keeps a link's target as a blob
        for path, commit_id in (submodules or {}).items():
            tree[_git_path(path)] = (_SUBMODULE, commit_id)
        made_of = repr((self.url, parent, sorted(tree.items()), message, len(self.trees))).encode()
        commit_id = hashlib.sha1(made_of, usedforsecurity=False).hexdigest()
        self.trees[commit_id] = tree
        self.branches[branch] = commit_id
        return commit_id

    def force_push(
        self, files: Mapping[str | bytes, bytes], message: str = "rewritten", *, branch: str = "main"
    ) -> str:
        """Replace the branch with a new root commit holding only `files`."""
        self.branches.pop(branch, None)
        return self.commit(dict(files), message, branch=branch)

    def delete_branch(self, branch: str) -> None:
        del self.branches[branch]

    def head(self, branch: str = "main") -> str:
        return self.branches[branch]

    def require_token(self, token: str | None) -> None:
        self.token = token

    def fail_with(self, status: int | None) -> None:
        """Answer every request as DulwichGit reads a server answering `status`; None recovers.

        404 is a missing repository, 401 and 403 a refused token, anything else a server that is down.
        """
        self.failure = status

    def _store(self, content: bytes) -> str:
        blob_id = hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()
        self.blobs[blob_id] = content
        return blob_id


class StaticGitRemote:
    """Git remotes as a static tree of blobs with moving heads, answering as DulwichGit does.

    Repositories by URL (`add_repo`). `fetch_tree` lists only what changed `since` a commit it listed before for that
    URL, as the adapter's cache allows; `forget_cache` makes it a cold container. `requests` logs every call as
    (method, url, token). Held to DulwichGit by tests/integration/test_git_remote_contract.py.
    """

    def __init__(self) -> None:
        self.repos: dict[str, StaticRepo] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self._listed: dict[str, set[str]] = {}  # by URL, the commits fetch_tree listed: what the cache would hold

    def add_repo(self, url: str) -> StaticRepo:
        """An empty repository at `url`, or the one already there."""
        return self.repos.setdefault(url, StaticRepo(url))

    def forget_cache(self) -> None:
        self._listed.clear()

    def head(self, url: str, branch: str, token: str | None) -> str | None:
        check_branch_name(branch)
        return self._answer("head", url, token).branches.get(branch)

    def fetch_tree(
        self, url: str, branch: str, token: str | None, since: str | None = None, *, commit: str | None = None
    ) -> FetchedTree:
        check_branch_name(branch)
        repo = self._answer("fetch_tree", url, token)
        commit = commit if commit is not None else repo.branches.get(branch)
        if commit is None:
            raise errors.NotFound(f"branch {branch} not found")
        tree, listed = repo.trees[commit], self._listed.setdefault(url, set())
        mode, ignore_id = tree.get(_DOCORAIGNORE, (0, ""))
        docoraignore = repo.blobs[ignore_id] if stat.S_ISREG(mode) else None
        cached = since in listed and repo.trees[since].get(_DOCORAIGNORE) == tree.get(_DOCORAIGNORE)
        listed.add(commit)
        if since is None or not cached:  # the rules decide which files count: a changed .docoraignore lists all
            return FetchedTree(commit, _regular_files(tree), docoraignore)
        old = repo.trees[since]
        removed = [entry.path for entry in _regular_files(old) if not stat.S_ISREG(tree.get(entry.path, (0, ""))[0])]
        changed = [entry for entry in _regular_files(tree) if old.get(entry.path) != (entry.mode, entry.blob_id)]
        return FetchedTree(commit, changed, docoraignore, since=since, removed=removed)

    def read_blobs(self, url: str, token: str | None, blob_ids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        wanted = sorted(set(blob_ids))
        if not wanted:
            return
        repo = self._answer("read_blobs", url, token)
        if not all(blob_id in repo.blobs for blob_id in wanted):
            raise errors.Unavailable("git server did not answer")  # the server refuses the whole fetch
        for blob_id in wanted:
            yield blob_id, repo.blobs[blob_id]

    def ignore_filter(self, patterns: bytes) -> Callable[[bytes], bool]:
        rules = IgnoreFilter(read_ignore_patterns(io.BytesIO(patterns)))
        return lambda path: rules.is_ignored(path.decode("utf-8", "surrogateescape")) is True

    def _answer(self, method: str, url: str, token: str | None) -> StaticRepo:
        """Log the request, then refuse it as DulwichGit reads a refusal, or hand over the repository."""
        self.requests.append((method, url, token))
        repo = self.repos.get(url)
        status = 404 if repo is None else repo.failure
        if status is None and repo is not None and repo.token is not None and token != repo.token:
            status = 401
        if status is None and repo is not None:
            return repo
        if status == 404 or (status in (401, 403) and token is None):
            raise errors.NotFound("repository not found")  # GitHub answers 401 for private and missing alike
        if status in (401, 403):
            raise errors.Unprocessable("GitHub rejected the token")
        raise errors.Unavailable("git server did not answer")


_DOCORAIGNORE = b".docoraignore"
_REGULAR_FILE, _SYMLINK, _SUBMODULE = 0o100644, 0o120000, 0o160000


def _git_path(path: str | bytes) -> bytes:
    """As git stores a name: str paths as the file system gives them (os.fsdecode), so not only UTF-8."""
    return path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")


def _regular_files(tree: Mapping[bytes, tuple[int, str]]) -> list[TreeEntry]:
    """The tree's regular files in git's listing order, which is the byte order of whole paths."""
    return [TreeEntry(path, mode, object_id) for path, (mode, object_id) in sorted(tree.items()) if stat.S_ISREG(mode)]


class RecordingScanQueue:
    def __init__(self) -> None:
        self.requested: list[str] = []
        self.requested_at: list[datetime] = []
        self.refreshing: list[bool] = []
        self.available = True

    def request_scan(self, repository_id: str, requested_at: datetime, *, refresh: bool = False) -> None:
        if not self.available:
            raise errors.Unavailable("queue docora-scan is not available")
        self.requested.append(repository_id)
        self.requested_at.append(requested_at)
        self.refreshing.append(refresh)

    def request_scans(self, repository_ids: Sequence[str], requested_at: datetime) -> None:
        for repository_id in repository_ids:
            self.request_scan(repository_id, requested_at)

    def ping(self) -> None:
        if not self.available:
            raise errors.Unavailable("queue docora-scan is not available")

    def depth(self) -> dict[str, int]:
        return {"waiting": len(self.requested), "in_flight": 0, "delayed": 0}


class CountingRateLimiter:
    """A bucket of `per_minute` tokens per key that never refills: enough to test refusals."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}
        self.available = True

    def acquire(self, key: str, per_minute: int) -> int | None:
        return self.acquire_many(key, per_minute, up_to=1)[1]

    def acquire_many(self, key: str, per_minute: int, *, up_to: int) -> tuple[int, int | None]:
        if not self.available:
            raise errors.Unavailable("the rate limiter is not available")
        taken = min(up_to, per_minute - self.used.get(key, 0))
        if taken < 1:
            return 0, 60
        self.used[key] = self.used.get(key, 0) + taken
        return taken, None

    def ping(self) -> None:
        if not self.available:
            raise errors.Unavailable("redis is not available")


class StaticResolver:
    def __init__(self, addresses: dict[str, list[str]] | None = None) -> None:
        self.table = addresses or {}

    def addresses(self, host: str) -> list[str]:
        return list(self.table.get(host, []))


class RecordingDeliveryQueue:
    def __init__(self) -> None:
        self.requested: list[tuple[str, str, int]] = []

    def request_delivery(self, app_id: str, repository_id: str, delay_seconds: int = 0) -> None:
        self.requested.append((app_id, repository_id, delay_seconds))

    def request_deliveries(self, watches: Sequence[tuple[str, str]]) -> None:
        for app_id, repository_id in watches:
            self.request_delivery(app_id, repository_id)

    @contextmanager
    def working_on(self, receipt_handle: str) -> Iterator[None]:
        yield

    def depth(self) -> dict[str, int]:
        return {"waiting": len(self.requested), "in_flight": 0, "delayed": 0}


class InMemoryContents:
    """Contents up to `bundled_max_bytes` go into one bundle per call, in path order, as S3Contents does."""

    def __init__(self, bundled_max_bytes: int = 1024) -> None:
        self.objects: dict[str, bytes] = {}  # contents of their own, and bundles, by key as in the bucket
        self._bundled_max_bytes = bundled_max_bytes

    def put_many(self, contents: Iterable[NewContent]) -> dict[str, BundleSlot | None]:
        placed: dict[str, BundleSlot | None] = {}
        small: dict[str, NewContent] = {}
        for item in contents:
            placed[item.sha256] = None
            if len(item.content) > self._bundled_max_bytes:
                self.objects.setdefault("sha256/" + item.sha256, item.content)
            else:
                small.setdefault(item.sha256, item)
        members = sorted(small.values(), key=lambda item: item.path.encode())
        bundle = b"".join(item.content for item in members)
        name, offset = hashlib.sha256(bundle).hexdigest(), 0
        for item in members:
            placed[item.sha256] = BundleSlot(name, offset)
            offset += len(item.content)
        if members:
            self.objects.setdefault("bundles/" + name, bundle)
        return placed

    def delete_many(self, objects: StoredObjects) -> None:
        for sha256 in objects.contents:
            self.objects.pop("sha256/" + sha256, None)
        for bundle in objects.bundles:
            self.objects.pop("bundles/" + bundle, None)

    def open(self, content: StoredContent) -> io.BytesIO:
        slot = content.slot
        key = "sha256/" + content.sha256 if slot is None else "bundles/" + slot.bundle
        if key not in self.objects:
            raise errors.NotFound(f"{key} is not in the bucket")
        data = self.objects[key]
        return io.BytesIO(data if slot is None else data[slot.offset : slot.offset + content.size])

    @contextmanager
    def read_each(self, contents: Iterable[StoredContent]) -> Iterator[Iterator[bytes]]:
        yield (self.open(content).read() for content in contents)

    def ping(self) -> None:
        return None


class InMemoryLocks:
    """Locks for one process: taken or not, with word left for their holder."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.asked: dict[str, datetime] = {}
        self.claimed: set[str] = set()  # claims never expire here: enough for one test

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        if name in self.held:
            yield False
            return
        self.held.add(name)
        try:
            yield True
        finally:
            self.held.discard(name)

    def claim(self, name: str, *, seconds: int) -> bool:
        if name in self.claimed:
            return False
        self.claimed.add(name)
        return True

    def ask_again(self, name: str, requested_at: datetime) -> None:
        if requested_at > self.asked.get(name, requested_at - timedelta(seconds=1)):
            self.asked[name] = requested_at

    def asked_again_since(self, name: str, since: datetime) -> datetime | None:
        asked = self.asked.pop(name, None)
        return asked if asked is not None and asked > since else None

    @contextmanager
    def hold_each(self, names: list[str]) -> Iterator[HeldTogether]:
        taken = HeldTogether(self, {name for name in names if name not in self.held})
        self.held |= taken.held
        try:
            yield taken
        finally:
            for name in list(taken.held):
                taken.release(name)


class HeldTogether:
    """Locks InMemoryLocks.hold_each took; each released on its own, or all at the block's end."""

    def __init__(self, locks: InMemoryLocks, names: set[str]) -> None:
        self._locks, self._names = locks, names

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._names)

    def release(self, name: str) -> None:
        if name in self._names:
            self._names.discard(name)
            self._locks.held.discard(name)


class InMemorySlots:
    """Slot leases, lapsing by the time the caller gives."""

    def __init__(self) -> None:
        self.out: dict[str, dict[str, tuple[int, datetime]]] = {}  # name -> lease id -> (slots, lapses at)
        self._ids = itertools.count()

    def take(self, requests: Sequence[SlotRequest], *, now: datetime, seconds: int) -> list[SlotLease]:
        return [self._take_one(request, now, seconds) for request in requests]

    def renew(self, leases: Sequence[SlotLease], *, now: datetime, seconds: int) -> None:
        for lease in leases:
            out = self.out.get(lease.name, {})
            if lease.lease_id in out and out[lease.lease_id][1] > now:
                out[lease.lease_id] = (out[lease.lease_id][0], now + timedelta(seconds=seconds))

    def _take_one(self, request: SlotRequest, now: datetime, seconds: int) -> SlotLease:
        leases = self.out.setdefault(request.name, {})
        for lease_id, (_, lapses_at) in list(leases.items()):
            if lapses_at <= now:
                del leases[lease_id]
        granted = max(0, min(request.want, request.limit - sum(slots for slots, _ in leases.values())))
        lease = SlotLease(request.name, str(next(self._ids)), granted)
        if granted:
            leases[lease.lease_id] = (granted, now + timedelta(seconds=seconds))
        return lease

    def give_back(self, lease: SlotLease) -> None:
        self.out.get(lease.name, {}).pop(lease.lease_id, None)


class InlineWorkers:
    """The delivery job's sender threads, without threads: each transfer runs when submitted, in submission order."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # noqa: BLE001 - handed to the caller through the future, as an executor does
            future.set_exception(error)
        return future


@dataclass(frozen=True)
class Answer:
    """What RecordingWebhooks does with one request, as a receiver (or the network) would."""

    status: int | None = 200  # None: no HTTP answer, and `error` says why
    retry_after: str | None = None
    error: str | None = None
    hangs: bool = False  # no answer within the timeout, reported as WebhookSender reports it
    then: Callable[[], object] | None = None  # runs once the request has arrived, before the answer goes back


class RecordingWebhooks:
    """A receiver that answers each request with the next scripted Answer, then with `status`, and keeps them all."""

    def __init__(self, status: int | None = 200) -> None:
        self.status = status
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []
        self.timeouts: list[float] = []  # what each request was given
        self._script: list[Answer] = []

    def script(self, *answers: Answer) -> None:
        self._script.extend(answers)

    def send(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 30.0) -> WebhookResult:
        self.sent.append((url, body, dict(headers)))
        self.timeouts.append(timeout)
        answer = self._script.pop(0) if self._script else Answer(self.status, error=self._no_answer())
        if answer.then is not None:
            answer.then()
        if answer.hangs:
            return WebhookResult(None, None, f"timed out after {timeout:g} s", int(timeout * 1000))
        return WebhookResult(answer.status, answer.retry_after, answer.error, 1)

    def _no_answer(self) -> str | None:
        return "connection refused" if self.status is None else None


class StaticHeads:
    """Branch heads as a table, answered one probe at a time: by URL, a head per branch, or a failure message."""

    def __init__(self) -> None:
        self.table: dict[str, dict[str, str]] = {}
        self.failures: dict[str, str] = {}
        self.probes: list[HeadProbe] = []

    def heads(self, probes: Iterable[HeadProbe]) -> Iterator[ProbedHead]:
        for probe in probes:
            self.probes.append(probe)
            if probe.url in self.failures:
                yield ProbedHead(probe.key, None, self.failures[probe.url])
            else:
                yield ProbedHead(probe.key, self.table.get(probe.url, {}).get(probe.branch), None)
