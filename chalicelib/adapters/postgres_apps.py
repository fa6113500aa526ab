"""SQL for the apps table: rows in, domain objects out."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import class_row

from chalicelib import errors
from chalicelib.domain.apps import App, AppChanges, NewApp, PausedBy

_INSERT = """
    INSERT INTO apps (id, app_name, email, website, description, base_url,
                      token_lookup, token_hash, client_auth_key_encrypted)
    VALUES (%(id)s, %(app_name)s, %(email)s, %(website)s, %(description)s, %(base_url)s,
            %(token_lookup)s, %(token_hash)s, %(client_auth_key_encrypted)s)
    RETURNING id, app_name, email, website, description, base_url, token_hash, client_auth_key_encrypted,
              delivery_state, created_at, previous_client_auth_key_encrypted, previous_client_auth_key_expires_at,
              paused_reason, max_in_flight, consecutive_timeouts, failing_since, last_success_at, paused_by
"""
_SELECT_BY_ID = """
    SELECT id, app_name, email, website, description, base_url, token_hash, client_auth_key_encrypted, delivery_state,
           created_at, previous_client_auth_key_encrypted, previous_client_auth_key_expires_at, paused_reason,
           max_in_flight, consecutive_timeouts, failing_since, last_success_at, paused_by
      FROM apps
     WHERE id = %(id)s
"""
_SELECT_MANY = """
    SELECT id, app_name, email, website, description, base_url, token_hash, client_auth_key_encrypted, delivery_state,
           created_at, previous_client_auth_key_encrypted, previous_client_auth_key_expires_at, paused_reason,
           max_in_flight, consecutive_timeouts, failing_since, last_success_at, paused_by
      FROM apps
     WHERE id = ANY(%(ids)s)
"""
# Any answer ends a run of timeouts; a success ends a failing streak, a failure starts one if none is running.
_RECORD_RECEIVER_ANSWER = """
    UPDATE apps
       SET consecutive_timeouts = CASE WHEN %(timed_out)s THEN consecutive_timeouts + 1 ELSE 0 END,
           failing_since = CASE WHEN %(succeeded)s THEN NULL ELSE coalesce(failing_since, %(at)s) END,
           last_success_at = CASE WHEN %(succeeded)s THEN %(at)s ELSE last_success_at END
     WHERE id = %(id)s
    RETURNING failing_since
"""
# The lookup key is unique and indexed: authentication costs one index probe whatever the number of apps.
_SELECT_BY_TOKEN_LOOKUP = """
    SELECT id, app_name, email, website, description, base_url, token_hash, client_auth_key_encrypted, delivery_state,
           created_at, previous_client_auth_key_encrypted, previous_client_auth_key_expires_at, paused_reason,
           max_in_flight, consecutive_timeouts, failing_since, last_success_at, paused_by
      FROM apps
     WHERE token_lookup = %(token_lookup)s
"""
# Few rows, and fewer as imported apps authenticate: a partial index holds exactly these.
_SELECT_AWAITING_TOKEN_LOOKUP = """
    SELECT id, app_name, email, website, description, base_url, token_hash, client_auth_key_encrypted, delivery_state,
           created_at, previous_client_auth_key_encrypted, previous_client_auth_key_expires_at, paused_reason,
           max_in_flight, consecutive_timeouts, failing_since, last_success_at, paused_by
      FROM apps
     WHERE token_lookup IS NULL
     ORDER BY created_at, id
"""
_CLAIM_TOKEN_LOOKUP = """
    UPDATE apps SET token_lookup = %(token_lookup)s WHERE id = %(id)s AND token_lookup IS NULL
"""
_SET_TOKEN = """
    UPDATE apps SET token_lookup = %(token_lookup)s, token_hash = %(token_hash)s, updated_at = now() WHERE id = %(id)s
"""
# The key being replaced stays usable for the overlap, so receivers can switch without losing a request.
_ROTATE_KEY = """
    UPDATE apps
       SET previous_client_auth_key_encrypted = client_auth_key_encrypted,
           previous_client_auth_key_expires_at = %(previous_until)s,
           client_auth_key_encrypted = %(key)s, updated_at = now()
     WHERE id = %(id)s
"""
_UPDATE_PROFILE = """
    UPDATE apps
       SET base_url = COALESCE(%(base_url)s, base_url), app_name = COALESCE(%(app_name)s, app_name),
           email = COALESCE(%(email)s, email), website = COALESCE(%(website)s, website),
           description = COALESCE(%(description)s, description),
           max_in_flight = COALESCE(%(max_in_flight)s, max_in_flight), updated_at = now()
     WHERE id = %(id)s
"""
# A resumed app starts afresh: its receiver is given its full capacity, and a new failing streak its full time.
_RESUME = """
    UPDATE apps
       SET delivery_state = 'active', paused_reason = NULL, paused_by = NULL, consecutive_timeouts = 0,
           failing_since = NULL, updated_at = now()
     WHERE id = %(id)s
"""
_DELETE = "DELETE FROM apps WHERE id = %(id)s"
_PAUSE = """
    UPDATE apps SET delivery_state = 'paused', paused_reason = %(reason)s, paused_by = %(by)s, updated_at = now()
     WHERE id = %(id)s
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

    def get_many(self, app_ids: list[str]) -> dict[str, App]:
        return {app.id: app for app in self._cursor.execute(_SELECT_MANY, {"ids": app_ids}).fetchall()}

    def record_receiver_answer(self, app_id: str, *, succeeded: bool, timed_out: bool, at: datetime) -> datetime | None:
        params = {"id": app_id, "succeeded": succeeded, "timed_out": timed_out, "at": at}
        with self._cursor.connection.cursor() as cursor:
            row = cursor.execute(_RECORD_RECEIVER_ANSWER, params).fetchone()
        return row[0] if row else None

    def by_token_lookup(self, token_lookup: bytes) -> App | None:
        return self._cursor.execute(_SELECT_BY_TOKEN_LOOKUP, {"token_lookup": token_lookup}).fetchone()

    def awaiting_token_lookup(self) -> list[App]:
        return self._cursor.execute(_SELECT_AWAITING_TOKEN_LOOKUP).fetchall()

    def claim_token_lookup(self, app_id: str, token_lookup: bytes) -> bool:
        params = {"id": app_id, "token_lookup": token_lookup}
        with self._cursor.connection.cursor() as cursor:
            return cursor.execute(_CLAIM_TOKEN_LOOKUP, params).rowcount == 1

    def pause(self, app_id: str, *, reason: str, by: PausedBy) -> None:
        self._cursor.execute(_PAUSE, {"id": app_id, "reason": reason, "by": by.value})

    def resume(self, app_id: str) -> None:
        self._cursor.execute(_RESUME, {"id": app_id})

    def set_token(self, app_id: str, *, token_lookup: bytes, token_hash: str) -> None:
        self._cursor.execute(_SET_TOKEN, {"id": app_id, "token_lookup": token_lookup, "token_hash": token_hash})

    def rotate_key(self, app_id: str, *, key_encrypted: str, previous_until: datetime) -> None:
        self._cursor.execute(_ROTATE_KEY, {"id": app_id, "key": key_encrypted, "previous_until": previous_until})

    def update(self, app_id: str, changes: AppChanges) -> None:
        self._cursor.execute(_UPDATE_PROFILE, {"id": app_id} | vars(changes))

    def delete(self, app_id: str) -> bool:
        """The app and what hangs off it (watches, ledger, attempt log, operations) go together."""
        return self._cursor.execute(_DELETE, {"id": app_id}).rowcount == 1
