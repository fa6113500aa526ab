"""One behaviour spec for the store ports, run against the in-memory fake and against Postgres."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import psycopg
import pytest

from chalicelib import errors
from chalicelib.domain import tokens
from chalicelib.domain.apps import NewApp, PausedBy
from chalicelib.domain.circuit_breaker import Circuit
from chalicelib.domain.deliveries import Attempt, Change
from chalicelib.domain.repositories import NewRepository, NewWatch
from chalicelib.domain.snapshots import SkippedFile, SnapshotDelta, SnapshotFile, snapshot_delta
from tests.fakes import InMemoryApps, InMemoryStore

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["in_memory", "postgres"])
def backend(request):
    if request.param == "in_memory":
        store = InMemoryStore()
        return store, _InMemorySeeder(store)
    url = request.getfixturevalue("database_url")
    return request.getfixturevalue("postgres_store"), _PostgresSeeder(url)


@pytest.fixture
def store(backend):
    return backend[0]


def new_app(lookup: bytes = b"L" * 32) -> NewApp:
    return NewApp(
        id=tokens.new_app_id(),
        app_name="Mirror",
        email="ops@example.com",
        website=None,
        description=None,
        base_url="https://receiver.example.com",
        token_lookup=lookup,
        token_hash="$2b$12$hash",
        client_auth_key_encrypted="aa:bb:cc",
    )


def new_repository(url: str = "https://github.com/acme/widgets", branch: str = "main") -> NewRepository:
    return NewRepository(tokens.new_repository_id(), url, "acme", "widgets", branch, False)


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def test_an_app_is_found_by_id_and_by_token_lookup(store):
    with store.transaction() as tx:
        app = tx.apps.add(new_app(b"K" * 32))

    with store.transaction() as tx:
        assert tx.apps.get(app.id) == app
        assert tx.apps.by_token_lookup(b"K" * 32) == app
        assert tx.apps.by_token_lookup(b"X" * 32) is None
        assert app.delivery_state == "active"


def test_two_apps_cannot_share_a_token_lookup(store):
    with store.transaction() as tx:
        tx.apps.add(new_app())

    with pytest.raises(errors.Conflict), store.transaction() as tx:
        tx.apps.add(new_app())


def test_an_app_without_a_lookup_key_waits_until_its_key_is_claimed_once(backend):
    store, seeder = backend
    with store.transaction() as tx:
        waiting = tx.apps.add(new_app(b"A" * 32))
        tx.apps.add(new_app(b"B" * 32))
    seeder.forget_token_lookup(waiting.id)  # as the importer writes an app of the original Docora

    with store.transaction() as tx:
        assert [app.id for app in tx.apps.awaiting_token_lookup()] == [waiting.id]
        assert tx.apps.claim_token_lookup(waiting.id, b"C" * 32) is True
        assert tx.apps.claim_token_lookup(waiting.id, b"D" * 32) is False

    with store.transaction() as tx:
        assert tx.apps.awaiting_token_lookup() == []
        found = tx.apps.by_token_lookup(b"C" * 32)
        assert found is not None and found.id == waiting.id


def test_a_repository_spelled_the_original_docoras_way_is_found_and_kept_by_its_comparable_url(store):
    with store.transaction() as tx:
        imported = tx.repositories.add(
            NewRepository(tokens.new_repository_id(), "https://github.com/Acme/Widgets.git", "Acme", "Widgets", "main",
                          False)
        )  # fmt: skip

    with store.transaction() as tx:
        found = tx.repositories.find("https://github.com/acme/widgets", "main")
        registered = tx.repositories.add(new_repository("https://github.com/acme/widgets"))
        other_branch = tx.repositories.find("https://github.com/acme/widgets", "dev")

    assert found == registered == imported
    assert registered.github_url == "https://github.com/Acme/Widgets.git"
    assert other_branch is None


def test_a_failed_transaction_leaves_nothing_behind(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        app = tx.apps.add(new_app())
        raise RuntimeError("boom")

    with store.transaction() as tx:
        assert tx.apps.get(app.id) is None


def test_adding_a_repository_twice_returns_the_first_row(store):
    with store.transaction() as tx:
        first = tx.repositories.add(new_repository())
        second = tx.repositories.add(new_repository())
        other_branch = tx.repositories.add(new_repository(branch="dev"))

    assert second == first
    assert other_branch.id != first.id
    with store.transaction() as tx:
        assert tx.repositories.find("https://github.com/acme/widgets", "main") == first
        assert tx.repositories.get(first.id) == first


def test_a_watch_is_added_once_and_deleted_once(store):
    with store.transaction() as tx:
        app = tx.apps.add(new_app())
        repository = tx.repositories.add(new_repository())
        first = tx.watches.add(NewWatch(app.id, repository.id, "iv:tag:ct"))
        again = tx.watches.add(NewWatch(app.id, repository.id, None))

    assert again == first
    assert first.status == "pending" and first.github_token_encrypted == "iv:tag:ct"
    with store.transaction() as tx:
        assert tx.watches.delete(app.id, repository.id) is True
        assert tx.watches.delete(app.id, repository.id) is False


def test_a_repository_goes_only_with_its_last_watch(store):
    with store.transaction() as tx:
        one, two = tx.apps.add(new_app(b"1" * 32)), tx.apps.add(new_app(b"2" * 32))
        repository = tx.repositories.add(new_repository())
        tx.watches.add(NewWatch(one.id, repository.id, None))
        tx.watches.add(NewWatch(two.id, repository.id, None))

    with store.transaction() as tx:
        tx.watches.delete(one.id, repository.id)
        assert tx.repositories.delete_if_unwatched(repository.id) is False
        tx.watches.delete(two.id, repository.id)
        assert tx.repositories.delete_if_unwatched(repository.id) is True
        assert tx.repositories.get(repository.id) is None


def test_the_token_of_a_watch_can_be_replaced(store):
    with store.transaction() as tx:
        app = tx.apps.add(new_app())
        repository = tx.repositories.add(new_repository())
        tx.watches.add(NewWatch(app.id, repository.id, "old"))
        tx.watches.set_github_token(app.id, repository.id, "new")

    with store.transaction() as tx:
        assert tx.watches.get(app.id, repository.id).github_token_encrypted == "new"


def test_status_counts_delivered_and_pending_files(backend):
    store, seed = backend
    with store.transaction() as tx:
        app = tx.apps.add(new_app())
        repository = tx.repositories.add(new_repository())
        tx.watches.add(NewWatch(app.id, repository.id, None))
    seed.snapshot(repository.id, "c1", {"same.md": sha("a"), "changed.md": sha("new"), "new.md": sha("n")})
    seed.ledger(app.id, repository.id, {"same.md": sha("a"), "changed.md": sha("old"), "gone.md": sha("g")})

    with store.transaction() as tx:
        status = tx.watches.status(app.id, repository.id)
        listed = tx.watches.statuses(app.id)

    assert (status.files_total, status.files_delivered, status.files_pending) == (3, 1, 3)
    assert status.snapshot_commit_sha == "c1"
    assert listed == [status]


def test_status_of_a_watch_never_scanned_has_nothing_pending(store):
    with store.transaction() as tx:
        app = tx.apps.add(new_app())
        repository = tx.repositories.add(new_repository())
        tx.watches.add(NewWatch(app.id, repository.id, None))
        status = tx.watches.status(app.id, repository.id)

    assert (status.files_total, status.files_pending, status.snapshot_commit_sha) == (0, 0, None)
    assert status.repository == repository


def snapshot_file(path: str, content: str) -> SnapshotFile:
    return SnapshotFile(
        path, hashlib.sha1(content.encode(), usedforsecurity=False).hexdigest(), sha(content), len(content), False
    )


def test_a_snapshot_is_applied_as_a_delta_and_read_back(store):
    with store.transaction() as tx:
        repository = tx.repositories.add(new_repository())
    first = [snapshot_file("a.md", "a"), snapshot_file("b.md", "b")]
    second = [snapshot_file("a.md", "a2"), snapshot_file("c.md", "c")]

    with store.transaction() as tx:
        assert tx.snapshots.files(repository.id) == {} and tx.snapshots.commit(repository.id) is None
        delta = snapshot_delta({}, first)
        tx.snapshots.apply(repository.id, commit="c1", delta=delta, taken_at=NOW)
    with store.transaction() as tx:
        delta = snapshot_delta(tx.snapshots.files(repository.id), second)
        tx.snapshots.apply(repository.id, commit="c2", delta=delta, taken_at=NOW)
    with store.transaction() as tx:
        files, commit = tx.snapshots.files(repository.id), tx.snapshots.commit(repository.id)

    assert commit == "c2"
    assert files == {file.path: file for file in second}


def test_watches_needing_delivery_are_those_whose_ledger_differs(backend):
    store, seed = backend
    with store.transaction() as tx:
        behind, current = tx.apps.add(new_app(b"1" * 32)), tx.apps.add(new_app(b"2" * 32))
        repository = tx.repositories.add(new_repository())
        tx.watches.add(NewWatch(behind.id, repository.id, None))
        tx.watches.add(NewWatch(current.id, repository.id, None))
    seed.snapshot(repository.id, "c1", {"a.md": sha("a")})
    seed.ledger(current.id, repository.id, {"a.md": sha("a")})

    with store.transaction() as tx:
        needing = tx.watches.needing_delivery(repository.id, now=NOW)
        owed = tx.watches.owe_sync_failed(repository.id, opened_at=NOW)
        watches = tx.watches.of_repository(repository.id)

    assert needing == [behind.id]
    assert owed == sorted([behind.id, current.id])
    assert {watch.app_id for watch in watches} == {behind.id, current.id}


def test_checks_successes_and_failures_are_recorded_on_the_repository(store):
    with store.transaction() as tx:
        repository = tx.repositories.add(new_repository())
        tx.repositories.record_scan(repository.id, scanned_at=NOW)
        tx.repositories.record_failure(repository.id, circuit=Circuit(5, NOW), error="repository not found")
    with store.transaction() as tx:
        failed = tx.repositories.get(repository.id)
        tx.repositories.record_success(repository.id, head="c9")
        recovered = tx.repositories.get(repository.id)

    assert (failed.last_checked_at, failed.last_scanned_at) == (NOW, NOW)
    assert (failed.consecutive_failures, failed.circuit_open_until) == (5, NOW)
    assert failed.last_error == "repository not found"
    assert (recovered.last_head, recovered.consecutive_failures, recovered.circuit_open_until) == ("c9", 0, None)
    assert recovered.last_error is None


def test_skipped_files_are_replaced_whole_by_a_full_delta_and_only_within_the_scope_of_a_partial_one(backend):
    store, seed = backend
    with store.transaction() as tx:
        repository = tx.repositories.add(new_repository())
    big, grown = SkippedFile("big.bin", "too big", 11), SkippedFile("grows.bin", "too big", 12)
    latin = SkippedFile("caf\\xe9.txt", "path is not valid UTF-8")

    with store.transaction() as tx:
        tx.snapshots.apply(repository.id, commit="c1", delta=SnapshotDelta([], [], [big, latin]), taken_at=NOW)
        partial = SnapshotDelta([], [], [grown], scope=[latin.path, grown.path])
        tx.snapshots.apply(repository.id, commit="c2", delta=partial, taken_at=NOW)
    after_partial = seed.skipped(repository.id)
    with store.transaction() as tx:
        tx.snapshots.apply(repository.id, commit="c3", delta=SnapshotDelta([], [], [latin]), taken_at=NOW)

    assert after_partial == [("big.bin", "too big", 11), ("grows.bin", "too big", 12)]
    assert seed.skipped(repository.id) == [("caf\\xe9.txt", "path is not valid UTF-8", None)]


def watched(store) -> tuple[str, str]:
    with store.transaction() as tx:
        app = tx.apps.add(new_app())
        repository = tx.repositories.add(new_repository())
        tx.watches.add(NewWatch(app.id, repository.id, None))
    return app.id, repository.id


def created(path: str) -> Change:
    return Change("create", path, sha(path.removesuffix(".md")), None, 1, False)


def attempt(path: str) -> Attempt:
    return Attempt(None, path, "create", "dlv_" + path, 1, 200, None, 5, NOW)


def test_an_acknowledgement_fills_the_ledger_and_the_next_call_tells_whether_the_app_was_active(backend):
    store, seed = backend
    app_id, repository_id = watched(store)
    seed.snapshot(repository_id, "c1", {"a.md": sha("a"), "b.md": sha("b")})

    first = store.acknowledge(app_id, repository_id, created("a.md"), attempt("a.md"))
    seed.pause(app_id)
    second = store.acknowledge(app_id, repository_id, created("b.md"), attempt("b.md"))
    last = store.settle()

    assert (first, second, last) == (True, True, False)  # b.md's answer, read last, saw the pause
    with store.transaction() as tx:
        assert tx.watches.status(app_id, repository_id).files_delivered == 2
        assert len(tx.deliveries.attempts(app_id, repository_id, limit=10, before=None)) == 2


def test_the_attempt_log_is_paged_newest_first(store):
    app_id, repository_id = watched(store)
    with store.transaction() as tx:
        for index in range(5):
            tx.deliveries.log_attempt(app_id, repository_id, attempt(f"{index}.md"))

    with store.transaction() as tx:
        first = tx.deliveries.attempts(app_id, repository_id, limit=3, before=None)
        rest = tx.deliveries.attempts(app_id, repository_id, limit=3, before=first[-1].id)

    assert [a.path for a in first + rest] == ["4.md", "3.md", "2.md", "1.md", "0.md"]


class _InMemorySeeder:
    def __init__(self, store: InMemoryStore) -> None:
        self._tables = store.tables
        self._apps = InMemoryApps(store.tables)

    def pause(self, app_id: str) -> None:
        self._apps.pause(app_id, reason="paused by the operator", by=PausedBy.OPERATOR)

    def forget_token_lookup(self, app_id: str) -> None:
        self._tables.apps[app_id] = (self._tables.apps[app_id][0], None)

    def skipped(self, repository_id: str) -> list[tuple[str, str, int | None]]:
        found = self._tables.snapshot_skipped.get(repository_id, {}).values()
        return sorted((item.path, item.reason, item.size) for item in found)

    def snapshot(self, repository_id: str, commit: str, files: dict[str, bytes]) -> None:
        self._tables.snapshots[repository_id] = (commit, dict(files))

    def ledger(self, app_id: str, repository_id: str, files: dict[str, bytes]) -> None:
        self._tables.ledger[(app_id, repository_id)] = dict(files)


class _PostgresSeeder:
    """Writes and reads with a connection of its own, as another Lambda (or an operator) would."""

    def __init__(self, url: str) -> None:
        self._url = url

    def pause(self, app_id: str) -> None:
        with psycopg.connect(self._url) as connection:
            connection.execute("UPDATE apps SET delivery_state = 'paused' WHERE id = %s", (app_id,))

    def forget_token_lookup(self, app_id: str) -> None:
        with psycopg.connect(self._url) as connection:
            connection.execute("UPDATE apps SET token_lookup = NULL WHERE id = %s", (app_id,))

    def skipped(self, repository_id: str) -> list[tuple[str, str, int | None]]:
        with psycopg.connect(self._url) as connection:
            query = "SELECT path, reason, size FROM snapshot_skipped_files WHERE repository_id = %s ORDER BY path"
            return connection.execute(query, (repository_id,)).fetchall()

    def snapshot(self, repository_id: str, commit: str, files: dict[str, bytes]) -> None:
        with psycopg.connect(self._url) as connection:
            connection.execute(
                "INSERT INTO snapshots (repository_id, commit_sha, file_count, taken_at) VALUES (%s, %s, %s, now())",
                (repository_id, commit, len(files)),
            )
            for path, digest in files.items():
                connection.execute(
                    "INSERT INTO snapshot_files (repository_id, path, blob_id, sha256, size, is_binary)"
                    " VALUES (%s, %s, %s, %s, 1, false)",
                    (repository_id, path, digest[:20], digest),
                )

    def ledger(self, app_id: str, repository_id: str, files: dict[str, bytes]) -> None:
        with psycopg.connect(self._url) as connection:
            for path, digest in files.items():
                connection.execute(
                    "INSERT INTO delivered_files (app_id, repository_id, path, sha256, delivered_at)"
                    " VALUES (%s, %s, %s, %s, now())",
                    (app_id, repository_id, path, digest),
                )
