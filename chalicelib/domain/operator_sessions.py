"""The operator's dashboard sessions: what a signed-in browser holds, and the filters of the failed-deliveries page."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

SESSION_LIFETIME = timedelta(hours=8)


@dataclass(frozen=True)
class OperatorSession:
    """A signed-in browser: the cookie carries `id`; forms and scripts echo `csrf_token` on every change."""

    id: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime

    def seconds_left(self, now: datetime) -> int:
        return max(0, int((self.expires_at - now).total_seconds()))


def storage_key(session_id: str) -> str:
    """Sessions are stored under a hash of their id, so a copy of the store holds no usable cookie."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class FailedFilter:
    """Failed watches whose app, repository and last error contain these texts (None: any)."""

    app: str | None = None
    repository: str | None = None
    error: str | None = None
