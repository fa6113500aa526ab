"""The scan over a real git server, Postgres, Redis and moto: what only the real adapters show.

The behaviour cases (ignore rules, skipped files, failures, the circuit) run on fakes: tests/unit/test_scanning.py.
"""

from __future__ import annotations

import hashlib
import shutil

import pytest

from docora_local.harness.scan_stack import T0, later, scan_stack
from tests import cache_scenario as scenario


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


@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_a_new_commit_gives_the_same_snapshot_from_a_warm_cache_as_from_nothing(
    tmp_path, database_url, redis_url, monkeypatch, cache
):
    """Warm: only the files changed since the stored commit are listed and read. Cold: the whole tree is."""
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, max_file_bytes=scenario.MAX_FILE_BYTES) as stack:
        repo = stack.make_repo()
        repo.commit(scenario.FIRST)
        repository_id = stack.add_repository()
        stack.scan(repository_id, at=T0)
        repo.commit(scenario.SECOND)
        repo.commit({}, symlinks=scenario.LINKS)
        if cache == "cold":
            stack.deps.git.close()  # type: ignore[attr-defined]
            shutil.rmtree(tmp_path / "ephemeral")

        result = stack.scan(repository_id, at=later(T0))

        assert (result.outcome, result.blobs_read) == ("scanned", scenario.BLOBS_READ[cache])
        assert stack.snapshot(repository_id) == scenario.SNAPSHOT
        assert stack.rows("SELECT path, reason, size FROM snapshot_skipped_files ORDER BY path") == scenario.SKIPPED
        assert stack.rows("SELECT commit_sha, file_count FROM snapshots") == [(repo.head(), len(scenario.SNAPSHOT))]


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
