"""The scan against a real git server, Postgres, Redis and moto: snapshots, contents, fan-out and failures."""

from __future__ import annotations

import hashlib
import shutil

import pytest

from docora_local.harness.scan_stack import T0, later, scan_stack

TOKEN = "ghp_" + "t" * 36


@pytest.fixture
def stack(tmp_path, database_url, redis_url, monkeypatch):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch) as built:
        yield built


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_a_first_scan_snapshots_every_file_stores_contents_and_fans_out(stack):
    repo = stack.make_repo()
    repo.commit({"README.md": b"# hi\n", "src/app.py": b"print('hi')\n", "logo.png": b"\x89PNG\x00\x01"})
    repository_id = stack.add_repository(apps=2)

    result = stack.scan(repository_id, at=T0)

    assert result.outcome == "scanned" and result.commit == repo.head()
    assert stack.snapshot(repository_id) == {
        "README.md": (sha(b"# hi\n"), 5, False),
        "src/app.py": (sha(b"print('hi')\n"), 12, False),
        "logo.png": (sha(b"\x89PNG\x00\x01"), 6, True),
    }
    # Small contents go up together, in one bundle, in path order.
    slots = stack.rows('SELECT path, bundle, bundle_offset, size FROM snapshot_files ORDER BY path COLLATE "C"')
    assert len({bytes(bundle) for _, bundle, _, _ in slots}) == 1
    bundle = stack.s3.get_object(Bucket="docora-contents", Key="bundles/" + bytes(slots[0][1]).hex())["Body"].read()
    assert bundle == b"# hi\n" + b"\x89PNG\x00\x01" + b"print('hi')\n"
    assert [offset for _, _, offset, _ in slots] == [0, 5, 11]
    assert len(stack.deliveries_requested()) == 2


def test_a_new_commit_changes_exactly_the_changed_rows_and_reads_only_new_blobs(stack):
    repo = stack.make_repo()
    repo.commit({"keep.md": b"same\n", "edit.md": b"v1\n", "drop.md": b"bye\n"})
    repository_id = stack.add_repository()
    stack.scan(repository_id, at=T0)
    before = stack.snapshot(repository_id)
    stack.deliveries_requested()
    repo.commit({"edit.md": b"v2\n", "drop.md": None, "add.md": b"new\n"})

    result = stack.scan(repository_id, at=later(T0))

    after = stack.snapshot(repository_id)
    assert result.blobs_read == 2
    assert after["keep.md"] == before["keep.md"]
    assert after["edit.md"][0] == sha(b"v2\n")
    assert "drop.md" not in after and after["add.md"][0] == sha(b"new\n")
    assert len(stack.deliveries_requested()) == 1


def test_an_unchanged_head_costs_one_request_and_writes_only_the_check_time(stack):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    repository_id = stack.add_repository()
    stack.scan(repository_id, at=T0)
    stack.rows("UPDATE watches SET status = 'synced'")
    stack.rows(
        "INSERT INTO delivered_files SELECT w.app_id, f.repository_id, f.path, f.sha256, now()"
        " FROM snapshot_files f JOIN watches w USING (repository_id)"
    )
    stack.git_server.clear_log()
    stack.deliveries_requested()
    snapshot_row = stack.rows("SELECT xmin::text FROM snapshots")

    result = stack.scan(repository_id, at=later(T0))

    assert result.outcome == "unchanged"
    assert len(stack.git_server.requests) == 1
    assert stack.rows("SELECT xmin::text FROM snapshots") == snapshot_row
    assert stack.rows("SELECT status FROM watches") == [("synced",)]
    assert stack.rows("SELECT last_checked_at FROM repositories") == [(later(T0),)]
    assert stack.deliveries_requested() == []


def test_requests_older_than_the_last_probe_are_skipped(stack):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    repository_id = stack.add_repository()
    stack.scan(repository_id, at=later(T0, 10))
    stack.git_server.clear_log()

    results = [stack.scan(repository_id, at=later(T0, i)) for i in range(5)]

    assert {result.outcome for result in results} == {"skipped"}
    assert stack.git_server.requests == []


def test_a_request_while_a_scan_runs_queues_one_more_scan(stack):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    repository_id = stack.add_repository()

    with stack.deps.locks.hold(f"scan:{repository_id}"):
        busy = stack.scan(repository_id, at=later(T0, 5))
    stack.scan(repository_id, at=T0)

    assert busy.outcome == "busy"
    assert [request.requested_at for request in stack.scans_requested()] == [later(T0, 5)]


def test_docoraignore_excludes_paths_and_a_changed_one_drops_delivered_files(stack):
    repo = stack.make_repo()
    repo.commit({".docoraignore": b"build/\n*.log\n", "build/out.js": b"x", "app.log": b"l", "src/a.py": b"a"})
    repository_id = stack.add_repository()
    stack.scan(repository_id, at=T0)
    first = set(stack.snapshot(repository_id))
    repo.commit({".docoraignore": b"build/\n*.log\nsrc/\n"})

    stack.scan(repository_id, at=later(T0))

    assert first == {".docoraignore", "src/a.py"}
    assert set(stack.snapshot(repository_id)) == {".docoraignore"}


def test_symlinks_submodules_and_oversized_files_are_not_delivered(tmp_path, database_url, redis_url, monkeypatch):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, max_file_bytes=10) as stack:
        repo = stack.make_repo()
        repo.commit(
            {"small.txt": b"small", "big.bin": b"x" * 11},
            symlinks={"link": "small.txt"},
            submodules={"vendor/lib": "1" * 40},
        )
        repository_id = stack.add_repository()

        stack.scan(repository_id, at=T0)

        assert set(stack.snapshot(repository_id)) == {"small.txt"}
        skipped = stack.rows("SELECT path, reason, size FROM snapshot_skipped_files")
        assert skipped == [("big.bin", "larger than MAX_FILE_BYTES (10)", 11)]


@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_a_new_commit_gives_the_same_snapshot_from_a_warm_cache_as_from_nothing(
    tmp_path, database_url, redis_url, monkeypatch, cache
):
    """Warm: only the files changed since the stored commit are listed and read. Cold: the whole tree is."""
    latin = "caf\xe9.txt".encode("latin-1").decode("utf-8", "surrogateescape")
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, max_file_bytes=10) as stack:
        repo = stack.make_repo()
        (repo.work / latin).write_bytes(b"latin")
        repo.commit(
            {"keep.md": b"same", "edit.md": b"v1", "drop.md": b"bye", "move/old.md": b"moved", "big.bin": b"x" * 11,
             "shrinks.bin": b"y" * 11, "to-link.md": b"link me", "deep/a/b/c.md": b"c"}
        )  # fmt: skip
        repository_id = stack.add_repository()
        stack.scan(repository_id, at=T0)
        (repo.work / latin).unlink()
        repo.commit(
            {"edit.md": b"v2", "drop.md": None, "move/old.md": None, "moved/new.md": b"moved", "grows.bin": b"z" * 11,
             "shrinks.bin": b"y", "to-link.md": None, "deep/a/b/c.md": b"c2"},
        )  # fmt: skip
        repo.commit({}, symlinks={"to-link.md": "keep.md"})
        if cache == "cold":
            stack.deps.git.close()  # type: ignore[attr-defined]
            shutil.rmtree(tmp_path / "ephemeral")

        result = stack.scan(repository_id, at=later(T0))

        # v2, y, z*11 and c2; "moved" is known. From nothing, big.bin too: the snapshot keeps no facts of skipped files.
        assert result.outcome == "scanned" and result.blobs_read == {"warm": 4, "cold": 5}[cache]
        assert stack.snapshot(repository_id) == {
            "keep.md": (sha(b"same"), 4, False),
            "edit.md": (sha(b"v2"), 2, False),
            "moved/new.md": (sha(b"moved"), 5, False),
            "shrinks.bin": (sha(b"y"), 1, False),
            "deep/a/b/c.md": (sha(b"c2"), 2, False),
        }
        assert stack.rows("SELECT path, reason, size FROM snapshot_skipped_files ORDER BY path") == [
            ("big.bin", "larger than MAX_FILE_BYTES (10)", 11),
            ("grows.bin", "larger than MAX_FILE_BYTES (10)", 11),
        ]
        assert stack.rows("SELECT commit_sha, file_count FROM snapshots") == [(repo.head(), 5)]


def test_paths_that_are_not_utf8_are_recorded_not_delivered(stack):
    repo = stack.make_repo()
    repo.commit({"ok.txt": b"ok"})
    (repo.work / "caf\xe9.txt".encode("latin-1").decode("utf-8", "surrogateescape")).write_bytes(b"latin")
    repo.commit({}, "latin-1 name")
    repository_id = stack.add_repository()

    stack.scan(repository_id, at=T0)

    assert set(stack.snapshot(repository_id)) == {"ok.txt"}
    assert stack.rows("SELECT path, reason FROM snapshot_skipped_files") == [
        ("caf\\xe9.txt", "path is not valid UTF-8")
    ]


def test_a_force_push_that_rewrites_history_is_followed(stack):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n", "b.md": b"b\n"})
    repository_id = stack.add_repository()
    stack.scan(repository_id, at=T0)
    rewritten = repo.force_push({"c.md": b"c\n"})

    result = stack.scan(repository_id, at=later(T0))

    assert result.commit == rewritten
    assert set(stack.snapshot(repository_id)) == {"c.md"}


def test_a_private_repository_is_fetched_with_the_watch_token_in_a_header(stack):
    repo = stack.make_repo()
    repo.commit({"secret.md": b"s\n"})
    stack.git_server.require_token(TOKEN)
    repository_id = stack.add_repository(token=TOKEN)

    result = stack.scan(repository_id, at=T0)

    assert result.outcome == "scanned"
    assert all(request.authorized for request in stack.git_server.requests)
    assert all(TOKEN not in request.path for request in stack.git_server.requests)


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda stack, repo: repo.delete_branch("main"), "branch main not found"),
        (lambda stack, repo: stack.git_server.require_token("ghp_" + "x" * 36), "repository not found"),
        (lambda stack, repo: stack.git_server.fail_with(404), "repository not found"),
        (lambda stack, repo: stack.git_server.hang(), "git server did not answer"),
    ],
    ids=["branch deleted", "made private", "repository deleted", "server hangs"],
)
def test_git_failures_are_recorded_plainly_and_do_not_raise(stack, break_it, message):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    repository_id = stack.add_repository()
    break_it(stack, repo)

    result = stack.scan(repository_id, at=T0)

    assert result.outcome == "failed"
    assert stack.rows("SELECT consecutive_failures, last_error FROM repositories") == [(1, message)]


def test_a_revoked_token_says_github_rejected_it(stack):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    stack.git_server.require_token("ghp_" + "n" * 36)
    repository_id = stack.add_repository(token=TOKEN)

    stack.scan(repository_id, at=T0)

    assert stack.rows("SELECT last_error FROM repositories") == [("GitHub rejected the token",)]


def test_an_empty_repository_fails_until_it_has_a_commit(stack):
    repo = stack.make_repo()
    repository_id = stack.add_repository()

    failed = stack.scan(repository_id, at=T0)
    repo.commit({"first.md": b"1\n"})
    scanned = stack.scan(repository_id, at=later(T0))

    assert (failed.outcome, scanned.outcome) == ("failed", "scanned")
    assert stack.rows("SELECT consecutive_failures, last_error FROM repositories") == [(0, None)]


def test_the_circuit_opens_once_notifies_each_app_once_and_a_success_closes_it(
    tmp_path, database_url, redis_url, monkeypatch
):
    settings = {"circuit_breaker_threshold": 2, "circuit_breaker_cooldown_ms": 60_000}
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, **settings) as stack:
        repo = stack.make_repo()
        repo.commit({"a.md": b"a\n"})
        repository_id = stack.add_repository(apps=2)
        stack.git_server.fail_with(500)

        outcomes = [stack.scan(repository_id, at=later(T0, i)).outcome for i in range(2)]
        while_open = stack.scan(repository_id, at=later(T0, 30))
        notices = stack.deliveries_requested()
        half_open_failure = stack.scan(repository_id, at=later(T0, 62))
        stack.git_server.recover()
        recovered = stack.scan(repository_id, at=later(T0, 200))

        assert outcomes == ["failed", "failed"]
        assert while_open.outcome == "skipped"
        assert len(notices) == 2
        assert stack.rows("SELECT count(*) FROM watches WHERE sync_failed_pending_at IS NOT NULL") == [(2,)]
        assert half_open_failure.outcome == "failed"
        assert recovered.outcome == "scanned"
        assert stack.rows("SELECT consecutive_failures, circuit_open_until FROM repositories") == [(0, None)]
        assert len([r for r in stack.deliveries_requested() if r[1] == repository_id]) == 2  # the files, not notices


def test_the_consumer_reports_only_the_record_that_failed(stack, monkeypatch):
    from chalice.test import Client

    import app
    from chalicelib import wiring
    from chalicelib.messages import ScanRequested
    from tests.events import sqs_event

    monkeypatch.setattr(wiring, "deps", lambda: stack.deps)
    repo = stack.make_repo()
    repo.commit({"a.md": b"a\n"})
    repository_id = stack.add_repository()
    event = sqs_event(ScanRequested(repository_id, T0).to_json(), '{"type":"scan_requested","version":1}')

    with Client(app.app) as client:
        result = client.lambda_.invoke("scan_repositories", event)

    assert result.payload == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert set(stack.snapshot(repository_id)) == {"a.md"}
