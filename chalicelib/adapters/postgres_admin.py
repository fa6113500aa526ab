"""SQL for the operator API: counts, searchable and sortable lists, and the watches a bulk action covers."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from chalicelib.domain.operations import ListPage, ListQuery, like_pattern
from chalicelib.domain.operator_sessions import FailedFilter

_COUNTS = """
    SELECT (SELECT count(*) FROM apps) AS apps,
           (SELECT count(*) FROM apps WHERE delivery_state = 'paused') AS paused_apps,
           (SELECT count(*) FROM repositories) AS repositories,
           (SELECT count(*) FROM repositories WHERE circuit_open_until > %(now)s) AS open_circuits,
           (SELECT count(*) FROM delivery_attempts WHERE attempted_at > %(hour_ago)s) AS attempts_last_hour,
           (SELECT count(*) FROM delivery_attempts WHERE attempted_at > %(hour_ago)s AND error IS NOT NULL)
               AS failures_last_hour,
           (SELECT count(*) FROM repositories
             WHERE coalesce(next_check_at, created_at) < %(overdue_before)s) AS overdue_checks
"""
_WATCHES_BY_STATUS = "SELECT status, count(*) FROM watches GROUP BY status"

# Each list: its FROM clause, the columns shown, the text columns searched, the sortable columns, and the key that
# breaks ties between rows that share the sorted value (without it, pages would repeat one row and skip another).
_LISTS: dict[str, dict[str, Any]] = {
    "apps": {
        "select": """SELECT a.id, a.app_name, a.email, a.base_url, a.delivery_state, a.paused_reason, a.created_at,
                            a.failing_since, a.last_success_at,
                            (SELECT count(*) FROM watches w WHERE w.app_id = a.id) AS watches,
                            (SELECT count(*) FROM watches w WHERE w.app_id = a.id AND w.status = 'failed')
                                AS failed_watches
                       FROM apps a""",
        "search": ("a.id", "a.app_name", "a.email", "a.base_url"),
        "sort": {
            "created_at": "a.created_at",
            "app_name": "a.app_name",
            "email": "a.email",
            "failing_since": "a.failing_since",
            "last_success_at": "a.last_success_at",
        },
        "key": ("id",),
    },
    "repositories": {
        "select": """SELECT r.id, r.github_url, r.branch, r.is_private, r.last_head, r.last_checked_at,
                            r.consecutive_failures, r.circuit_open_until, r.last_error, r.created_at,
                            r.next_check_at,
                            (SELECT count(*) FROM watches w WHERE w.repository_id = r.id) AS watches,
                            ARRAY(SELECT a.app_name FROM watches w JOIN apps a ON a.id = w.app_id
                                   WHERE w.repository_id = r.id ORDER BY a.app_name, a.id LIMIT 20) AS app_names
                       FROM repositories r""",
        "search": ("r.id", "r.github_url"),
        "sort": {
            "created_at": "r.created_at",
            "github_url": "r.github_url",
            "last_checked_at": "r.last_checked_at",
            "consecutive_failures": "r.consecutive_failures",
        },
        "key": ("id",),
    },
    "failed_watches": {
        "select": """SELECT w.app_id, w.repository_id, a.app_name, r.github_url, w.attempts, w.last_error,
                            w.updated_at
                       FROM watches w JOIN apps a ON a.id = w.app_id JOIN repositories r ON r.id = w.repository_id
                      WHERE w.status = 'failed'""",
        "search": ("w.app_id", "w.repository_id", "a.app_name", "r.github_url"),
        "sort": {"updated_at": "w.updated_at", "attempts": "w.attempts"},
        "key": ("app_id", "repository_id"),
    },
    "attempts": {
        "select": """SELECT d.id, d.app_id, d.repository_id, d.path, d.event, d.delivery_id, d.attempt,
                            d.status_code, d.error, d.duration_ms, d.attempted_at
                       FROM delivery_attempts d""",
        "search": ("d.app_id", "d.repository_id", "d.path", "d.error"),
        "sort": {"attempted_at": "d.id"},
        "key": ("id",),
    },
}
_FAILED_WATCHES = """
    SELECT app_id, repository_id FROM watches
     WHERE status = 'failed' AND (%(app_id)s::text IS NULL OR app_id = %(app_id)s)
     ORDER BY app_id, repository_id
"""
# A due check is overdue once the minute's sweep should have taken it.
OVERDUE_AFTER = timedelta(minutes=2)
_FAILED_MATCHING = """
    FROM watches w JOIN apps a ON a.id = w.app_id JOIN repositories r ON r.id = w.repository_id
   WHERE w.status = 'failed'
     AND (%(app)s::text IS NULL OR a.id ILIKE %(app)s ESCAPE '\\' OR a.app_name ILIKE %(app)s ESCAPE '\\')
     AND (%(repository)s::text IS NULL OR r.id ILIKE %(repository)s ESCAPE '\\'
          OR r.github_url ILIKE %(repository)s ESCAPE '\\')
     AND (%(error)s::text IS NULL OR w.last_error ILIKE %(error)s ESCAPE '\\')
"""
_FAILED_PAGE = (
    "SELECT w.app_id, w.repository_id, a.app_name, r.github_url, w.attempts, w.last_error, w.updated_at"
    + _FAILED_MATCHING
    + " ORDER BY w.updated_at DESC, w.app_id, w.repository_id LIMIT %(limit)s OFFSET %(offset)s"
)
_FAILED_COUNT = "SELECT count(*)" + _FAILED_MATCHING
_FAILED_KEYS = "SELECT w.app_id, w.repository_id" + _FAILED_MATCHING + " ORDER BY w.app_id, w.repository_id"
_WATCHES_OF_APP = "SELECT app_id, repository_id FROM watches WHERE app_id = %(app_id)s ORDER BY repository_id"


class PostgresAdmin:
    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection

    def counts(self, *, now: datetime, hour_ago: datetime) -> dict[str, Any]:
        with self._connection.cursor(row_factory=dict_row) as cursor:
            params = {"now": now, "hour_ago": hour_ago, "overdue_before": now - OVERDUE_AFTER}
            counts = cursor.execute(_COUNTS, params).fetchone() or {}
        by_status = dict(self._connection.execute(_WATCHES_BY_STATUS).fetchall())
        return dict(counts) | {"watches": {s: by_status.get(s, 0) for s in ("pending", "syncing", "synced", "failed")}}

    def page(self, name: str, query: ListQuery) -> ListPage:
        """One page of a list; `query.sort` must be one of the list's sortable columns (checked by the caller)."""
        spec = _LISTS[name]
        base = sql.SQL(spec["select"])
        where, params = self._search(spec, query.search)
        direction = sql.SQL(" DESC" if query.descending else " ASC")
        columns = [spec["sort"][query.sort].split(".")[1], *spec["key"]]
        order = sql.SQL(", ").join(sql.SQL("listed.") + sql.Identifier(column) + direction for column in columns)
        counted = sql.SQL("SELECT count(*) FROM ({base}) AS listed {where}").format(base=base, where=where)
        listed = sql.SQL(
            "SELECT * FROM ({base}) AS listed {where} ORDER BY {order} LIMIT %(limit)s OFFSET %(offset)s"
        ).format(base=base, where=where, order=order)
        with self._connection.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(listed, params | {"limit": query.limit, "offset": query.offset}).fetchall()
        (total,) = self._connection.execute(counted, params).fetchone() or (0,)
        return ListPage(items=rows, total=total)

    def sortable(self, name: str) -> tuple[str, ...]:
        return tuple(_LISTS[name]["sort"])

    def failed_watches(self, app_id: str | None) -> list[tuple[str, str]]:
        return [tuple(row) for row in self._connection.execute(_FAILED_WATCHES, {"app_id": app_id})]

    def watches_of_app(self, app_id: str) -> list[tuple[str, str]]:
        return [tuple(row) for row in self._connection.execute(_WATCHES_OF_APP, {"app_id": app_id})]

    def failed_page(self, matching: FailedFilter, *, limit: int, offset: int) -> ListPage:
        params = _filter_params(matching)
        with self._connection.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(_FAILED_PAGE, params | {"limit": limit, "offset": offset}).fetchall()
        (total,) = self._connection.execute(_FAILED_COUNT, params).fetchone() or (0,)
        return ListPage(items=rows, total=total)

    def failed_matching(self, matching: FailedFilter) -> list[tuple[str, str]]:
        return [tuple(row) for row in self._connection.execute(_FAILED_KEYS, _filter_params(matching))]

    def _search(self, spec: dict[str, Any], search: str | None) -> tuple[sql.Composable, dict[str, Any]]:
        if not search:
            return sql.SQL(""), {}
        columns = [sql.SQL("listed.{} ILIKE %(pattern)s ESCAPE '\\'").format(sql.Identifier(c.split(".")[1]))
                   for c in spec["search"]]  # fmt: skip
        return sql.SQL("WHERE ") + sql.SQL(" OR ").join(columns), {"pattern": like_pattern(search)}


def _filter_params(matching: FailedFilter) -> dict[str, str | None]:
    texts = {"app": matching.app, "repository": matching.repository, "error": matching.error}
    return {name: like_pattern(text) if text else None for name, text in texts.items()}
