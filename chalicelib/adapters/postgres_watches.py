"""SQL for the watches table and the status view that joins it to repositories, snapshots and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row

from chalicelib.domain.deliveries import Retry
from chalicelib.domain.repositories import NewWatch, Repository, Watch, WatchStatus

# A second registration of the same repository by the same app keeps the first watch.
_INSERT = """
    INSERT INTO watches (app_id, repository_id, github_token_encrypted)
    VALUES (%(app_id)s, %(repository_id)s, %(github_token_encrypted)s)
    ON CONFLICT (app_id, repository_id) DO NOTHING
"""
_SELECT = """
    SELECT app_id, repository_id, github_token_encrypted, status, attempts, last_error,
           next_attempt_at, last_commit_sha, last_synced_at, created_at
      FROM watches
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s
"""
_SELECT_MANY = """
    SELECT app_id, repository_id, github_token_encrypted, status, attempts, last_error,
           next_attempt_at, last_commit_sha, last_synced_at, created_at
      FROM watches
     WHERE repository_id = %(repository_id)s AND app_id = ANY(%(app_ids)s)
"""
_DELETE = "DELETE FROM watches WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s"
_SET_TOKEN = """
    UPDATE watches SET github_token_encrypted = %(token)s, updated_at = now()
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s
"""
_SELECT_OF_REPOSITORY = """
    SELECT app_id, repository_id, github_token_encrypted, status, attempts, last_error,
           next_attempt_at, last_commit_sha, last_synced_at, created_at
      FROM watches
     WHERE repository_id = %(repository_id)s
     ORDER BY created_at, app_id
"""
# A watch needs delivery when the snapshot has a file its ledger lacks (or holds at another sha), or its
# ledger has a path the snapshot no longer has. A running delivery keeps its `syncing` status.
# A failed watch starts a fresh round of attempts at once; one waiting for a scheduled retry keeps waiting, and
# a paused app is left alone until it is resumed.
# Snapshot and ledger are compared with a FULL JOIN, which Postgres runs as a hash or merge join, never as a nested
# loop: with LEFT JOINs, a 20,000-file ledger not yet analyzed (right after a first delivery) was estimated at one
# row and the nested loop compared every pair, 40 s instead of 20 ms (bench/scan.py found it).
_MARK_NEEDING_DELIVERY = """
    UPDATE watches w
       SET status = CASE WHEN w.status = 'syncing' THEN w.status ELSE 'pending' END,
           attempts = CASE WHEN w.status = 'failed' THEN 0 ELSE w.attempts END,
           next_attempt_at = CASE WHEN w.status = 'failed' THEN NULL ELSE w.next_attempt_at END,
           updated_at = now()
     WHERE w.repository_id = %(repository_id)s
       AND (w.status = 'failed' OR w.next_attempt_at IS NULL OR w.next_attempt_at <= %(now)s)
       AND EXISTS (SELECT 1 FROM apps a WHERE a.id = w.app_id AND a.delivery_state = 'active')
       AND EXISTS (SELECT 1
                     FROM (SELECT path, sha256 FROM snapshot_files WHERE repository_id = w.repository_id) AS f
                     FULL JOIN (SELECT path, sha256 FROM delivered_files
                                 WHERE app_id = w.app_id AND repository_id = w.repository_id) AS d ON d.path = f.path
                    WHERE f.path IS NULL OR d.path IS NULL OR d.sha256 <> f.sha256)
    RETURNING w.app_id
"""
_SELECT_DUE_RETRIES = """
    SELECT w.app_id, w.repository_id
      FROM watches w JOIN apps a ON a.id = w.app_id
     WHERE w.next_attempt_at <= %(now)s AND w.status IN ('pending', 'failed') AND a.delivery_state = 'active'
     ORDER BY w.next_attempt_at
     LIMIT %(limit)s
"""
# Left behind: a job that crashed mid-sync, or a delivery request lost between commit and queue.
_SELECT_LEFT_BEHIND = """
    SELECT w.app_id, w.repository_id
      FROM watches w JOIN apps a ON a.id = w.app_id
     WHERE w.status IN ('pending', 'syncing') AND w.updated_at < %(updated_before)s
       AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= %(now)s)
       AND a.delivery_state = 'active'
       AND EXISTS (SELECT 1 FROM snapshots s WHERE s.repository_id = w.repository_id)
     ORDER BY w.updated_at
     LIMIT %(limit)s
"""
_RESET_FOR_RETRY = """
    UPDATE watches
       SET status = 'pending', attempts = 0, last_error = NULL, next_attempt_at = NULL, updated_at = now()
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s
"""
_TOUCH = "UPDATE watches SET updated_at = now() WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s"
_OWE_SYNC_FAILED = """
    UPDATE watches SET sync_failed_pending_at = %(opened_at)s, updated_at = now()
     WHERE repository_id = %(repository_id)s
    RETURNING app_id
"""
_START_SYNC = """
    UPDATE watches SET status = 'syncing', updated_at = now()
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s
"""
_FINISH_SYNC = """
    UPDATE watches
       SET status = 'synced', attempts = 0, last_error = NULL, next_attempt_at = NULL,
           last_commit_sha = %(commit)s, last_synced_at = %(at)s, updated_at = now()
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s
"""
_RECORD_DELIVERY_FAILURE = """
    UPDATE watches
       SET status = %(status)s, attempts = %(attempts)s, last_error = %(error)s,
           next_attempt_at = %(next_attempt_at)s, updated_at = now()
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s
"""
_TAKE_SYNC_FAILED = """
    UPDATE watches w SET sync_failed_pending_at = NULL
      FROM (SELECT sync_failed_pending_at FROM watches
             WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s FOR UPDATE) AS before
     WHERE w.app_id = %(app_id)s AND w.repository_id = %(repository_id)s
       AND before.sync_failed_pending_at IS NOT NULL
    RETURNING before.sync_failed_pending_at
"""
# Delivered: ledger rows that match the snapshot (same path and sha256). Pending: snapshot files the
# app lacks or holds at another sha, plus ledger paths the snapshot no longer has (deletes to send).
_SELECT_STATUS = """
    SELECT r.id AS r_id, r.github_url AS r_github_url, r.owner AS r_owner, r.name AS r_name,
           r.branch AS r_branch, r.is_private AS r_is_private,
           r.consecutive_failures AS r_consecutive_failures, r.circuit_open_until AS r_circuit_open_until,
           r.last_error AS r_last_error, r.last_head AS r_last_head, r.last_checked_at AS r_last_checked_at,
           r.created_at AS r_created_at,
           w.app_id, w.repository_id, w.github_token_encrypted, w.status, w.attempts, w.last_error,
           w.next_attempt_at, w.last_commit_sha, w.last_synced_at, w.created_at,
           s.commit_sha AS snapshot_commit_sha, a.delivery_state, a.paused_reason,
           COALESCE(s.file_count, 0) AS files_total,
           counts.files_delivered,
           counts.files_removed
      FROM watches w
      JOIN repositories r ON r.id = w.repository_id
      JOIN apps a ON a.id = w.app_id
      LEFT JOIN snapshots s ON s.repository_id = w.repository_id
      CROSS JOIN LATERAL (
          SELECT count(*) FILTER (WHERE f.sha256 = d.sha256) AS files_delivered,
                 count(*) FILTER (WHERE f.path IS NULL) AS files_removed
            FROM delivered_files d
            LEFT JOIN snapshot_files f ON f.repository_id = d.repository_id AND f.path = d.path
           WHERE d.app_id = w.app_id AND d.repository_id = w.repository_id
      ) counts
     WHERE w.app_id = %(app_id)s AND (%(repository_id)s::text IS NULL OR w.repository_id = %(repository_id)s)
     ORDER BY w.created_at, w.repository_id
"""


class PostgresWatches:
    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection
        self._cursor = connection.cursor(row_factory=class_row(Watch))

    def get(self, app_id: str, repository_id: str) -> Watch | None:
        return self._cursor.execute(_SELECT, {"app_id": app_id, "repository_id": repository_id}).fetchone()

    def get_many(self, repository_id: str, app_ids: list[str]) -> dict[str, Watch]:
        params = {"repository_id": repository_id, "app_ids": app_ids}
        return {watch.app_id: watch for watch in self._cursor.execute(_SELECT_MANY, params).fetchall()}

    def add(self, watch: NewWatch) -> Watch:
        self._connection.execute(_INSERT, vars(watch))
        stored = self.get(watch.app_id, watch.repository_id)
        assert stored is not None  # inserted above, or already there
        return stored

    def delete(self, app_id: str, repository_id: str) -> bool:
        params = {"app_id": app_id, "repository_id": repository_id}
        return self._connection.execute(_DELETE, params).rowcount == 1

    def set_github_token(self, app_id: str, repository_id: str, token_encrypted: str | None) -> None:
        params = {"app_id": app_id, "repository_id": repository_id, "token": token_encrypted}
        self._connection.execute(_SET_TOKEN, params)

    def status(self, app_id: str, repository_id: str) -> WatchStatus | None:
        rows = self._statuses(app_id, repository_id)
        return rows[0] if rows else None

    def statuses(self, app_id: str) -> list[WatchStatus]:
        return self._statuses(app_id, None)

    def of_repository(self, repository_id: str) -> list[Watch]:
        return self._cursor.execute(_SELECT_OF_REPOSITORY, {"repository_id": repository_id}).fetchall()

    def needing_delivery(self, repository_id: str, *, now: datetime) -> list[str]:
        params = {"repository_id": repository_id, "now": now}
        return sorted(app_id for (app_id,) in self._connection.execute(_MARK_NEEDING_DELIVERY, params).fetchall())

    def due_retries(self, *, now: datetime, limit: int) -> list[tuple[str, str]]:
        return [tuple(row) for row in self._connection.execute(_SELECT_DUE_RETRIES, {"now": now, "limit": limit})]

    def left_behind(self, *, updated_before: datetime, now: datetime, limit: int) -> list[tuple[str, str]]:
        params = {"updated_before": updated_before, "now": now, "limit": limit}
        return [tuple(row) for row in self._connection.execute(_SELECT_LEFT_BEHIND, params)]

    def reset_for_retry(self, app_id: str, repository_id: str) -> bool:
        params = {"app_id": app_id, "repository_id": repository_id}
        return self._connection.execute(_RESET_FOR_RETRY, params).rowcount == 1

    def touch(self, app_id: str, repository_id: str) -> None:
        self._connection.execute(_TOUCH, {"app_id": app_id, "repository_id": repository_id})

    def owe_sync_failed(self, repository_id: str, *, opened_at: datetime) -> list[str]:
        params = {"repository_id": repository_id, "opened_at": opened_at}
        return sorted(app_id for (app_id,) in self._connection.execute(_OWE_SYNC_FAILED, params).fetchall())

    def start_sync(self, app_id: str, repository_id: str) -> None:
        self._connection.execute(_START_SYNC, {"app_id": app_id, "repository_id": repository_id})

    def finish_sync(self, app_id: str, repository_id: str, *, commit: str | None, at: datetime) -> None:
        params = {"app_id": app_id, "repository_id": repository_id, "commit": commit, "at": at}
        self._connection.execute(_FINISH_SYNC, params)

    def record_delivery_failure(self, app_id: str, repository_id: str, *, retry: Retry, error: str) -> None:
        params = {
            "app_id": app_id,
            "repository_id": repository_id,
            "status": "failed" if retry.failed else "pending",
            "attempts": retry.attempts,
            "error": error,
            "next_attempt_at": retry.next_attempt_at,
        }
        self._connection.execute(_RECORD_DELIVERY_FAILURE, params)

    def take_sync_failed(self, app_id: str, repository_id: str) -> datetime | None:
        params = {"app_id": app_id, "repository_id": repository_id}
        row = self._connection.execute(_TAKE_SYNC_FAILED, params).fetchone()
        return row[0] if row else None

    def _statuses(self, app_id: str, repository_id: str | None) -> list[WatchStatus]:
        with self._connection.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(_SELECT_STATUS, {"app_id": app_id, "repository_id": repository_id}).fetchall()
        return [_watch_status(row) for row in rows]


def _watch_status(row: dict[str, Any]) -> WatchStatus:
    repository = Repository(**{key[2:]: value for key, value in row.items() if key.startswith("r_")})
    watch = Watch(**{field: row[field] for field in Watch.__dataclass_fields__})
    return WatchStatus(
        repository=repository,
        watch=watch,
        snapshot_commit_sha=row["snapshot_commit_sha"],
        files_total=row["files_total"],
        files_delivered=row["files_delivered"],
        files_pending=row["files_total"] - row["files_delivered"] + row["files_removed"],
        deliveries_paused=row["delivery_state"] == "paused",
        paused_reason=row["paused_reason"],
    )
