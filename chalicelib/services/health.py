"""Whether Docora can serve: each dependency asked for real, none assumed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from chalicelib import errors
from chalicelib.ports import Deps


@dataclass(frozen=True)
class Health:
    healthy: bool
    checks: dict[str, str]
    checked_at: datetime


def check(*, now: datetime, deps: Deps) -> Health:
    checks = {
        "database": _status(deps.store.ping),
        "redis": _status(deps.rate_limiter.ping),
        "queues": _status(deps.scan_queue.ping),
    }
    return Health(healthy=all(value == "ok" for value in checks.values()), checks=checks, checked_at=now)


def _status(ping: Callable[[], None]) -> str:
    try:
        ping()
    except errors.Unavailable:
        return "unavailable"
    return "ok"
