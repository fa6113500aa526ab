"""The operator's use cases on the fakes: counts, lists, one app, pauses, circuits, and bulk retries and resyncs."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import errors
from chalicelib.domain import tokens
from chalicelib.domain.apps import NewApp
from chalicelib.domain.circuit_breaker import CLOSED, Circuit
from chalicelib.domain.deliveries import Retry
from chalicelib.domain.head_checks import CheckRecord
from chalicelib.domain.operations import ListQuery
from chalicelib.domain.repositories import NewRepository, NewWatch
from chalicelib.domain.snapshots import SnapshotFile, snapshot_delta
from chalicelib.ports import Deps
from chalicelib.services import admin, operations, watching

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def add_app(deps: Deps, name: str = "Mirror") -> str:
    new = NewApp(tokens.new_app_id(), name, "ops@example.com", None, None, "https://receiver.example.com",
                 secrets.token_bytes(32), "hash", "key")  # fmt: skip
    with deps.store.transaction() as tx:
        return tx.apps.add(new).id


def add_watch(deps: Deps, app_id: str, name: str = "widgets", *, failed: bool = False) -> str:
    """The app watches github.com/acme/<name>; out of attempts when `failed`. Returns the repository's id."""
    new = NewRepository(tokens.new_repository_id(), f"https://github.com/acme/{name}", "acme", name, "main", False)
    with deps.store.transaction() as tx:
        repository_id = tx.repositories.add(new).id
        tx.watches.add(NewWatch(app_id, repository_id, None))
        if failed:
            retry = Retry(5, failed=True, delay_seconds=None, next_attempt_at=None)
            tx.watches.record_delivery_failure(app_id, repository_id, retry=retry, error="the receiver answered 500")
    return repository_id


def state(deps: Deps, app_id: str, repository_id: str) -> tuple[str, int, str | None]:
    with deps.store.transaction() as tx:
        watch = tx.watches.get(app_id, repository_id)
    return watch.status, watch.attempts, watch.last_error


def delivered_a_file_since_removed(deps: Deps, app_id: str, repository_id: str) -> None:
    """The snapshot holds a.md; the app holds a.md as it is and gone.md, which the repository no longer has."""
    a_md = SnapshotFile("a.md", "0" * 40, hashlib.sha256(b"a").digest(), 1, False)
    with deps.store.transaction() as tx:
        tx.snapshots.apply(repository_id, commit="c1", delta=snapshot_delta({}, [a_md]), taken_at=NOW)
    deps.store.tables.ledger[(app_id, repository_id)] = {"a.md": a_md.sha256, "gone.md": b"\0" * 32}


def pending(deps: Deps, app_id: str, repository_id: str) -> list[tuple[str, str]]:
    with deps.store.transaction() as tx:
        return [(change.event, change.path) for change in tx.deliveries.pending(app_id, repository_id)]


class UnreachableQueue:
    def depth(self) -> dict[str, int]:
        raise errors.Unavailable("queue docora-scan is not available")


def test_the_overview_adds_the_queue_depths_to_the_counts(deps):
    add_watch(deps, add_app(deps), failed=True)
    deps.scan_queue.request_scan("repo_" + "0" * 24, NOW)

    overview = admin.overview(now=NOW, deps=deps)

    assert (overview["apps"], overview["repositories"], overview["watches"]["failed"]) == (1, 1, 1)
    assert overview["queues"] == {
        "scan": {"waiting": 1, "in_flight": 0, "delayed": 0},
        "delivery": {"waiting": 0, "in_flight": 0, "delayed": 0},
    }


def test_the_overview_says_how_long_the_oldest_overdue_head_check_has_waited(deps):
    add_watch(deps, add_app(deps))
    with deps.store.transaction() as tx:
        (target,) = tx.repositories.claim_due_checks(now=NOW, until=NOW, limit=1)
        record = CheckRecord(target.repository_id, NOW + timedelta(minutes=5), CLOSED, None, False, False)
        tx.repositories.record_checks([record], checked_at=NOW)

    on_time = admin.overview(now=NOW + timedelta(minutes=5), deps=deps)
    late = admin.overview(now=NOW + timedelta(minutes=7), deps=deps)

    assert (on_time["oldest_overdue_check_seconds"], late["oldest_overdue_check_seconds"]) == (0.0, 120.0)


def test_the_overview_shows_no_depth_for_a_queue_it_cannot_reach(deps):
    deps = dataclasses.replace(deps, scan_queue=UnreachableQueue())

    overview = admin.overview(now=NOW, deps=deps)

    assert overview["queues"]["scan"] is None
    assert overview["queues"]["delivery"] == {"waiting": 0, "in_flight": 0, "delayed": 0}


def test_a_list_page_is_searched_sorted_and_paged_as_asked(deps):
    app_id = add_app(deps)
    for name in ("widgets", "gadgets", "gizmos"):
        add_watch(deps, app_id, name)

    found = admin.list_page("repositories", ListQuery("acme/g", "github_url", True, 1, 1), deps=deps)

    assert [item["github_url"] for item in found.items] == ["https://github.com/acme/gadgets"]
    assert found.total == 2


def test_a_list_refuses_a_sort_column_it_cannot_sort_by(deps):
    with pytest.raises(errors.InvalidInput) as refused:
        admin.list_page("apps", ListQuery(None, "token_hash", False, 50, 0), deps=deps)

    assert refused.value.details == [
        errors.FieldError("sort", "must be one of: created_at, app_name, email, failing_since, last_success_at")
    ]


def test_app_detail_gives_the_app_and_the_status_of_each_of_its_watches(deps):
    app_id = add_app(deps, "Docs mirror")
    repository_ids = [add_watch(deps, app_id, name) for name in ("widgets", "gadgets")]

    app, statuses = admin.app_detail(app_id, deps=deps)

    assert app.app_name == "Docs mirror"
    assert sorted(status.repository.id for status in statuses) == sorted(repository_ids)


def test_app_detail_of_a_missing_app_is_not_found(deps):
    with pytest.raises(errors.NotFound):
        admin.app_detail(tokens.new_app_id(), deps=deps)


def test_retrying_the_failed_watches_of_an_app_restarts_a_first_batch_of_them_at_once(deps):
    app_id, other_app_id = add_app(deps), add_app(deps)
    failed = sorted((app_id, add_watch(deps, app_id, name, failed=True)) for name in ("a", "b", "c"))
    add_watch(deps, app_id, "healthy")  # not failed, so not part of the operation
    other = add_watch(deps, other_app_id, "other", failed=True)

    operation = admin.retry_failed(app_id, now=NOW, batch_size=2, deps=deps)

    assert (operation.kind, operation.app_id, operation.status) == ("retry_failed", app_id, "running")
    assert (operation.total, operation.done) == (3, 2)
    assert [state(deps, *watch)[0] for watch in failed] == ["pending", "pending", "failed"]
    assert state(deps, *failed[0]) == ("pending", 0, None)
    assert state(deps, other_app_id, other)[0] == "failed"
    assert [(a, r) for a, r, _ in deps.delivery_queue.requested] == failed[:2]


def test_retrying_failed_watches_everywhere_covers_every_app(deps):
    watches = [(app_id, add_watch(deps, app_id, failed=True)) for app_id in (add_app(deps), add_app(deps))]

    operation = admin.retry_failed(None, now=NOW, batch_size=10, deps=deps)

    assert (operation.app_id, operation.status, operation.total, operation.done) == (None, "done", 2, 2)
    assert [state(deps, *watch)[0] for watch in watches] == ["pending", "pending"]


@pytest.mark.parametrize("bulk_action", [admin.retry_failed, admin.resync_app])
def test_a_bulk_action_on_a_missing_app_is_not_found_and_starts_nothing(deps, bulk_action):
    with pytest.raises(errors.NotFound):
        bulk_action(tokens.new_app_id(), now=NOW, batch_size=10, deps=deps)

    assert deps.store.tables.operations == {}


def test_resyncing_an_app_sends_every_file_of_each_of_its_watches_again(deps):
    app_id = add_app(deps)
    repository_ids = [add_watch(deps, app_id, name) for name in ("widgets", "gadgets")]
    for repository_id in repository_ids:
        delivered_a_file_since_removed(deps, app_id, repository_id)

    operation = admin.resync_app(app_id, now=NOW, batch_size=10, deps=deps)

    assert (operation.kind, operation.status, operation.done) == ("resync", "done", 2)
    for repository_id in repository_ids:
        assert pending(deps, app_id, repository_id) == [("delete", "gone.md"), ("create", "a.md")]
    assert sorted(r for _, r, _ in deps.delivery_queue.requested) == sorted(repository_ids)


def test_pausing_an_app_stops_its_deliveries_for_a_reason_the_app_can_see(deps):
    app_id = add_app(deps)

    admin.pause(app_id, deps=deps)

    with deps.store.transaction() as tx:
        app = tx.apps.get(app_id)
    assert (app.delivery_state, app.paused_reason) == ("paused", "paused by the operator")


def test_resuming_an_app_requests_a_delivery_for_each_of_its_watches(deps):
    app_id = add_app(deps)
    repository_ids = [add_watch(deps, app_id, name) for name in ("widgets", "gadgets")]
    admin.pause(app_id, deps=deps)

    admin.resume(app_id, deps=deps)

    with deps.store.transaction() as tx:
        app = tx.apps.get(app_id)
    assert (app.delivery_state, app.paused_reason) == ("active", None)
    assert deps.delivery_queue.requested == [(app_id, r, 0) for r in sorted(repository_ids)]


@pytest.mark.parametrize("lever", [admin.pause, admin.resume])
def test_pausing_or_resuming_a_missing_app_is_not_found(deps, lever):
    with pytest.raises(errors.NotFound):
        lever(tokens.new_app_id(), deps=deps)


def test_resetting_a_circuit_closes_it_and_requests_a_scan_at_once(deps):
    repository_id = add_watch(deps, add_app(deps))
    with deps.store.transaction() as tx:
        tx.repositories.record_failure(repository_id, circuit=Circuit(7, NOW + timedelta(hours=1)), error="down")

    admin.reset_circuit(repository_id, now=NOW, deps=deps)

    with deps.store.transaction() as tx:
        repository = tx.repositories.get(repository_id)
    assert (repository.consecutive_failures, repository.circuit_open_until) == (0, None)
    assert (deps.scan_queue.requested, deps.scan_queue.requested_at) == ([repository_id], [NOW])


def test_resetting_the_circuit_of_a_missing_repository_is_not_found_and_scans_nothing(deps):
    with pytest.raises(errors.NotFound):
        admin.reset_circuit(tokens.new_repository_id(), now=NOW, deps=deps)

    assert deps.scan_queue.requested == []


@pytest.mark.parametrize(
    ("deliver_again", "left_to_send"),
    [(watching.retry, [("delete", "gone.md")]), (watching.resync, [("delete", "gone.md"), ("create", "a.md")])],
    ids=["a retry sends what the app lacks", "a resync sends every file again"],
)
def test_one_watch_delivered_again_gets_fresh_attempts_and_a_delivery_request(deps, deliver_again, left_to_send):
    app_id = add_app(deps)
    repository_id = add_watch(deps, app_id, failed=True)
    delivered_a_file_since_removed(deps, app_id, repository_id)

    deliver_again(app_id, repository_id, deps=deps)

    assert state(deps, app_id, repository_id) == ("pending", 0, None)
    assert pending(deps, app_id, repository_id) == left_to_send
    assert deps.delivery_queue.requested == [(app_id, repository_id, 0)]


@pytest.mark.parametrize("deliver_again", [watching.retry, watching.resync])
def test_retrying_or_resyncing_a_watch_that_does_not_exist_is_not_found(deps, deliver_again):
    app_id = add_app(deps)

    with pytest.raises(errors.NotFound):
        deliver_again(app_id, tokens.new_repository_id(), deps=deps)

    assert deps.delivery_queue.requested == []


def test_advancing_an_operation_does_one_batch_at_a_time_until_it_is_done(deps):
    app_id = add_app(deps)
    watches = sorted((app_id, add_watch(deps, app_id, name, failed=True)) for name in ("a", "b", "c", "d", "e"))
    started = operations.start("retry_failed", watches, app_id=app_id, now=NOW, batch_size=2, deps=deps)

    counts = [operations.advance(started.id, now=NOW + timedelta(minutes=m), batch_size=2, deps=deps) for m in (1, 2)]

    finished = operations.show(started.id, deps=deps)
    assert (started.status, started.done, started.created_at) == ("running", 2, NOW)
    assert counts == [2, 1]
    assert (finished.status, finished.done, finished.updated_at) == ("done", 5, NOW + timedelta(minutes=2))
    assert [(a, r) for a, r, _ in deps.delivery_queue.requested] == watches


def test_advancing_the_running_operations_does_a_batch_of_each(deps):
    app_id = add_app(deps)
    watches = [(app_id, add_watch(deps, app_id, name, failed=True)) for name in ("a", "b", "c", "d")]
    started = [
        operations.start("retry_failed", half, app_id=None, now=NOW, batch_size=1, deps=deps)
        for half in (watches[:2], watches[2:])
    ]

    advanced = operations.advance_running(now=NOW, batch_size=5, deps=deps)

    assert advanced == 2
    assert [operations.show(s.id, deps=deps).status for s in started] == ["done", "done"]


def test_a_cancelled_operation_is_advanced_no_further(deps):
    app_id = add_app(deps)
    watches = sorted((app_id, add_watch(deps, app_id, name, failed=True)) for name in ("a", "b", "c"))
    started = operations.start("retry_failed", watches, app_id=app_id, now=NOW, batch_size=1, deps=deps)

    cancelled = operations.cancel(started.id, now=NOW + timedelta(minutes=1), deps=deps)
    advanced = operations.advance(started.id, now=NOW + timedelta(minutes=2), batch_size=5, deps=deps)

    assert (cancelled.status, cancelled.done, cancelled.total, advanced) == ("cancelled", 1, 3, 0)
    assert [state(deps, *watch)[0] for watch in watches] == ["pending", "failed", "failed"]
    assert len(deps.delivery_queue.requested) == 1


def test_showing_or_cancelling_a_missing_operation_is_not_found(deps):
    missing = tokens.new_operation_id()

    with pytest.raises(errors.NotFound):
        operations.show(missing, deps=deps)
    with pytest.raises(errors.NotFound):
        operations.cancel(missing, now=NOW, deps=deps)
