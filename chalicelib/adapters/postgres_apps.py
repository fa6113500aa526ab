"""SQL for the apps table: rows in, domain objects out."""

from __future__ import annotations

import psycopg
from psycopg.rows import class_row

from chalicelib import errors
from chalicelib.domain.apps import App, NewApp

_INSERT = """
    INSERT INTO apps (id, app_name, email, website, description, base_url,
                      token_lookup, token_hash, client_auth_key_encrypted)
    VALUES (%(id)s, %(app_name)s, %(email)s, %(website)s, %(description)s, %(base_url)s,
            %(token_lookup)s, %(token_hash)s, %(client_auth_key_encrypted)s)
    RETURNING id, app_name, email, website, description, base_url, token_hash,
              client_auth_key_encrypted, delivery_state, created_at
"""
_SELECT_BY_ID = """
    SELECT id, app_name, email, website, description, base_url, token_hash,
           client_auth_key_encrypted, delivery_state, created_at
      FROM apps
     WHERE id = %(id)s
"""
# The lookup key is unique and indexed: authentication costs one index probe whatever the number of apps.
_SELECT_BY_TOKEN_LOOKUP = """
    SELECT id, app_name, email, website, description, base_url, token_hash,
           client_auth_key_encrypted, delivery_state, created_at
      FROM apps
     WHERE token_lookup = %(token_lookup)s
"""
_PAUSE = """
    UPDATE apps SET delivery_state = 'paused', paused_reason = %(reason)s, updated_at = now() WHERE id = %(id)s
"""


class PostgresApps:
    def __init__(self, connection: psycopg.Connection) -> None:
        self._cursor = connection.cursor(row_factory=class_row(App))

    def add(self, app: NewApp) -> App:
        try:
            row = self._cursor.execute(_INSERT, vars(app)).fetchone()
        except psycopg.errors.UniqueViolation as error:
            raise errors.Conflict("an app with this id or token already exists") from error
        assert row is not None  # INSERT ... RETURNING yields exactly one row
        return row

    def get(self, app_id: str) -> App | None:
        return self._cursor.execute(_SELECT_BY_ID, {"id": app_id}).fetchone()

    def by_token_lookup(self, token_lookup: bytes) -> App | None:
        return self._cursor.execute(_SELECT_BY_TOKEN_LOOKUP, {"token_lookup": token_lookup}).fetchone()

    def pause(self, app_id: str, *, reason: str) -> None:
        self._cursor.execute(_PAUSE, {"id": app_id, "reason": reason})
