"""Operator bulk actions: retry or resync many watches, in batches, with progress and cancel."""

from __future__ import annotations

from datetime import datetime

from chalicelib import errors
from chalicelib.domain import tokens
from chalicelib.domain.operations import Operation
from chalicelib.ports import Deps
from chalicelib.services.watching import restart_delivery

_MAX_RUNNING_PER_SWEEP = 10


def start(
    kind: str, watches: list[tuple[str, str]], *, app_id: str | None, now: datetime, batch_size: int, deps: Deps
) -> Operation:
    """Record the work list and do the first batch now; the sweep does the rest, a batch a minute."""
    operation_id = tokens.new_operation_id()
    with deps.store.transaction() as tx:
        tx.operations.create(operation_id, kind=kind, app_id=app_id, watches=watches, now=now)
    advance(operation_id, now=now, batch_size=batch_size, deps=deps)
    return show(operation_id, deps=deps)


def show(operation_id: str, *, deps: Deps) -> Operation:
    with deps.store.transaction() as tx:
        operation = tx.operations.get(operation_id)
    if operation is None:
        raise errors.NotFound(f"operation {operation_id} does not exist")
    return operation


def cancel(operation_id: str, *, now: datetime, deps: Deps) -> Operation:
    with deps.store.transaction() as tx:
        tx.operations.cancel(operation_id, now=now)
    return show(operation_id, deps=deps)


def advance_running(*, now: datetime, batch_size: int, deps: Deps) -> int:
    with deps.store.transaction() as tx:
        running = tx.operations.running(limit=_MAX_RUNNING_PER_SWEEP)
    return sum(advance(operation_id, now=now, batch_size=batch_size, deps=deps) for operation_id in running)


def advance(operation_id: str, *, now: datetime, batch_size: int, deps: Deps) -> int:
    """Do the next batch: each watch is reset (and for a resync, its ledger emptied) and queued for delivery."""
    with deps.store.transaction() as tx:
        operation = tx.operations.get(operation_id)
        batch = tx.operations.take(operation_id, count=batch_size, now=now) if operation else []
        for app_id, repository_id in batch:
            restart_delivery(tx, app_id, repository_id, everything=operation is not None and operation.kind == "resync")
    deps.delivery_queue.request_deliveries(batch)
    return len(batch)
