"""Delivery over the real stack to real receivers: one end-to-end sync, and what only the real adapters show.

The behaviour cases (order, retries, pauses, faults, hand-overs) run on the fakes in tests/unit/test_delivering.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest

from chalicelib import errors
from docora_local.harness.receivers import PythonReceiver
from docora_local.harness.scan_stack import CLIENT_AUTH_KEY, T0, scan_stack
from tests.integration.node_receiver import NodeReceiver


@pytest.fixture
def receiver():
    server = PythonReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def stack(tmp_path, database_url, redis_url, monkeypatch):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch) as built:
        yield built


def watched(stack, receiver, files, **options):
    repo = stack.make_repo()
    repo.commit(files)
    repository_id = stack.add_repository(base_url=receiver.url + "/hooks", **options)
    stack.scan(repository_id, at=T0)
    stack.deliveries_requested()
    return repo, repository_id, stack.app_ids(repository_id)[0]


def events(receiver):
    return [(r.path, json.loads(r.body)["file"]["path"]) for r in receiver.requests]


def verify(request) -> bool:
    timestamp = request.headers["X-Docora-Timestamp"]
    mac = hmac.new(CLIENT_AUTH_KEY.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), request.headers["X-Docora-Signature"])


def test_a_first_sync_sends_every_file_signed_in_path_order_and_fills_the_ledger(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"b.md": b"b\n", "a.md": b"a\n", "img.bin": b"\x00\x01"})
    stack.one_at_a_time(app_id)  # with more in flight, only each path's own changes keep their order

    result = stack.deliver(app_id, repository_id)

    assert result.outcome == "synced"
    assert events(receiver) == [("/hooks/create", "a.md"), ("/hooks/create", "b.md"), ("/hooks/create", "img.bin")]
    assert all(verify(request) for request in receiver.requests)
    first = receiver.requests[0]
    assert first.headers["X-Docora-Event"] == "create"
    assert first.headers["X-Docora-App-Id"] == app_id
    assert first.headers["User-Agent"].startswith("Docora/")
    assert json.loads(first.body)["file"] == {"path": "a.md", "sha": hashlib.sha256(b"a\n").hexdigest(),
                                              "size": 2, "content": "a\n"}  # fmt: skip
    assert json.loads(receiver.requests[2].body)["file"]["content_encoding"] == "base64"
    assert stack.rows("SELECT count(*) FROM delivered_files") == [(3,)]
    assert stack.rows("SELECT status, attempts FROM watches") == [("synced", 0)]


def test_original_receivers_verify_every_payload_and_reassemble_chunks(tmp_path, database_url, redis_url, monkeypatch):
    texts = {
        "accents.md": "Ça été très déjà vu\n",
        "cjk.md": "漢字かなカナ한국어\n",
        "emoji.md": "rocket 🚀 family 👨‍👩‍👧\n",
        "separators.md": "line\u2028para\u2029end\n",
        "controls.md": "".join(chr(c) for c in range(1, 32) if c not in (0,)) + "\x7f\\\"'\n",
    }
    binary = os.urandom(3 * 1024 * 1024)
    settings = {"binary_chunk_threshold_bytes": 1_048_576, "binary_chunk_size_bytes": 524_288}
    node = NodeReceiver(CLIENT_AUTH_KEY)
    try:
        with scan_stack(tmp_path, database_url, redis_url, monkeypatch, **settings) as stack:
            files = {path: text.encode() for path, text in texts.items()} | {"big.bin": binary}
            _, repository_id, app_id = watched(stack, node, files)

            result = stack.deliver(app_id, repository_id)
            received = node.received()
    finally:
        node.stop()

    assert result.outcome == "synced"
    assert received["failures"] == []
    assert {event["path"] for event in received["events"]} >= set(texts)
    assert [(f["path"], f["ok"], f["size"]) for f in received["files"]] == [("big.bin", True, len(binary))]


def test_a_crash_between_the_post_and_the_ledger_write_resends_once_with_the_same_id(stack, receiver, monkeypatch):
    from chalicelib.adapters.postgres_deliveries import PostgresDeliveries

    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a", "b.md": b"b"})
    stack.one_at_a_time(app_id)  # in order; test_delivering_concurrency.py crashes with several in flight
    original = PostgresDeliveries.send_acknowledgement
    calls = []

    def crash_on_second(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise SystemExit("the Lambda was killed")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PostgresDeliveries, "send_acknowledgement", crash_on_second)
    with pytest.raises(SystemExit):
        stack.deliver(app_id, repository_id)
    monkeypatch.setattr(PostgresDeliveries, "send_acknowledgement", original)

    stack.deliver(app_id, repository_id)

    paths = [json.loads(r.body)["file"]["path"] for r in receiver.requests]
    ids = [r.headers["X-Docora-Delivery"] for r in receiver.requests]
    assert paths == ["a.md", "b.md", "b.md"]
    assert ids[1] == ids[2]


def test_an_app_over_its_rate_gets_what_its_bucket_holds_and_the_rest_later(
    tmp_path, database_url, redis_url, monkeypatch, receiver
):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, delivery_rate_limit_per_minute=5) as stack:
        _, repository_id, app_id = watched(stack, receiver, {f"{i:02d}.md": b"x" for i in range(12)})

        first = stack.deliver(app_id, repository_id)
        second = stack.deliver(app_id, repository_id)

        assert (first.outcome, first.sent) == ("paced", 5)  # tokens are taken in blocks, never more than it holds
        assert (second.outcome, second.sent) == ("paced", 0)
        assert len(receiver.requests) == 5
        assert stack.rows("SELECT count(*) FROM delivered_files") == [(5,)]
        url = stack.sqs.get_queue_url(QueueName="docora-delivery")["QueueUrl"]
        queued = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"])
        assert queued["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "2"  # each asks again once refilled


@pytest.mark.parametrize("event", ["create", "delete"])
def test_acknowledging_for_a_watch_that_is_gone_is_not_found_and_logs_nothing(stack, event):
    from chalicelib.domain.deliveries import Attempt, Change

    change = Change(event, "a", b"0" * 32, None, 1, False)
    attempt = Attempt(None, "a", event, "d" * 64, 1, 200, None, 5, T0)

    stack.deps.store.acknowledge("app_" + "0" * 24, "repo_" + "0" * 24, change, attempt)  # the answer comes later
    with pytest.raises(errors.NotFound):
        stack.deps.store.settle()
    stack.deps.store.settle()  # told once
    assert stack.rows("SELECT count(*) FROM delivery_attempts") == [(0,)]


def test_an_answer_left_unread_by_a_job_that_stopped_on_an_error_does_not_fail_the_next_one(stack):
    from chalicelib.domain.deliveries import Attempt, Change

    change = Change("create", "a", b"0" * 32, None, 1, False)
    attempt = Attempt(None, "a", "create", "d" * 64, 1, 200, None, 5, T0)
    stack.deps.store.acknowledge("app_" + "0" * 24, "repo_" + "0" * 24, change, attempt)  # then the job died

    with stack.deps.store.transaction() as tx:
        commit = tx.snapshots.commit("repo_" + "0" * 24)
    stack.deps.store.settle()

    assert commit is None
