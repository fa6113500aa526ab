"""Docora's side of an import from the original: each app, with its repositories, watches and ledger, in one
transaction, ids kept."""

from __future__ import annotations

from datetime import datetime

import psycopg

from chalicelib import errors
from chalicelib.adapters.postgres_original import connect, translated
from chalicelib.domain.apps import PausedBy
from chalicelib.domain.original_docora import IMPORTED_MAX_IN_FLIGHT, AppImport, branch_of

_IS_MIGRATED = """
    SELECT EXISTS (SELECT 1 FROM information_schema.columns
                    WHERE table_schema = current_schema() AND table_name = 'apps' AND column_name = 'imported_at')
"""
_SELECT_PRESENT = "SELECT id, imported_at IS NOT NULL FROM apps WHERE id = ANY(%(ids)s)"
_SELECT_REPOSITORY_IDS = "SELECT github_url, branch, id FROM repositories"
# No lookup key: the original stored none. The token's first success here stores it (services/access.py).
_INSERT_APP = """
    INSERT INTO apps (id, app_name, email, website, description, base_url, token_lookup, token_hash,
                      client_auth_key_encrypted, delivery_state, paused_reason, paused_by, max_in_flight,
                      created_at, updated_at, imported_at)
    VALUES (%(id)s, %(app_name)s, %(email)s, %(website)s, %(description)s, %(base_url)s, NULL, %(token_hash)s,
            %(key)s, %(state)s, %(paused_reason)s, %(paused_by)s, %(max_in_flight)s,
            %(created_at)s, %(updated_at)s, %(now)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING id
"""
# Another app's import may have brought the repository already. Never checked yet: the first sweep checks its head.
_INSERT_REPOSITORY = """
    INSERT INTO repositories (id, github_url, owner, name, branch, is_private, consecutive_failures,
                              circuit_open_until, created_at)
    VALUES (%(repository_id)s, %(github_url)s, %(owner)s, %(name)s, %(branch)s, %(is_private)s,
            %(consecutive_failures)s, %(circuit_open_until)s, %(created_at)s)
    ON CONFLICT (id) DO NOTHING
"""
_INSERT_WATCH = """
    INSERT INTO watches (app_id, repository_id, github_token_encrypted, status, attempts, last_error,
                         last_commit_sha, last_synced_at, created_at, updated_at)
    VALUES (%(app_id)s, %(repository_id)s, %(github_token_encrypted)s, %(status)s, %(attempts)s, %(last_error)s,
            %(last_commit_sha)s, %(last_synced_at)s, %(created_at)s, %(now)s)
"""
_COPY_LEDGER = "COPY delivered_files (app_id, repository_id, path, sha256, delivered_at) FROM STDIN"


_DOCORA = "Docora's database (DATABASE_URL)"


class PostgresImports:
    def __init__(self, url: str) -> None:
        self._connection = connect(url, _DOCORA)

    def is_migrated(self) -> bool:
        with translated(_DOCORA):
            row = self._connection.execute(_IS_MIGRATED).fetchone()
        return bool(row and row[0])

    def present_apps(self, app_ids: list[str]) -> dict[str, bool]:
        with translated(_DOCORA):
            return dict(self._connection.execute(_SELECT_PRESENT, {"ids": app_ids}).fetchall())

    def repository_ids(self) -> dict[tuple[str, str], str]:
        with translated(_DOCORA):
            return {(url, branch): rid for url, branch, rid in self._connection.execute(_SELECT_REPOSITORY_IDS)}

    def write(self, plan: AppImport, *, now: datetime) -> bool:
        try:
            with translated(_DOCORA), self._connection.transaction():
                if self._connection.execute(_INSERT_APP, _app_params(plan, now)).fetchone() is None:
                    return False
                self._write_rest(plan, now)
        except psycopg.errors.IntegrityError as error:
            # Docora gained the same repository under another id while the import ran, or a value breaks a rule
            # of Docora's schema that the importer does not check beforehand.
            raise errors.Conflict(f"a row breaks Docora's constraint {error.diag.constraint_name}") from None
        return True

    def _write_rest(self, plan: AppImport, now: datetime) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(_INSERT_REPOSITORY, [vars(r) | {"branch": branch_of(r)} for r in plan.repositories])
            cursor.executemany(_INSERT_WATCH, [vars(watch) | {"now": now} for watch in plan.watches])
            with cursor.copy(_COPY_LEDGER) as copy:
                copy.set_types(["text", "text", "text", "bytea", "timestamptz"])
                for entry in plan.ledger:
                    row = (plan.app.app_id, entry.repository_id, entry.path, bytes.fromhex(entry.sha256))
                    copy.write_row((*row, entry.delivered_at))

    def close(self) -> None:
        self._connection.close()


def _app_params(plan: AppImport, now: datetime) -> dict[str, object]:
    app = plan.app
    paused = plan.paused_reason is not None
    return {
        "id": app.app_id,
        "app_name": app.app_name,
        "email": app.email,
        "website": app.website,
        "description": app.description,
        "base_url": plan.base_url,
        "token_hash": app.token_hash,
        "key": app.client_auth_key_encrypted,
        "state": "paused" if paused else "active",
        "paused_reason": plan.paused_reason,
        "paused_by": PausedBy.OPERATOR.value if paused else None,
        "max_in_flight": IMPORTED_MAX_IN_FLIGHT,
        "created_at": app.created_at,
        "updated_at": app.updated_at,
        "now": now,
    }
