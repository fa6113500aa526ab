"""The original Docora's database, read through a read-only connection: the importer never writes to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from psycopg.rows import class_row

from chalicelib import errors
from chalicelib.domain.original_docora import READ_COLUMNS, LedgerEntry, OriginalApp, OriginalRepository, OriginalWatch

_SELECT_COLUMNS = """
    SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = current_schema() AND table_name = ANY(%(tables)s)
"""
_SELECT_APPS = """
    SELECT app_id, app_name, base_url, email, website, description, token_hash, client_auth_key_encrypted,
           created_at, updated_at
      FROM apps
     ORDER BY created_at, app_id
"""
# repository_snapshots is unique per repository: the branch it tracked, and the commit its synced apps hold.
_SELECT_REPOSITORIES = """
    SELECT r.repository_id, r.github_url, r.owner, r.name, r.is_private, r.consecutive_failures,
           r.circuit_open_until, r.created_at, s.branch, s.commit_sha
      FROM repositories r LEFT JOIN repository_snapshots s ON s.repository_id = r.repository_id
"""
_SELECT_WATCHES = """
    SELECT app_id, repository_id, github_token_encrypted, status, retry_count, last_error, last_scanned_at, created_at
      FROM app_repositories
     ORDER BY created_at, app_id, repository_id
"""
_SELECT_LEDGER = """
    SELECT repository_id, file_path AS path, file_sha AS sha256, delivered_at
      FROM app_delivered_files
     WHERE app_id = %(app_id)s
"""


_ORIGINAL = "the original's database"
T = TypeVar("T")


class PostgresOriginal:
    def __init__(self, url: str) -> None:
        self._connection = connect(url, _ORIGINAL)
        self._connection.read_only = True

    def columns(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        with translated(_ORIGINAL):
            rows = self._connection.execute(_SELECT_COLUMNS, {"tables": list(READ_COLUMNS)}).fetchall()
        for table, column in rows:
            found.setdefault(table, set()).add(column)
        return found

    def apps(self) -> list[OriginalApp]:
        return self._rows(OriginalApp, _SELECT_APPS)

    def repositories(self) -> list[OriginalRepository]:
        return self._rows(OriginalRepository, _SELECT_REPOSITORIES)

    def watches(self) -> list[OriginalWatch]:
        return self._rows(OriginalWatch, _SELECT_WATCHES)

    def ledger(self, app_id: str) -> list[LedgerEntry]:
        return self._rows(LedgerEntry, _SELECT_LEDGER, {"app_id": app_id})

    def _rows(self, kind: type[T], query: str, params: dict[str, str] | None = None) -> list[T]:
        with translated(_ORIGINAL):
            return self._connection.cursor(row_factory=class_row(kind)).execute(query, params).fetchall()

    def close(self) -> None:
        self._connection.close()


def connect(url: str, what: str) -> psycopg.Connection:
    """A connection for a command-line tool; Unavailable, naming `what`, when it cannot be made."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise errors.Unavailable(f"cannot connect to {what}: {_first_line(error)}") from None
    except psycopg.Error:
        # Its message may quote the malformed string, password included.
        raise errors.InvalidInput(f"the URL of {what} is not a valid Postgres connection URL") from None


@contextmanager
def translated(what: str) -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as error:
        raise errors.Unavailable(
            f"lost {what}: {_first_line(error)}; run the import again: the apps written so far are whole and are left "
            "alone"
        ) from None


def _first_line(error: psycopg.Error) -> str:
    # libpq's messages name the host and the user, never the password.
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
