"""One behaviour spec for the operator's counts, lists and bulk operations, run on the fakes and on Postgres."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from chalicelib.domain import tokens
from chalicelib.domain.apps import NewApp, PausedBy
from chalicelib.domain.circuit_breaker import Circuit
from chalicelib.domain.deliveries import Attempt, Retry
from chalicelib.domain.operations import ListPage, ListQuery, Operation
from chalicelib.domain.repositories import NewRepository, NewWatch
from chalicelib.ports import Store
from tests.fakes import InMemoryStore

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
T1, T2, T3 = NOW - timedelta(hours=3), NOW - timedelta(hours=2), NOW - timedelta(hours=1)


class World:
    """Rows put in through the store's ports, and dated through the backend where no port sets the date."""

    def __init__(self, store: Store, dates: _InMemoryDates | _PostgresDates) -> None:
        self.store = store
        self.ids: dict[str, str] = {}
        self._dates = dates

    def app(self, label: str, name: str, email: str, base_url: str, *, created_at: datetime = T1) -> str:
        new = NewApp(tokens.new_app_id(), name, email, None, None, base_url, secrets.token_bytes(32), "hash", "key")
        with self.store.transaction() as tx:
            self.ids[label] = tx.apps.add(new).id
        self._dates.app(self.ids[label], created_at)
        return self.ids[label]

    def repository(self, label: str, *, created_at: datetime = T1) -> str:
        url = f"https://github.com/acme/{label}"
        new = NewRepository(tokens.new_repository_id(), url, "acme", label, "main", False)
        with self.store.transaction() as tx:
            self.ids[label] = tx.repositories.add(new).id
        self._dates.repository(self.ids[label], created_at)
        return self.ids[label]

    def watch(self, app_id: str, repository_id: str, status: str = "pending", *, attempts: int = 0,
              error: str | None = None, updated_at: datetime | None = None) -> None:  # fmt: skip
        with self.store.transaction() as tx:
            tx.watches.add(NewWatch(app_id, repository_id, None))
            if status == "syncing":
                tx.watches.start_sync(app_id, repository_id)
            elif status == "synced":
                tx.watches.finish_sync(app_id, repository_id, commit="c1", at=T1)
            elif status == "failed":
                retry = Retry(attempts, failed=True, delay_seconds=None, next_attempt_at=None)
                tx.watches.record_delivery_failure(app_id, repository_id, retry=retry, error=error or "")
        if updated_at is not None:
            self._dates.watch(app_id, repository_id, updated_at)

    def attempt(self, app_id: str, repository_id: str, delivery_id: str, *, at: datetime, path: str | None = "a.md",
                event: str = "create", error: str | None = None) -> None:  # fmt: skip
        attempt = Attempt(None, path, event, delivery_id, 1, 500 if error else 200, error, 12, at)
        with self.store.transaction() as tx:
            tx.deliveries.log_attempt(app_id, repository_id, attempt)


class _InMemoryDates:
    def __init__(self, store: InMemoryStore) -> None:
        self._tables = store.tables

    def app(self, app_id: str, created_at: datetime) -> None:
        app, lookup = self._tables.apps[app_id]
        self._tables.apps[app_id] = (replace(app, created_at=created_at), lookup)

    def repository(self, repository_id: str, created_at: datetime) -> None:
        repository = self._tables.repositories[repository_id]
        self._tables.repositories[repository_id] = replace(repository, created_at=created_at)

    def watch(self, app_id: str, repository_id: str, updated_at: datetime) -> None:
        self._tables.updated_at[(app_id, repository_id)] = updated_at


class _PostgresDates:
    def __init__(self, url: str) -> None:
        self._url = url

    def app(self, app_id: str, created_at: datetime) -> None:
        self._execute("UPDATE apps SET created_at = %s WHERE id = %s", created_at, app_id)

    def repository(self, repository_id: str, created_at: datetime) -> None:
        self._execute("UPDATE repositories SET created_at = %s WHERE id = %s", created_at, repository_id)

    def watch(self, app_id: str, repository_id: str, updated_at: datetime) -> None:
        statement = "UPDATE watches SET updated_at = %s WHERE app_id = %s AND repository_id = %s"
        self._execute(statement, updated_at, app_id, repository_id)

    def _execute(self, statement: str, *params: object) -> None:
        with psycopg.connect(self._url) as connection:
            connection.execute(statement, params)


@pytest.fixture(params=["in_memory", "postgres"])
def world(request) -> World:
    if request.param == "in_memory":
        store = InMemoryStore()
        return World(store, _InMemoryDates(store))
    return World(request.getfixturevalue("postgres_store"), _PostgresDates(request.getfixturevalue("database_url")))


@pytest.fixture
def catalogue(world: World) -> World:
    """Three of everything, each list's sortable columns in a different order."""
    alpha = world.app("alpha", "Alpha Docs", "zed@alpha.example.com", "https://alpha.example.com", created_at=T2)
    beta = world.app("beta", "Beta_Mirror", "ops@beta.example.com", "https://hooks.beta.example.com", created_at=T3)
    gamma = world.app("gamma", "Gamma 100%", "admin@gamma.example.com", "https://gamma.example.com", created_at=T1)
    widgets = world.repository("widgets", created_at=T1)
    a_b = world.repository("a_b", created_at=T3)
    axb = world.repository("axb", created_at=T2)
    with world.store.transaction() as tx:
        tx.apps.pause(beta, reason="paused by the operator", by=PausedBy.OPERATOR)
        tx.repositories.record_scan(widgets, scanned_at=T3)
        tx.repositories.record_success(widgets, head="c1")
        tx.repositories.record_failure(a_b, circuit=Circuit(2, NOW + timedelta(hours=1)), error="repository not found")
        tx.repositories.record_scan(axb, scanned_at=T1)
        tx.repositories.record_failure(axb, circuit=Circuit(5, T1), error="timed out")
        tx.apps.record_receiver_answer(alpha, succeeded=True, timed_out=False, at=T1)
        tx.apps.record_receiver_answer(alpha, succeeded=False, timed_out=False, at=T3)
        tx.apps.record_receiver_answer(beta, succeeded=False, timed_out=True, at=T2)
        tx.apps.record_receiver_answer(gamma, succeeded=True, timed_out=False, at=T2)
    world.watch(alpha, widgets, "failed", attempts=5, error="the receiver answered 500", updated_at=T2)
    world.watch(beta, a_b, "failed", attempts=3, error="connection refused", updated_at=T3)
    world.watch(gamma, axb, "failed", attempts=7, error="timed out", updated_at=T1)
    world.watch(alpha, a_b, "synced")
    world.attempt(alpha, widgets, "d1", at=T1, path="docs/100%.md", error="the receiver answered 500")
    world.attempt(beta, a_b, "d2", at=T2, path="README.md")
    world.attempt(gamma, axb, "d3", at=T3, path=None, event="sync_failed", error="connection refused")
    return world


def page(world: World, name: str, sort: str, *, search: str | None = None, descending: bool = False,
         limit: int = 50, offset: int = 0) -> ListPage:  # fmt: skip
    with world.store.transaction() as tx:
        return tx.admin.page(name, ListQuery(search, sort, descending, limit, offset))


_LABEL = {"apps": "app_name", "repositories": "github_url", "failed_watches": "app_name", "attempts": "delivery_id"}


def labels(found: ListPage, name: str) -> list[str]:
    return [str(item[_LABEL[name]]).removeprefix("https://github.com/acme/") for item in found.items]


def test_counts_tell_apps_repositories_open_circuits_watches_and_the_last_hours_attempts(world):
    alpha = world.app("alpha", "Alpha", "a@example.com", "https://a.example.com")
    beta = world.app("beta", "Beta", "b@example.com", "https://b.example.com")
    open_circuit, closing = world.repository("open"), world.repository("closes_now")
    with world.store.transaction() as tx:
        tx.apps.pause(beta, reason="paused by the operator", by=PausedBy.OPERATOR)
        tx.repositories.record_failure(open_circuit, circuit=Circuit(5, NOW + timedelta(seconds=1)), error="down")
        tx.repositories.record_failure(closing, circuit=Circuit(5, NOW), error="down")
    for app_id, repository_id, status in ((alpha, open_circuit, "pending"), (alpha, closing, "syncing"),
                                          (beta, open_circuit, "synced"), (beta, closing, "failed")):  # fmt: skip
        world.watch(app_id, repository_id, status)
    world.attempt(alpha, open_circuit, "too old", at=NOW - timedelta(hours=1))
    world.attempt(alpha, open_circuit, "ok", at=NOW - timedelta(minutes=59))
    world.attempt(alpha, open_circuit, "failed", at=NOW - timedelta(minutes=1), error="the receiver answered 500")

    with world.store.transaction() as tx:
        counts = tx.admin.counts(now=NOW, hour_ago=NOW - timedelta(hours=1))

    assert counts == {
        "apps": 2,
        "paused_apps": 1,
        "repositories": 2,
        "open_circuits": 1,
        "attempts_last_hour": 2,
        "failures_last_hour": 1,
        "overdue_checks": 2,  # neither has been checked, and both were due from their creation, hours ago
        "watches": {"pending": 1, "syncing": 1, "synced": 1, "failed": 1},
    }


def test_counts_of_an_empty_store_are_all_zero(world):
    with world.store.transaction() as tx:
        counts = tx.admin.counts(now=NOW, hour_ago=NOW - timedelta(hours=1))

    assert counts["watches"] == {"pending": 0, "syncing": 0, "synced": 0, "failed": 0}
    assert {key: value for key, value in counts.items() if key != "watches"} == dict.fromkeys(
        (
            "apps",
            "paused_apps",
            "repositories",
            "open_circuits",
            "attempts_last_hour",
            "failures_last_hour",
            "overdue_checks",
        ),
        0,
    )


def test_the_apps_list_shows_each_app_with_its_delivery_state_and_watch_counts(catalogue):
    ids = catalogue.ids

    found = page(catalogue, "apps", "app_name")

    assert found.total == 3
    assert found.items == [
        {"id": ids["alpha"], "app_name": "Alpha Docs", "email": "zed@alpha.example.com",
         "base_url": "https://alpha.example.com", "delivery_state": "active", "paused_reason": None, "created_at": T2,
         "failing_since": T3, "last_success_at": T1, "watches": 2, "failed_watches": 1},
        {"id": ids["beta"], "app_name": "Beta_Mirror", "email": "ops@beta.example.com",
         "base_url": "https://hooks.beta.example.com", "delivery_state": "paused",
         "paused_reason": "paused by the operator", "created_at": T3, "failing_since": T2, "last_success_at": None,
         "watches": 1, "failed_watches": 1},
        {"id": ids["gamma"], "app_name": "Gamma 100%", "email": "admin@gamma.example.com",
         "base_url": "https://gamma.example.com", "delivery_state": "active", "paused_reason": None, "created_at": T1,
         "failing_since": None, "last_success_at": T2, "watches": 1, "failed_watches": 1},
    ]  # fmt: skip


def test_the_repositories_list_shows_each_repository_with_its_checks_circuit_and_watch_count(catalogue):
    ids = catalogue.ids

    found = page(catalogue, "repositories", "github_url")

    assert found.items == [
        {"id": ids["a_b"], "github_url": "https://github.com/acme/a_b", "branch": "main", "is_private": False,
         "last_head": None, "last_checked_at": None, "consecutive_failures": 2,
         "circuit_open_until": NOW + timedelta(hours=1), "last_error": "repository not found", "created_at": T3,
         "next_check_at": None, "watches": 2, "app_names": ["Alpha Docs", "Beta_Mirror"]},
        {"id": ids["axb"], "github_url": "https://github.com/acme/axb", "branch": "main", "is_private": False,
         "last_head": None, "last_checked_at": T1, "consecutive_failures": 5, "circuit_open_until": T1,
         "last_error": "timed out", "created_at": T2, "next_check_at": None, "watches": 1,
         "app_names": ["Gamma 100%"]},
        {"id": ids["widgets"], "github_url": "https://github.com/acme/widgets", "branch": "main", "is_private": False,
         "last_head": "c1", "last_checked_at": T3, "consecutive_failures": 0, "circuit_open_until": None,
         "last_error": None, "created_at": T1, "next_check_at": None, "watches": 1, "app_names": ["Alpha Docs"]},
    ]  # fmt: skip


def test_the_failed_watches_list_shows_only_failed_watches_with_their_app_and_repository(catalogue):
    ids = catalogue.ids

    found = page(catalogue, "failed_watches", "attempts")

    assert found.items == [
        {"app_id": ids["beta"], "repository_id": ids["a_b"], "app_name": "Beta_Mirror",
         "github_url": "https://github.com/acme/a_b", "attempts": 3, "last_error": "connection refused",
         "updated_at": T3},
        {"app_id": ids["alpha"], "repository_id": ids["widgets"], "app_name": "Alpha Docs",
         "github_url": "https://github.com/acme/widgets", "attempts": 5, "last_error": "the receiver answered 500",
         "updated_at": T2},
        {"app_id": ids["gamma"], "repository_id": ids["axb"], "app_name": "Gamma 100%",
         "github_url": "https://github.com/acme/axb", "attempts": 7, "last_error": "timed out", "updated_at": T1},
    ]  # fmt: skip


def test_the_attempts_list_shows_every_attempt_of_every_watch(catalogue):
    ids = catalogue.ids

    found = page(catalogue, "attempts", "attempted_at")
    attempt_ids = [item.pop("id") for item in found.items]

    assert all(isinstance(attempt_id, int) for attempt_id in attempt_ids) and attempt_ids == sorted(attempt_ids)
    assert found.items == [
        {"app_id": ids["alpha"], "repository_id": ids["widgets"], "path": "docs/100%.md", "event": "create",
         "delivery_id": "d1", "attempt": 1, "status_code": 500, "error": "the receiver answered 500",
         "duration_ms": 12, "attempted_at": T1},
        {"app_id": ids["beta"], "repository_id": ids["a_b"], "path": "README.md", "event": "create",
         "delivery_id": "d2", "attempt": 1, "status_code": 200, "error": None, "duration_ms": 12, "attempted_at": T2},
        {"app_id": ids["gamma"], "repository_id": ids["axb"], "path": None, "event": "sync_failed",
         "delivery_id": "d3", "attempt": 1, "status_code": 500, "error": "connection refused", "duration_ms": 12,
         "attempted_at": T3},
    ]  # fmt: skip


# Each sortable column and the catalogue in ascending order by it; a NULL comes last ascending, first descending.
SORTS = {
    "apps": {"created_at": ["Gamma 100%", "Alpha Docs", "Beta_Mirror"],
             "app_name": ["Alpha Docs", "Beta_Mirror", "Gamma 100%"],
             "email": ["Gamma 100%", "Beta_Mirror", "Alpha Docs"],
             "failing_since": ["Beta_Mirror", "Alpha Docs", "Gamma 100%"],
             "last_success_at": ["Alpha Docs", "Gamma 100%", "Beta_Mirror"]},
    "repositories": {"created_at": ["widgets", "axb", "a_b"], "github_url": ["a_b", "axb", "widgets"],
                     "last_checked_at": ["axb", "widgets", "a_b"], "consecutive_failures": ["widgets", "a_b", "axb"]},
    "failed_watches": {"updated_at": ["Gamma 100%", "Alpha Docs", "Beta_Mirror"],
                       "attempts": ["Beta_Mirror", "Alpha Docs", "Gamma 100%"]},
    "attempts": {"attempted_at": ["d1", "d2", "d3"]},
}  # fmt: skip


@pytest.mark.parametrize("name", SORTS)
def test_every_sortable_column_sorts_both_ways(catalogue, name):
    found = {
        sort: (labels(page(catalogue, name, sort), name), labels(page(catalogue, name, sort, descending=True), name))
        for sort in SORTS[name]
    }

    assert found == {sort: (ascending, ascending[::-1]) for sort, ascending in SORTS[name].items()}


# Each search and what it finds; "<label>" stands for that row's id. The last of each list is in a column the list
# shows but does not search, so it finds nothing.
SEARCHES = {
    "apps": {"DOCS": ["Alpha Docs"], "ZED@": ["Alpha Docs"], "HOOKS.": ["Beta_Mirror"], "<gamma>": ["Gamma 100%"],
             "paused": []},
    "repositories": {"WIDGETS": ["widgets"], "acme/a": ["a_b", "axb"], "<axb>": ["axb"], "main": []},
    "failed_watches": {"beta_": ["Beta_Mirror"], "AXB": ["Gamma 100%"], "<alpha>": ["Alpha Docs"],
                       "<a_b>": ["Beta_Mirror"], "refused": []},
    "attempts": {"readme": ["d2"], "ANSWERED": ["d1"], "<gamma>": ["d3"], "<widgets>": ["d1"], "create": []},
}  # fmt: skip


@pytest.mark.parametrize("name", SEARCHES)
def test_search_matches_any_searched_column_ignoring_case(catalogue, name):
    sort = next(iter(SORTS[name]))
    ids = {f"<{label}>": value for label, value in catalogue.ids.items()}

    found = {search: sorted(labels(page(catalogue, name, sort, search=ids.get(search, search)), name))
             for search in SEARCHES[name]}  # fmt: skip

    assert found == SEARCHES[name]


def test_search_takes_percent_underscore_and_backslash_literally(world):
    for name in ("a_b", "axb", "100%", "1000", "a\\b", "ab"):
        world.app(name, name, "ops@example.com", "https://receiver.example.com")

    found = {search: sorted(labels(page(world, "apps", "app_name", search=search), "apps"))
             for search in ("a_b", "A_B", "100%", "a\\b")}  # fmt: skip

    assert found == {"a_b": ["a_b"], "A_B": ["a_b"], "100%": ["100%"], "a\\b": ["a\\b"]}


@pytest.mark.parametrize(("name", "sortable"), [(name, tuple(sorts)) for name, sorts in SORTS.items()])
def test_each_list_names_its_sortable_columns(world, name, sortable):
    with world.store.transaction() as tx:
        assert tx.admin.sortable(name) == sortable


def test_a_page_is_a_window_of_the_sorted_list_and_total_counts_every_match(catalogue):
    window = page(catalogue, "apps", "app_name", limit=2, offset=1)
    searched = page(catalogue, "repositories", "github_url", search="acme/a", limit=1, offset=1)

    assert (labels(window, "apps"), window.total) == (["Beta_Mirror", "Gamma 100%"], 3)
    assert (labels(searched, "repositories"), searched.total) == (["axb"], 2)


def test_a_page_past_the_end_has_no_items_and_still_the_total(catalogue):
    found = page(catalogue, "apps", "app_name", offset=3)

    assert (found.items, found.total) == ([], 3)


@pytest.mark.parametrize("sort", ["consecutive_failures", "last_checked_at"])
def test_paging_through_rows_that_share_a_sort_value_shows_each_row_once(world, sort):
    for number in range(30):
        world.repository(f"repo{number:02d}")

    pages = [page(world, "repositories", sort, limit=7, offset=offset) for offset in range(0, 30, 7)]

    shown = [label for found in pages for label in labels(found, "repositories")]
    assert sorted(shown) == [f"repo{number:02d}" for number in range(30)]


def test_failed_watches_are_those_of_one_app_or_of_all_in_app_then_repository_order(catalogue):
    ids = catalogue.ids

    with catalogue.store.transaction() as tx:
        of_all, of_alpha = tx.admin.failed_watches(None), tx.admin.failed_watches(ids["alpha"])
        of_nobody = tx.admin.failed_watches(tokens.new_app_id())

    assert of_all == sorted([(ids["alpha"], ids["widgets"]), (ids["beta"], ids["a_b"]), (ids["gamma"], ids["axb"])])
    assert (of_alpha, of_nobody) == ([(ids["alpha"], ids["widgets"])], [])


def test_the_watches_of_an_app_are_all_of_them_whatever_their_status_in_repository_order(catalogue):
    ids = catalogue.ids

    with catalogue.store.transaction() as tx:
        of_alpha, of_nobody = tx.admin.watches_of_app(ids["alpha"]), tx.admin.watches_of_app(tokens.new_app_id())

    assert of_alpha == sorted([(ids["alpha"], ids["widgets"]), (ids["alpha"], ids["a_b"])])
    assert of_nobody == []


def test_attempts_are_listed_in_the_order_they_were_logged_even_after_the_log_is_trimmed(catalogue):
    alpha, widgets = catalogue.ids["alpha"], catalogue.ids["widgets"]
    catalogue.attempt(alpha, widgets, "d4", at=T3)
    with catalogue.store.transaction() as tx:
        tx.deliveries.trim_attempts(alpha, widgets, keep=1)
    catalogue.attempt(alpha, widgets, "d5", at=NOW)

    found = page(catalogue, "attempts", "attempted_at", descending=True)

    assert labels(found, "attempts") == ["d5", "d4", "d3", "d2"]


def test_unwatching_takes_the_attempts_of_the_watch_out_of_the_list_and_the_counts(catalogue):
    with catalogue.store.transaction() as tx:
        tx.watches.delete(catalogue.ids["alpha"], catalogue.ids["widgets"])

    found = page(catalogue, "attempts", "attempted_at")
    with catalogue.store.transaction() as tx:
        counts = tx.admin.counts(now=T1, hour_ago=T1 - timedelta(hours=1))

    assert labels(found, "attempts") == ["d2", "d3"]
    assert (counts["attempts_last_hour"], counts["failures_last_hour"]) == (2, 1)


def start(world: World, watches: list[tuple[str, str]], *, at: datetime = NOW, app_id: str | None = None) -> str:
    operation_id = tokens.new_operation_id()
    with world.store.transaction() as tx:
        tx.operations.create(operation_id, kind="retry_failed", app_id=app_id, watches=watches, now=at)
    return operation_id


def take(world: World, operation_id: str, count: int, *, at: datetime = NOW) -> list[tuple[str, str]]:
    with world.store.transaction() as tx:
        return tx.operations.take(operation_id, count=count, now=at)


def operation(world: World, operation_id: str) -> Operation | None:
    with world.store.transaction() as tx:
        return tx.operations.get(operation_id)


WORK = [(f"app_{n:024x}", f"repo_{n:024x}") for n in range(5)]


def test_an_operation_starts_running_with_nothing_done(world):
    operation_id = start(world, WORK, at=T1)

    assert operation(world, operation_id) == Operation(operation_id, "retry_failed", None, "running", 5, 0, T1, T1)


def test_an_operation_is_taken_in_batches_from_the_front_until_it_is_done(world):
    operation_id = start(world, WORK, at=T1)

    batches = [take(world, operation_id, 2, at=at) for at in (T2, T3)]
    halfway = operation(world, operation_id)
    batches += [take(world, operation_id, 2, at=NOW), take(world, operation_id, 2, at=NOW + timedelta(minutes=1))]
    finished = operation(world, operation_id)

    assert batches == [WORK[:2], WORK[2:4], WORK[4:], []]
    assert (halfway.status, halfway.done, halfway.total, halfway.updated_at) == ("running", 4, 5, T3)
    assert (finished.status, finished.done, finished.total, finished.updated_at) == ("done", 5, 5, NOW)


def test_an_operation_over_no_watches_is_done_at_its_first_take(world):
    operation_id = start(world, [], at=T1)

    taken = take(world, operation_id, 2, at=T2)

    assert taken == []
    assert operation(world, operation_id) == Operation(operation_id, "retry_failed", None, "done", 0, 0, T1, T2)


def test_a_cancelled_operation_gives_no_more_watches(world):
    operation_id = start(world, WORK, at=T1)
    take(world, operation_id, 2, at=T2)

    with world.store.transaction() as tx:
        cancelled = tx.operations.cancel(operation_id, now=T3)
        again = tx.operations.cancel(operation_id, now=NOW)
    taken = take(world, operation_id, 2)

    assert (cancelled, again, taken) == (True, False, [])
    assert operation(world, operation_id) == Operation(operation_id, "retry_failed", None, "cancelled", 5, 2, T1, T3)


def test_a_finished_operation_cannot_be_cancelled(world):
    operation_id = start(world, WORK[:1], at=T1)
    take(world, operation_id, 2, at=T2)

    with world.store.transaction() as tx:
        cancelled = tx.operations.cancel(operation_id, now=T3)

    assert cancelled is False
    assert operation(world, operation_id).status == "done"


def test_a_missing_operation_gives_nothing_and_cannot_be_cancelled(world):
    missing = tokens.new_operation_id()

    with world.store.transaction() as tx:
        found = tx.operations.get(missing)
        taken = tx.operations.take(missing, count=2, now=NOW)
        cancelled = tx.operations.cancel(missing, now=NOW)

    assert (found, taken, cancelled) == (None, [], False)


def test_running_operations_are_listed_oldest_first_up_to_the_limit(world):
    newest, oldest, middle = (start(world, WORK, at=at) for at in (T3, T1, T2))
    cancelled, done = start(world, WORK, at=T1 - timedelta(hours=1)), start(world, [], at=T1 - timedelta(hours=1))
    with world.store.transaction() as tx:
        tx.operations.cancel(cancelled, now=NOW)
        tx.operations.take(done, count=1, now=NOW)

    with world.store.transaction() as tx:
        first_two, all_running = tx.operations.running(limit=2), tx.operations.running(limit=10)

    assert (first_two, all_running) == ([oldest, middle], [oldest, middle, newest])


def test_an_operation_created_in_a_failed_transaction_is_not_there(world):
    operation_id = tokens.new_operation_id()

    with pytest.raises(RuntimeError), world.store.transaction() as tx:
        tx.operations.create(operation_id, kind="resync", app_id=None, watches=WORK, now=NOW)
        raise RuntimeError("boom")

    assert operation(world, operation_id) is None


def test_deleting_an_app_takes_its_operations_with_it(world):
    app_id = world.app("alpha", "Alpha", "a@example.com", "https://a.example.com")
    of_app, of_all = start(world, WORK, app_id=app_id), start(world, WORK)

    with world.store.transaction() as tx:
        tx.apps.delete(app_id)

    assert operation(world, of_app) is None
    assert operation(world, of_all) is not None
