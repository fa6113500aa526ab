"""SQL for the repositories table: rows in, domain objects out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from chalicelib.domain.circuit_breaker import Circuit
from chalicelib.domain.head_checks import CheckRecord, CheckTarget
from chalicelib.domain.repositories import NewRepository, Repository

# ON CONFLICT DO UPDATE (a no-op update) so RETURNING yields the existing row when two apps register the same
# repository at once. The conflict is on the URL's comparable form (domain.github_urls.comparable), so a repository
# imported from the original Docora with its own spelling is found, and keeps that spelling.
_UPSERT = """
    INSERT INTO repositories (id, github_url, owner, name, branch, is_private)
    VALUES (%(id)s, %(github_url)s, %(owner)s, %(name)s, %(branch)s, %(is_private)s)
    ON CONFLICT ((lower(regexp_replace(github_url, '\\.git$', ''))), branch)
        DO UPDATE SET github_url = repositories.github_url
    RETURNING id, github_url, owner, name, branch, is_private, consecutive_failures,
              circuit_open_until, last_error, last_head, last_checked_at, created_at,
              last_scanned_at, next_check_at, last_push_at
"""
_SELECT_BY_ID = """
    SELECT id, github_url, owner, name, branch, is_private, consecutive_failures, circuit_open_until, last_error,
           last_head, last_checked_at, created_at, last_scanned_at, next_check_at, last_push_at
      FROM repositories
     WHERE id = %(id)s
"""
_SELECT_BY_URL = """
    SELECT id, github_url, owner, name, branch, is_private, consecutive_failures, circuit_open_until, last_error,
           last_head, last_checked_at, created_at, last_scanned_at, next_check_at, last_push_at
      FROM repositories
     WHERE lower(regexp_replace(github_url, '\\.git$', '')) = lower(%(github_url)s) AND branch = %(branch)s
"""
# Snapshots and their files go with the repository (ON DELETE CASCADE); contents in S3 are shared
# between repositories by SHA-256 and expire by the bucket's lifecycle rule.
_DELETE_IF_UNWATCHED = """
    DELETE FROM repositories r
     WHERE r.id = %(id)s
       AND NOT EXISTS (SELECT 1 FROM watches w WHERE w.repository_id = r.id)
"""
_RECORD_SCAN = """
    UPDATE repositories SET last_checked_at = %(scanned_at)s, last_scanned_at = %(scanned_at)s WHERE id = %(id)s
"""
_RECORD_PUSH = "UPDATE repositories SET last_push_at = %(at)s WHERE id = %(id)s"
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
# Due: its next check has come, no other sweep holds it, watched by someone, and its circuit closed or its cooldown
# over (a half-open try). Oldest first, so a backlog drains fairly; rows another sweep is claiming are skipped, not
# waited for. A private repository is checked with the newest watch's token.
_CLAIM_DUE_CHECKS = """
    WITH due AS (
        SELECT r.id
          FROM repositories r
         WHERE (r.next_check_at IS NULL OR r.next_check_at <= %(now)s)
           AND (r.check_claimed_until IS NULL OR r.check_claimed_until <= %(now)s)
           AND (r.circuit_open_until IS NULL OR r.circuit_open_until <= %(now)s)
           AND EXISTS (SELECT 1 FROM watches w WHERE w.repository_id = r.id)
         ORDER BY r.next_check_at NULLS FIRST, r.id
         LIMIT %(limit)s
           FOR UPDATE SKIP LOCKED
    )
    UPDATE repositories r SET check_claimed_until = %(until)s
      FROM due
     WHERE r.id = due.id
    RETURNING r.id, r.owner, r.name, r.branch, r.is_private, r.last_head, r.consecutive_failures,
              r.circuit_open_until, r.last_push_at,
              (SELECT w.github_token_encrypted FROM watches w
                WHERE w.repository_id = r.id AND w.github_token_encrypted IS NOT NULL
                ORDER BY w.created_at DESC LIMIT 1)
"""
# One statement for a batch of checks. A repository whose head moved keeps its circuit and last error until its
# scan succeeds; one whose check succeeded with the head unchanged has them cleared.
_RECORD_CHECKS = """
    UPDATE repositories r
       SET last_checked_at = %(checked_at)s,
           next_check_at = v.next_check_at,
           check_claimed_until = NULL,
           consecutive_failures = v.failures,
           circuit_open_until = v.open_until,
           last_error = CASE WHEN v.error IS NOT NULL THEN v.error
                             WHEN v.failures = 0 THEN NULL
                             ELSE r.last_error END
      FROM unnest(%(ids)s::text[], %(next)s::timestamptz[], %(failures)s::integer[], %(open_until)s::timestamptz[],
                  %(errors)s::text[]) AS v(id, next_check_at, failures, open_until, error)
     WHERE r.id = v.id
"""
# The due time of the oldest check not yet made (what "behind" means): among the repositories a sweep would take.
_OLDEST_DUE_CHECK = """
    SELECT min(coalesce(r.next_check_at, r.created_at))
      FROM repositories r
     WHERE (r.next_check_at IS NULL OR r.next_check_at <= %(now)s)
       AND (r.circuit_open_until IS NULL OR r.circuit_open_until <= %(now)s)
       AND EXISTS (SELECT 1 FROM watches w WHERE w.repository_id = r.id)
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

    def record_scan(self, repository_id: str, *, scanned_at: datetime) -> None:
        self._connection.execute(_RECORD_SCAN, {"id": repository_id, "scanned_at": scanned_at})

    def record_push(self, repository_id: str, *, at: datetime) -> None:
        self._connection.execute(_RECORD_PUSH, {"id": repository_id, "at": at})

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

    def claim_due_checks(self, *, now: datetime, until: datetime, limit: int) -> list[CheckTarget]:
        rows = self._connection.execute(_CLAIM_DUE_CHECKS, {"now": now, "until": until, "limit": limit})
        return [
            CheckTarget(rid, owner, name, branch, private, head, token, Circuit(failures, open_until), pushed)
            for rid, owner, name, branch, private, head, failures, open_until, pushed, token in rows
        ]

    def record_checks(self, records: Sequence[CheckRecord], *, checked_at: datetime) -> None:
        params = {
            "checked_at": checked_at,
            "ids": [record.repository_id for record in records],
            "next": [record.next_check_at for record in records],
            "failures": [record.circuit.consecutive_failures for record in records],
            "open_until": [record.circuit.open_until for record in records],
            "errors": [record.error for record in records],
        }
        self._connection.execute(_RECORD_CHECKS, params)

    def oldest_due_check(self, *, now: datetime) -> datetime | None:
        row = self._connection.execute(_OLDEST_DUE_CHECK, {"now": now}).fetchone()
        return row[0] if row else None

    def reset_circuit(self, repository_id: str) -> bool:
        return self._connection.execute(_RESET_CIRCUIT, {"id": repository_id}).rowcount == 1
