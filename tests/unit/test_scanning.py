"""The scan's behaviour on the fakes: snapshots, contents, fan-out, ignore rules, git failures and the circuit."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from tests import cache_scenario as scenario
from tests.unit.fake_stack import T0, fake_stack, later

TOKEN = "ghp_" + "t" * 36
LATIN = b"caf\xe9.txt"


@pytest.fixture
def stack():
    return fake_stack()


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_a_first_scan_snapshots_every_file_stores_contents_and_fans_out(stack):
    files = {"README.md": b"# hi\n", "src/app.py": b"print('hi')\n", "logo.png": b"\x89PNG\x00\x01"}
    repo = stack.make_repo()
    repo.commit(files)
    repository_id = stack.add_repository(apps=2)

    result = stack.scan(repository_id, at=T0)

    assert (result.outcome, result.commit, result.blobs_read) == ("scanned", repo.head(), 3)
    assert stack.snapshot(repository_id) == {
        "README.md": (sha(b"# hi\n"), 5, False),
        "src/app.py": (sha(b"print('hi')\n"), 12, False),
        "logo.png": (sha(b"\x89PNG\x00\x01"), 6, True),
    }
    assert stack.stored(repository_id) == files
    assert sorted(stack.deliveries_requested()) == [(app, repository_id, 0) for app in stack.app_ids(repository_id)]


def test_a_new_commit_changes_exactly_the_changed_rows_and_reads_only_new_blobs(stack):
    repo, repository_id = stack.first_scan({"keep.md": b"same\n", "edit.md": b"v1\n", "drop.md": b"bye\n"})
    before = stack.snapshot(repository_id)
    repo.commit({"edit.md": b"v2\n", "drop.md": None, "add.md": b"new\n"})

    result = stack.scan(repository_id, at=later(T0))

    after = stack.snapshot(repository_id)
    assert result.blobs_read == 2
    assert after["keep.md"] == before["keep.md"]
    assert after["edit.md"][0] == sha(b"v2\n")
    assert "drop.md" not in after and after["add.md"][0] == sha(b"new\n")
    assert len(stack.deliveries_requested()) == 1


def test_an_unchanged_head_costs_one_request_and_writes_only_the_check_time(stack):
    repo, repository_id = stack.first_scan({"a.md": b"a\n"})
    (app_id,) = stack.app_ids(repository_id)
    stack.deliver(app_id, repository_id)
    stack.git.requests.clear()

    result = stack.scan(repository_id, at=later(T0))

    assert result.outcome == "unchanged"
    assert stack.git.requests == [("head", repo.url, None)]
    assert stack.store.tables.snapshot_taken_at[repository_id] == T0  # the snapshot was not written again
    assert stack.watch(app_id, repository_id).status == "synced"
    assert stack.repository(repository_id).last_checked_at == later(T0)
    assert stack.deliveries_requested() == []


def test_an_unchanged_head_fans_out_again_to_watches_still_behind(stack):
    """A scan killed after storing its snapshot is retried by the queue: the retry finds the head stored."""
    _, repository_id = stack.first_scan({"a.md": b"a\n"})

    result = stack.scan(repository_id, at=later(T0))

    assert (result.outcome, result.deliveries) == ("unchanged", 1)
    assert len(stack.deliveries_requested()) == 1


def test_an_unchanged_head_after_a_failure_closes_the_circuit(stack):
    repo, repository_id = stack.first_scan({"a.md": b"a\n"})
    repo.fail_with(502)
    stack.scan(repository_id, at=later(T0, 1))
    repo.fail_with(None)

    result = stack.scan(repository_id, at=later(T0, 2))

    repository = stack.repository(repository_id)
    assert result.outcome == "unchanged"
    assert (repository.consecutive_failures, repository.last_error) == (0, None)


def test_requests_no_newer_than_the_last_probe_are_skipped(stack):
    stack.make_repo().commit({"a.md": b"a\n"})
    repository_id = stack.add_repository()
    stack.scan(repository_id, at=later(T0, 10))
    stack.git.requests.clear()

    results = [stack.scan(repository_id, at=later(T0, i)) for i in (0, 1, 2, 9, 10)]

    assert {result.outcome for result in results} == {"skipped"}
    assert stack.git.requests == []


def test_a_request_while_a_scan_runs_queues_one_more_scan(stack):
    stack.make_repo().commit({"a.md": b"a\n"})
    repository_id = stack.add_repository()

    with stack.deps.locks.hold(f"scan:{repository_id}"):
        busy = stack.scan(repository_id, at=later(T0, 5))
    stack.scan(repository_id, at=T0)

    assert busy.outcome == "busy"
    assert stack.deps.scan_queue.requested_at == [later(T0, 5)]


def test_a_repository_nobody_watches_is_not_scanned(stack):
    stack.make_repo().commit({"a.md": b"a\n"})
    repository_id = stack.add_repository(apps=0)

    result = stack.scan(repository_id, at=T0)

    assert result.outcome == "skipped"
    assert stack.git.requests == []


def test_docoraignore_excludes_paths_and_a_changed_one_drops_delivered_files(stack):
    repo, repository_id = stack.first_scan(
        {".docoraignore": b"build/\n*.log\n", "build/out.js": b"x", "app.log": b"l", "src/a.py": b"a"}
    )
    first = set(stack.snapshot(repository_id))
    repo.commit({".docoraignore": b"build/\n*.log\nsrc/\n"})

    stack.scan(repository_id, at=later(T0))

    assert first == {".docoraignore", "src/a.py"}
    assert set(stack.snapshot(repository_id)) == {".docoraignore"}


def test_symlinks_submodules_and_oversized_files_are_not_delivered():
    stack = fake_stack(max_file_bytes=10)
    stack.make_repo().commit(
        {"small.txt": b"small", "big.bin": b"x" * 11}, symlinks={"link": "small.txt"}, submodules={"lib": "1" * 40}
    )
    repository_id = stack.add_repository()

    stack.scan(repository_id, at=T0)

    assert set(stack.snapshot(repository_id)) == {"small.txt"}
    assert stack.skipped(repository_id) == [("big.bin", "larger than MAX_FILE_BYTES (10)", 11)]


def test_paths_that_are_not_utf8_are_recorded_not_delivered(stack):
    stack.make_repo().commit({"ok.txt": b"ok", LATIN: b"latin"})
    repository_id = stack.add_repository()

    stack.scan(repository_id, at=T0)

    assert set(stack.snapshot(repository_id)) == {"ok.txt"}
    assert stack.skipped(repository_id) == [("caf\\xe9.txt", "path is not valid UTF-8", None)]


@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_a_new_commit_gives_the_same_snapshot_from_a_warm_cache_as_from_nothing(cache):
    """Warm: only the files changed since the stored commit are listed and read. Cold: the whole tree is."""
    stack = fake_stack(max_file_bytes=scenario.MAX_FILE_BYTES)
    repo, repository_id = stack.first_scan(scenario.FIRST)
    repo.commit(scenario.SECOND)
    repo.commit({}, symlinks=scenario.LINKS)
    if cache == "cold":
        stack.git.forget_cache()

    result = stack.scan(repository_id, at=later(T0))

    assert (result.outcome, result.blobs_read) == ("scanned", scenario.BLOBS_READ[cache])
    assert stack.snapshot(repository_id) == scenario.SNAPSHOT
    assert stack.skipped(repository_id) == scenario.SKIPPED
    assert stack.repository(repository_id).last_head == repo.head()


def test_a_force_push_that_rewrites_history_is_followed(stack):
    repo, repository_id = stack.first_scan({"a.md": b"a\n", "b.md": b"b\n"})
    rewritten = repo.force_push({"c.md": b"c\n"})

    result = stack.scan(repository_id, at=later(T0))

    assert result.commit == rewritten
    assert set(stack.snapshot(repository_id)) == {"c.md"}


def test_a_private_repository_is_read_with_the_watch_token(stack):
    repo = stack.make_repo()
    repo.commit({"secret.md": b"s\n"})
    repo.require_token(TOKEN)
    repository_id = stack.add_repository(token=TOKEN)

    result = stack.scan(repository_id, at=T0)

    assert result.outcome == "scanned"
    assert {(method, token) for method, _, token in stack.git.requests} == {
        ("head", TOKEN),
        ("fetch_tree", TOKEN),
        ("read_blobs", TOKEN),
    }


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda repo: repo.delete_branch("main"), "branch main not found"),
        (lambda repo: repo.require_token("ghp_" + "x" * 36), "repository not found"),
        (lambda repo: repo.fail_with(404), "repository not found"),
        (lambda repo: repo.fail_with(502), "git server did not answer"),
    ],
    ids=["branch deleted", "made private", "repository deleted", "server down"],
)
def test_git_failures_are_recorded_plainly_and_do_not_raise(stack, break_it, message):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    repository_id = stack.add_repository()
    break_it(repo)

    result = stack.scan(repository_id, at=T0)

    repository = stack.repository(repository_id)
    assert result.outcome == "failed"
    assert (repository.consecutive_failures, repository.last_error) == (1, message)
    assert repository.last_checked_at == T0


def test_a_failure_while_reading_blobs_stores_nothing(stack):
    repo, repository_id = stack.first_scan({"a.md": b"a\n"})
    repo.commit({"b.md": b"b\n"})
    repo.blobs.clear()  # the listing works, the fetch of the new blob does not

    result = stack.scan(repository_id, at=later(T0))

    assert result.outcome == "failed"
    assert set(stack.snapshot(repository_id)) == {"a.md"}
    assert stack.repository(repository_id).last_error == "git server did not answer"


def test_a_revoked_token_says_github_rejected_it(stack):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    repo.require_token("ghp_" + "n" * 36)
    repository_id = stack.add_repository(token=TOKEN)

    stack.scan(repository_id, at=T0)

    assert stack.repository(repository_id).last_error == "GitHub rejected the token"


def test_an_empty_repository_fails_until_it_has_a_commit(stack):
    repo = stack.make_repo()
    repository_id = stack.add_repository()

    failed = stack.scan(repository_id, at=T0)
    repo.commit({"first.md": b"1\n"})
    scanned = stack.scan(repository_id, at=later(T0))

    repository = stack.repository(repository_id)
    assert (failed.outcome, scanned.outcome) == ("failed", "scanned")
    assert (repository.consecutive_failures, repository.last_error) == (0, None)


def test_the_circuit_opens_once_notifies_each_app_once_and_a_success_closes_it():
    stack = fake_stack(circuit_breaker_threshold=2, circuit_breaker_cooldown=timedelta(seconds=60))
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    repository_id = stack.add_repository(apps=2)
    repo.fail_with(500)

    outcomes = [stack.scan(repository_id, at=later(T0, i)).outcome for i in range(2)]
    while_open = stack.scan(repository_id, at=later(T0, 30))
    notices = stack.deliveries_requested()
    owed = dict(stack.store.tables.sync_failed_owed)
    half_open_failure = stack.scan(repository_id, at=later(T0, 62))
    repo.fail_with(None)
    recovered = stack.scan(repository_id, at=later(T0, 200))

    assert outcomes == ["failed", "failed"]
    assert while_open.outcome == "skipped"
    assert sorted(notices) == [(app_id, repository_id, 0) for app_id in stack.app_ids(repository_id)]
    assert owed == {(app_id, repository_id): later(T0, 1) for app_id in stack.app_ids(repository_id)}
    assert half_open_failure.outcome == "failed"
    assert recovered.outcome == "scanned"
    repository = stack.repository(repository_id)
    assert (repository.consecutive_failures, repository.circuit_open_until) == (0, None)
    assert len(stack.deliveries_requested()) == 2  # the files, not notices: the half-open failure owes none
