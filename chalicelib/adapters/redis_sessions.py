"""The operator's dashboard sessions in Redis, each under a hash of its id and expiring with it."""

from __future__ import annotations

import json
from datetime import datetime

import redis

from chalicelib.adapters.redis_client import translated
from chalicelib.domain.operator_sessions import OperatorSession, storage_key

_KEY_PREFIX = "docora:session:"


class RedisSessions:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def put(self, session: OperatorSession, *, now: datetime) -> None:
        value = {
            "id": session.id,
            "csrf_token": session.csrf_token,
            "created_at": session.created_at.isoformat(),
            "expires_at": session.expires_at.isoformat(),
        }
        with translated():
            self._client.set(self._key(session.id), json.dumps(value), ex=max(1, session.seconds_left(now)))

    def get(self, session_id: str) -> OperatorSession | None:
        with translated():
            raw = self._client.get(self._key(session_id))
        if raw is None:
            return None
        value = json.loads(raw)
        return OperatorSession(
            id=value["id"],
            csrf_token=value["csrf_token"],
            created_at=datetime.fromisoformat(value["created_at"]),
            expires_at=datetime.fromisoformat(value["expires_at"]),
        )

    def end(self, session_id: str) -> None:
        with translated():
            self._client.delete(self._key(session_id))

    def _key(self, session_id: str) -> str:
        return _KEY_PREFIX + storage_key(session_id)
