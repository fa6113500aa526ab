"""SQL for the delivery ledger and the attempt log: what each app lacks, what it acknowledged, what was tried."""

from __future__ import annotations

import psycopg
from psycopg import generators, pq
from psycopg.rows import class_row

from chalicelib import errors
from chalicelib.adapters.postgres_snapshots import bundle_slot
from chalicelib.domain.deliveries import Attempt, Change

# Snapshot minus ledger, in protocol order (deletes, creates, updates; each by path in byte order). A FULL JOIN, so
# Postgres compares the two with a hash or merge join and never with a nested loop, which a ledger not yet analyzed
# (just after a first delivery) made quadratic: minutes for 20,000 files. See _MARK_NEEDING_DELIVERY.
_SELECT_PENDING = """
    SELECT CASE WHEN f.path IS NULL THEN 'delete' WHEN d.path IS NULL THEN 'create' ELSE 'update' END AS event,
           COALESCE(f.path, d.path) AS path, COALESCE(f.sha256, d.sha256) AS sha256,
           CASE WHEN f.path IS NOT NULL THEN d.sha256 END AS previous_sha256, f.size,
           COALESCE(f.is_binary, false) AS is_binary, f.bundle, f.bundle_offset
      FROM (SELECT path, sha256, size, is_binary, bundle, bundle_offset
              FROM snapshot_files
             WHERE repository_id = %(repository_id)s) AS f
      FULL JOIN (SELECT path, sha256 FROM delivered_files
                  WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s) AS d ON d.path = f.path
     WHERE f.path IS NULL OR d.path IS NULL OR d.sha256 <> f.sha256
     ORDER BY CASE WHEN f.path IS NULL THEN 0 WHEN d.path IS NULL THEN 1 ELSE 2 END,
              COALESCE(f.path, d.path) COLLATE "C"
"""
_FORGET_ALL = "DELETE FROM delivered_files WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s"
# A resync keeps the ledger rows of paths the snapshot no longer has, so their deletes go out first.
_FORGET_SNAPSHOT_PATHS = """
    DELETE FROM delivered_files d
     USING snapshot_files f
     WHERE d.app_id = %(app_id)s AND d.repository_id = %(repository_id)s
       AND f.repository_id = d.repository_id AND f.path = d.path
"""
_LOG_ATTEMPT = """
    INSERT INTO delivery_attempts (app_id, repository_id, path, event, delivery_id, attempt, status_code, error,
                                   duration_ms, attempted_at)
    VALUES (%(app_id)s, %(repository_id)s, %(path)s, %(event)s, %(delivery_id)s, %(attempt)s, %(status_code)s,
            %(error)s, %(duration_ms)s, %(attempted_at)s)
"""
# A delivered change: its attempt logged and its ledger row written (or removed) in one round trip and one
# transaction, since the statements of one simple query run as one implicit transaction. Its commit does not wait
# for the WAL to reach the disk: see Store.acknowledge for what that costs, and delivering._send_all for why. SET
# LOCAL, not a session-wide SET: that would outlive this transaction (and pin the connection behind RDS Proxy).
# Both end with the app's delivery state, so the answer also tells whether an operator has paused it meanwhile.
_LOGGED = "SET LOCAL synchronous_commit = off; WITH logged AS (" + _LOG_ATTEMPT + ")"
_DELIVERY_STATE = "; SELECT delivery_state FROM apps WHERE id = %(app_id)s"
_LOG_AND_ACKNOWLEDGE = (
    _LOGGED  # noqa: S608 - module constants joined, no input
    + """
    INSERT INTO delivered_files (app_id, repository_id, path, sha256, delivered_at)
    VALUES (%(app_id)s, %(repository_id)s, %(path)s, %(sha256)s, %(attempted_at)s)
    ON CONFLICT (app_id, repository_id, path)
    DO UPDATE SET sha256 = EXCLUDED.sha256, delivered_at = EXCLUDED.delivered_at
"""
    + _DELIVERY_STATE
)
_LOG_AND_FORGET = (
    _LOGGED  # noqa: S608 - module constants joined, no input
    + """
    DELETE FROM delivered_files
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s AND path = %(path)s
"""
    + _DELIVERY_STATE
)
# The log is for people and the status API: the newest attempts per watch are kept, the rest dropped.
_TRIM_ATTEMPTS = """
    DELETE FROM delivery_attempts
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s
       AND id < (SELECT min(id) FROM (SELECT id FROM delivery_attempts
                                       WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s
                                       ORDER BY id DESC LIMIT %(keep)s) AS newest)
"""
_SELECT_ATTEMPTS = """
    SELECT id, path, event, delivery_id, attempt, status_code, error, duration_ms, attempted_at
      FROM delivery_attempts
     WHERE app_id = %(app_id)s AND repository_id = %(repository_id)s AND (%(before)s::bigint IS NULL OR id < %(before)s)
     ORDER BY id DESC
     LIMIT %(limit)s
"""


class PostgresDeliveries:
    def __init__(self, connection: psycopg.Connection) -> None:
        self._connection = connection

    def pending(self, app_id: str, repository_id: str) -> list[Change]:
        rows = self._connection.execute(_SELECT_PENDING, {"app_id": app_id, "repository_id": repository_id})
        return [
            Change(
                event,
                path,
                bytes(sha),
                bytes(previous) if previous is not None else None,
                size,
                is_binary,
                bundle_slot(bundle, offset),
            )
            for event, path, sha, previous, size, is_binary, bundle, offset in rows
        ]

    def send_acknowledgement(self, app_id: str, repository_id: str, change: Change, attempt: Attempt) -> None:
        """Send the statements that log the attempt and write (or, for a delete, remove) the ledger row, as a
        transaction of their own, and return without waiting for their answer: read it with `read_acknowledgement`
        before anything else uses the connection. Call it outside any transaction.
        """
        query = _LOG_AND_FORGET if change.event == "delete" else _LOG_AND_ACKNOWLEDGE
        params = _attempt_params(app_id, repository_id, attempt) | {"sha256": change.sha256}
        # Parameters bound on the client: only a simple query may hold two statements. Sent with the generators
        # Connection.execute itself runs: psycopg's pipeline mode would hold the statements in one transaction until
        # a sync, which waits for the answer.
        text = psycopg.ClientCursor(self._connection).mogrify(query, params)
        pgconn = self._connection.pgconn
        pgconn.send_query(text.encode(self._connection.info.encoding))
        self._connection.wait(generators.send(pgconn))

    def read_acknowledgement(self) -> bool:
        """The answer to `send_acknowledgement`: whether the app's deliveries were still active then. NotFound when
        the watch was gone.
        """
        active = False
        for result in self._connection.wait(generators.fetch_many(self._connection.pgconn)):
            if result.status == pq.ExecStatus.FATAL_ERROR:
                error = psycopg.errors.error_from_result(result, encoding=self._connection.info.encoding)
                if isinstance(error, psycopg.errors.ForeignKeyViolation):
                    raise errors.NotFound("the watch no longer exists") from error
                raise error
            if result.status == pq.ExecStatus.TUPLES_OK and result.ntuples == 1:
                active = result.get_value(0, 0) == b"active"  # the last statement's row: the app's state
        return active

    def forget_all(self, app_id: str, repository_id: str) -> None:
        self._connection.execute(_FORGET_ALL, {"app_id": app_id, "repository_id": repository_id})

    def forget_snapshot_paths(self, app_id: str, repository_id: str) -> None:
        self._connection.execute(_FORGET_SNAPSHOT_PATHS, {"app_id": app_id, "repository_id": repository_id})

    def log_attempt(self, app_id: str, repository_id: str, attempt: Attempt) -> None:
        try:
            self._connection.execute(_LOG_ATTEMPT, _attempt_params(app_id, repository_id, attempt))
        except psycopg.errors.ForeignKeyViolation as error:
            raise errors.NotFound("the watch no longer exists") from error

    def trim_attempts(self, app_id: str, repository_id: str, *, keep: int) -> None:
        self._connection.execute(_TRIM_ATTEMPTS, {"app_id": app_id, "repository_id": repository_id, "keep": keep})

    def attempts(self, app_id: str, repository_id: str, *, limit: int, before: int | None) -> list[Attempt]:
        params = {"app_id": app_id, "repository_id": repository_id, "limit": limit, "before": before}
        with self._connection.cursor(row_factory=class_row(Attempt)) as cursor:
            return cursor.execute(_SELECT_ATTEMPTS, params).fetchall()


def _attempt_params(app_id: str, repository_id: str, attempt: Attempt) -> dict[str, object]:
    return {"app_id": app_id, "repository_id": repository_id} | {
        field: getattr(attempt, field) for field in Attempt.__dataclass_fields__ if field != "id"
    }
