"""SQL for operator bulk actions: the work list of each operation, taken batch by batch."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from chalicelib.domain.operations import Operation

_INSERT = """
    INSERT INTO operations (id, kind, app_id, total, remaining, created_at, updated_at)
    VALUES (%(id)s, %(kind)s, %(app_id)s, %(total)s, %(remaining)s, %(now)s, %(now)s)
"""
_SELECT = """
    SELECT id, kind, app_id, status, total, done, created_at, updated_at FROM operations WHERE id = %(id)s
"""
_LOCK_REMAINING = "SELECT remaining FROM operations WHERE id = %(id)s AND status = 'running' FOR UPDATE"
_ADVANCE = """
    UPDATE operations
       SET remaining = %(remaining)s, done = done + %(taken)s, updated_at = %(now)s,
           status = CASE WHEN %(finished)s THEN 'done' ELSE status END
     WHERE id = %(id)s
"""
_CANCEL = """
    UPDATE operations SET status = 'cancelled', remaining = '[]', updated_at = %(now)s
     WHERE id = %(id)s AND status = 'running'
"""
_SELECT_RECENT = """
    SELECT id, kind, app_id, status, total, done, created_at, updated_at FROM operations
     ORDER BY created_at DESC, id LIMIT %(limit)s
"""
_SELECT_RUNNING = "SELECT id FROM operations WHERE status = 'running' ORDER BY created_at LIMIT %(limit)s"


class PostgresOperations:
    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection

    def create(
        self, operation_id: str, *, kind: str, app_id: str | None, watches: list[tuple[str, str]], now: datetime
    ) -> None:
        params = {
            "id": operation_id,
            "kind": kind,
            "app_id": app_id,
            "total": len(watches),
            "remaining": Jsonb([list(watch) for watch in watches]),
            "now": now,
        }
        self._connection.execute(_INSERT, params)

    def get(self, operation_id: str) -> Operation | None:
        with self._connection.cursor(row_factory=class_row(Operation)) as cursor:
            return cursor.execute(_SELECT, {"id": operation_id}).fetchone()

    def take(self, operation_id: str, *, count: int, now: datetime) -> list[tuple[str, str]]:
        """The next `count` watches of a running operation, counted as done; [] when it is not running."""
        row = self._connection.execute(_LOCK_REMAINING, {"id": operation_id}).fetchone()
        if row is None:
            return []
        remaining = row[0]
        taken, rest = remaining[:count], remaining[count:]
        params = {"id": operation_id, "remaining": Jsonb(rest), "taken": len(taken), "now": now, "finished": not rest}
        self._connection.execute(_ADVANCE, params)
        return [(app_id, repository_id) for app_id, repository_id in taken]

    def cancel(self, operation_id: str, *, now: datetime) -> bool:
        return self._connection.execute(_CANCEL, {"id": operation_id, "now": now}).rowcount == 1

    def running(self, *, limit: int) -> list[str]:
        return [operation_id for (operation_id,) in self._connection.execute(_SELECT_RUNNING, {"limit": limit})]

    def recent(self, *, limit: int) -> list[Operation]:
        with self._connection.cursor(row_factory=class_row(Operation)) as cursor:
            return cursor.execute(_SELECT_RECENT, {"limit": limit}).fetchall()
