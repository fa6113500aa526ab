"""The operator's view and levers: counts, lists, one app in detail, bulk retries and resyncs, pauses, circuits.

Retrying or resyncing one watch is the same use case as the app's own (services.watching).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from chalicelib import errors
from chalicelib.domain.apps import App, AppChanges, PausedBy, check_max_in_flight
from chalicelib.domain.deliveries import Attempt
from chalicelib.domain.operations import ListPage, ListQuery, Operation
from chalicelib.domain.operator_sessions import FailedFilter
from chalicelib.domain.repositories import Repository
from chalicelib.ports import Deps
from chalicelib.services import operations


def overview(*, now: datetime, deps: Deps) -> dict[str, Any]:
    """Counts, queue depths, and how far behind the head checks are (0 when none is overdue)."""
    with deps.store.transaction() as tx:
        counts = tx.admin.counts(now=now, hour_ago=now - timedelta(hours=1))
        oldest_due = tx.repositories.oldest_due_check(now=now)
    behind = max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else 0.0
    queues = {"scan": _depth(deps.scan_queue), "delivery": _depth(deps.delivery_queue)}
    return counts | {"oldest_overdue_check_seconds": round(behind, 3), "queues": queues}


def list_page(name: str, query: ListQuery, *, deps: Deps) -> ListPage:
    with deps.store.transaction() as tx:
        if query.sort not in tx.admin.sortable(name):
            allowed = ", ".join(tx.admin.sortable(name))
            raise errors.InvalidInput.field("sort", f"must be one of: {allowed}")
        return tx.admin.page(name, query)


def app_detail(app_id: str, *, deps: Deps) -> tuple[App, list[Any]]:
    with deps.store.transaction() as tx:
        app = tx.apps.get(app_id)
        statuses = tx.watches.statuses(app_id) if app else []
    if app is None:
        raise errors.NotFound(f"app {app_id} does not exist")
    return app, statuses


def retry_failed(app_id: str | None, *, now: datetime, batch_size: int, deps: Deps) -> Operation:
    """Every failed watch, of one app or of all: a bulk operation."""
    with deps.store.transaction() as tx:
        if app_id is not None and tx.apps.get(app_id) is None:
            raise errors.NotFound(f"app {app_id} does not exist")
        watches = tx.admin.failed_watches(app_id)
    return operations.start("retry_failed", watches, app_id=app_id, now=now, batch_size=batch_size, deps=deps)


def resync_app(app_id: str, *, now: datetime, batch_size: int, deps: Deps) -> Operation:
    with deps.store.transaction() as tx:
        if tx.apps.get(app_id) is None:
            raise errors.NotFound(f"app {app_id} does not exist")
        watches = tx.admin.watches_of_app(app_id)
    return operations.start("resync", watches, app_id=app_id, now=now, batch_size=batch_size, deps=deps)


def failed_page(matching: FailedFilter, *, limit: int, offset: int, deps: Deps) -> ListPage:
    with deps.store.transaction() as tx:
        return tx.admin.failed_page(matching, limit=limit, offset=offset)


def retry_failed_matching(matching: FailedFilter, *, now: datetime, batch_size: int, deps: Deps) -> Operation:
    """Every failed watch the filter matches, retried as one bulk operation."""
    with deps.store.transaction() as tx:
        watches = tx.admin.failed_matching(matching)
    return operations.start("retry_failed", watches, app_id=None, now=now, batch_size=batch_size, deps=deps)


def recent_operations(*, limit: int, deps: Deps) -> list[Operation]:
    with deps.store.transaction() as tx:
        return tx.operations.recent(limit=limit)


def repositories_removed_with(app_id: str, *, deps: Deps) -> list[Repository]:
    """The repositories that deleting the app would remove too: those no other app watches."""
    with deps.store.transaction() as tx:
        _existing(tx, app_id)
        watched = [status.repository for status in tx.watches.statuses(app_id)]
        return [repository for repository in watched if len(tx.watches.of_repository(repository.id)) == 1]


def watch_log(app_id: str, repository_id: str, *, limit: int, before: int | None, deps: Deps) -> list[Attempt]:
    """A watch's delivery attempts, newest first, as the operator sees any app's."""
    with deps.store.transaction() as tx:
        if tx.watches.get(app_id, repository_id) is None:
            raise errors.NotFound(f"app {app_id} does not watch repository {repository_id}")
        return tx.deliveries.attempts(app_id, repository_id, limit=limit, before=before)


def pause(app_id: str, *, deps: Deps) -> None:
    with deps.store.transaction() as tx:
        _existing(tx, app_id)
        tx.apps.pause(app_id, reason="paused by the operator", by=PausedBy.OPERATOR)


def set_max_in_flight(app_id: str, value: int, *, ceiling: int, deps: Deps) -> App:
    check_max_in_flight(value, ceiling=ceiling)
    with deps.store.transaction() as tx:
        _existing(tx, app_id)
        tx.apps.update(app_id, AppChanges(max_in_flight=value))
        return _existing(tx, app_id)


def resume(app_id: str, *, deps: Deps) -> None:
    """Deliveries start again; every watch of the app gets a delivery request."""
    with deps.store.transaction() as tx:
        _existing(tx, app_id)
        tx.apps.resume(app_id)
        watches = tx.admin.watches_of_app(app_id)
    deps.delivery_queue.request_deliveries(watches)


def reset_circuit(repository_id: str, *, now: datetime, deps: Deps) -> None:
    """Close the circuit and scan at once."""
    with deps.store.transaction() as tx:
        if not tx.repositories.reset_circuit(repository_id):
            raise errors.NotFound(f"repository {repository_id} does not exist")
    deps.scan_queue.request_scan(repository_id, now)


def _existing(tx: Any, app_id: str) -> App:
    app = tx.apps.get(app_id)
    if app is None:
        raise errors.NotFound(f"app {app_id} does not exist")
    return app


def _depth(queue: Any) -> dict[str, int] | None:
    try:
        return queue.depth()
    except errors.Unavailable:
        return None
