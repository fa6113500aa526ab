"""SQL for the repositories table: rows in, domain objects out."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import class_row

from chalicelib.domain.circuit_breaker import Circuit
from chalicelib.domain.repositories import NewRepository, Repository

# ON CONFLICT DO UPDATE (a no-op update) so RETURNING yields the existing row when two apps
# register the same repository at once.
_UPSERT = """
    INSERT INTO repositories (id, github_url, owner, name, branch, is_private)
    VALUES (%(id)s, %(github_url)s, %(owner)s, %(name)s, %(branch)s, %(is_private)s)
    ON CONFLICT (github_url, branch) DO UPDATE SET github_url = EXCLUDED.github_url
    RETURNING id, github_url, owner, name, branch, is_private, consecutive_failures,
              circuit_open_until, last_error, last_head, last_checked_at, created_at
"""
_SELECT_BY_ID = """
    SELECT id, github_url, owner, name, branch, is_private, consecutive_failures,
           circuit_open_until, last_error, last_head, last_checked_at, created_at
      FROM repositories
     WHERE id = %(id)s
"""
_SELECT_BY_URL = """
    SELECT id, github_url, owner, name, branch, is_private, consecutive_failures,
           circuit_open_until, last_error, last_head, last_checked_at, created_at
      FROM repositories
     WHERE github_url = %(github_url)s AND branch = %(branch)s
"""
# Snapshots and their files go with the repository (ON DELETE CASCADE); contents in S3 are shared
# between repositories by SHA-256 and expire by the bucket's lifecycle rule.
_DELETE_IF_UNWATCHED = """
    DELETE FROM repositories r
     WHERE r.id = %(id)s
       AND NOT EXISTS (SELECT 1 FROM watches w WHERE w.repository_id = r.id)
"""
_RECORD_CHECK = "UPDATE repositories SET last_checked_at = %(checked_at)s WHERE id = %(id)s"
_RECORD_SUCCESS = """
    UPDATE repositories
       SET last_head = %(head)s, consecutive_failures = 0, circuit_open_until = NULL, last_error = NULL
     WHERE id = %(id)s
"""
_RECORD_FAILURE = """
    UPDATE repositories
       SET consecutive_failures = %(failures)s, circuit_open_until = %(open_until)s, last_error = %(error)s
     WHERE id = %(id)s
"""
# Due: not checked within the interval, watched by someone, and with its circuit closed or its
# cooldown over (a half-open try). Oldest first, so a backlog drains fairly.
_SELECT_DUE = """
    SELECT r.id
      FROM repositories r
     WHERE (r.last_checked_at IS NULL OR r.last_checked_at < %(checked_before)s)
       AND (r.circuit_open_until IS NULL OR r.circuit_open_until <= %(now)s)
       AND EXISTS (SELECT 1 FROM watches w WHERE w.repository_id = r.id)
     ORDER BY r.last_checked_at NULLS FIRST, r.id
     LIMIT %(limit)s
"""
_RESET_CIRCUIT = """
    UPDATE repositories SET consecutive_failures = 0, circuit_open_until = NULL WHERE id = %(id)s
"""


class PostgresRepositories:
    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection
        self._cursor = connection.cursor(row_factory=class_row(Repository))

    def get(self, repository_id: str) -> Repository | None:
        return self._cursor.execute(_SELECT_BY_ID, {"id": repository_id}).fetchone()

    def find(self, github_url: str, branch: str) -> Repository | None:
        return self._cursor.execute(_SELECT_BY_URL, {"github_url": github_url, "branch": branch}).fetchone()

    def add(self, repository: NewRepository) -> Repository:
        row = self._cursor.execute(_UPSERT, vars(repository)).fetchone()
        assert row is not None  # an upsert with RETURNING yields exactly one row
        return row

    def delete_if_unwatched(self, repository_id: str) -> bool:
        return self._connection.execute(_DELETE_IF_UNWATCHED, {"id": repository_id}).rowcount == 1

    def record_check(self, repository_id: str, *, checked_at: datetime) -> None:
        self._connection.execute(_RECORD_CHECK, {"id": repository_id, "checked_at": checked_at})

    def record_success(self, repository_id: str, *, head: str) -> None:
        self._connection.execute(_RECORD_SUCCESS, {"id": repository_id, "head": head})

    def record_failure(self, repository_id: str, *, circuit: Circuit, error: str) -> None:
        params = {
            "id": repository_id,
            "failures": circuit.consecutive_failures,
            "open_until": circuit.open_until,
            "error": error,
        }
        self._connection.execute(_RECORD_FAILURE, params)

    def due_for_scan(self, *, checked_before: datetime, now: datetime, limit: int) -> list[str]:
        params = {"checked_before": checked_before, "now": now, "limit": limit}
        return [repository_id for (repository_id,) in self._connection.execute(_SELECT_DUE, params)]

    def reset_circuit(self, repository_id: str) -> bool:
        return self._connection.execute(_RESET_CIRCUIT, {"id": repository_id}).rowcount == 1
