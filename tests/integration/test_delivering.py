"""Delivery against real receivers on loopback, over the real stack: order, bytes, chunks, retries, faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime

import pytest

from chalicelib import errors
from chalicelib.services import scanning
from docora_local.harness.receivers import PythonReceiver, Reply
from docora_local.harness.scan_stack import CLIENT_AUTH_KEY, T0, later, scan_stack
from tests.integration.node_receiver import NodeReceiver

NOT_FOLLOWED = "(redirects are not followed)"


@pytest.fixture
def receiver():
    server = PythonReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def stack(tmp_path, database_url, redis_url, monkeypatch):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, webhook_timeout_ms=1500) as built:
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


def test_a_commit_sends_deletes_then_creates_then_updates(stack, receiver):
    repo, repository_id, app_id = watched(stack, receiver, {"keep.md": b"k", "edit.md": b"1", "gone.md": b"g"})
    stack.deliver(app_id, repository_id)
    receiver.requests.clear()
    repo.commit({"edit.md": b"2", "gone.md": None, "new.md": b"n"})
    stack.scan(repository_id, at=later(T0))

    stack.deliver(app_id, repository_id)

    assert events(receiver) == [("/hooks/delete", "gone.md"), ("/hooks/create", "new.md"), ("/hooks/update", "edit.md")]
    deleted, updated = (json.loads(receiver.requests[i].body) for i in (0, 2))
    assert deleted["file"] == {"path": "gone.md", "sha": hashlib.sha256(b"g").hexdigest()}
    assert updated["previous_sha"] == hashlib.sha256(b"1").hexdigest()


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


def test_a_failing_receiver_gets_retries_and_acknowledged_files_are_not_sent_again(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a", "b.md": b"b", "c.md": b"c"})
    receiver.script(Reply(200), Reply(500))

    failed = stack.deliver(app_id, repository_id)
    time.sleep(1.1)  # the retry is an SQS message delayed by the backoff: 1 s with this jitter
    retry_requests = stack.deliveries_requested()
    status = stack.rows("SELECT status, attempts, last_error, next_attempt_at IS NOT NULL FROM watches")
    receiver.requests.clear()
    recovered = stack.deliver(app_id, repository_id)

    assert failed.outcome == "retrying"
    assert retry_requests == [(app_id, repository_id)]
    assert status == [("pending", 1, "the receiver answered 500", True)]
    assert recovered.outcome == "synced"
    assert events(receiver) == [("/hooks/create", "b.md"), ("/hooks/create", "c.md")]
    logged = stack.rows("SELECT path, status_code, attempt FROM delivery_attempts ORDER BY id")
    assert logged[:2] == [("a.md", 200, 1), ("b.md", 500, 1)]
    assert logged[2] == ("b.md", 200, 2)


def test_retry_after_is_honoured_and_long_waits_are_left_to_the_sweep(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a"})
    receiver.script(Reply(429, headers={"Retry-After": "1200"}))
    before = datetime.now(UTC)

    result = stack.deliver(app_id, repository_id)

    (next_attempt_at,) = stack.rows("SELECT next_attempt_at FROM watches")[0]
    assert result.outcome == "retrying"
    assert 1190 <= (next_attempt_at - before).total_seconds() <= 1210
    assert stack.deliveries_requested() == []  # beyond SQS's 15-minute delay: the sweep re-enqueues it


def test_gone_pauses_the_app_and_nothing_more_is_sent(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a", "b.md": b"b"})
    receiver.script(Reply(410))

    first = stack.deliver(app_id, repository_id)
    second = stack.deliver(app_id, repository_id)

    assert (first.outcome, second.outcome) == ("paused", "paused")
    assert len(receiver.requests) == 1
    assert stack.rows("SELECT delivery_state, paused_reason FROM apps") == [
        ("paused", "the receiver answered 410 Gone")
    ]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(301, headers={"Location": "http://169.254.169.254/"}), f"the receiver answered 301 {NOT_FOLLOWED}"),
        (Reply(404), "the receiver answered 404"),
        (Reply(200, delay=3), "timed out after 1.5 s"),
        (Reply(action="reset"), "connection reset"),
    ],
    ids=["redirect", "not found", "timeout", "reset"],
)  # fmt: skip
def test_receiver_faults_are_failures_with_a_plain_error(stack, receiver, reply, error):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a"})
    receiver.script(reply)

    result = stack.deliver(app_id, repository_id)

    assert result.outcome == "retrying"
    assert stack.rows("SELECT last_error FROM watches") == [(error,)]
    assert stack.rows("SELECT count(*) FROM delivered_files") == [(0,)]


def test_after_the_last_attempt_the_watch_is_failed(tmp_path, database_url, redis_url, monkeypatch, receiver):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, max_retry_attempts=2) as stack:
        _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a"})
        receiver.script(Reply(500), Reply(500))

        outcomes = [stack.deliver(app_id, repository_id).outcome for _ in range(2)]

        assert outcomes == ["retrying", "failed"]
        ((status, attempts, next_attempt_at),) = stack.rows("SELECT status, attempts, next_attempt_at FROM watches")
        assert (status, attempts) == ("failed", 2)
        assert next_attempt_at > datetime.now(UTC)  # a long wait, then one more try (deliveries.FAILED_RETRY_FIRST)


def test_a_crash_between_the_post_and_the_ledger_write_resends_once_with_the_same_id(stack, receiver, monkeypatch):
    from chalicelib.adapters.postgres_deliveries import PostgresDeliveries

    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a", "b.md": b"b"})
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


def test_an_app_that_unwatches_mid_job_receives_at_most_the_file_already_on_its_way(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a", "b.md": b"b", "c.md": b"c"})

    def unwatch_after_first(*_):
        stack.rows("DELETE FROM watches")

    receiver.script(Reply(200, delay=0))
    original_record = receiver._record

    def record_and_unwatch(received):
        original_record(received)
        if len(receiver.requests) == 1:
            unwatch_after_first()

    receiver._record = record_and_unwatch
    result = stack.deliver(app_id, repository_id)

    # The job learns that a.md's acknowledgement found no watch while b.md goes out (acknowledgements are answered
    # one file late, see delivering._send_until_stopped); c.md never does.
    assert result.outcome == "gone"
    assert [json.loads(r.body)["file"]["path"] for r in receiver.requests] == ["a.md", "b.md"]
    assert stack.rows("SELECT count(*) FROM delivered_files") == [(0,)]


def test_an_app_paused_mid_job_gets_at_most_the_file_already_on_its_way_and_the_rest_after_resuming(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a", "b.md": b"b", "c.md": b"c"})
    original_record = receiver._record

    def record_and_pause(received):
        original_record(received)
        if len(receiver.requests) == 1:
            stack.rows("UPDATE apps SET delivery_state = 'paused', paused_reason = 'paused by the operator'")

    receiver._record = record_and_pause
    paused = stack.deliver(app_id, repository_id)
    held = stack.rows("SELECT path FROM delivered_files ORDER BY path")
    stack.rows("UPDATE apps SET delivery_state = 'active', paused_reason = NULL")
    resumed = stack.deliver(app_id, repository_id)

    # The pause shows in the answer to a.md's ledger write, which the job reads once b.md is out.
    assert (paused.outcome, paused.sent) == ("paused", 2)
    assert held == [("a.md",), ("b.md",)]
    assert resumed.outcome == "synced"
    assert [json.loads(r.body)["file"]["path"] for r in receiver.requests] == ["a.md", "b.md", "c.md"]


def test_a_missing_content_asks_for_a_refreshing_scan_that_restores_it(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a"})
    for stored in stack.s3.list_objects_v2(Bucket="docora-contents")["Contents"]:  # the bundle that holds it
        stack.s3.delete_object(Bucket="docora-contents", Key=stored["Key"])

    missing = stack.deliver(app_id, repository_id)
    (request,) = stack.scans_requested()
    scanning.scan_repository(
        repository_id,
        request.requested_at,
        now=later(request.requested_at),
        config=stack.configs.scanning,
        deps=stack.deps,
        refresh=request.refresh,
    )
    delivered = stack.deliver(app_id, repository_id)

    assert missing.outcome == "waiting"
    assert request.refresh is True
    assert delivered.outcome == "synced"
    assert [json.loads(r.body)["file"]["path"] for r in receiver.requests] == ["a.md"]


def test_the_same_request_twice_at_once_runs_once(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a"})

    with stack.deps.locks.hold(f"deliver:{app_id}:{repository_id}"):
        busy = stack.deliver(app_id, repository_id)

    assert busy.outcome == "busy"
    assert receiver.requests == []


def test_a_job_near_the_lambda_timeout_hands_over_the_rest(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {"a.md": b"a"})

    result = stack.deliver(app_id, repository_id, time_left_ms=1000)

    assert result.outcome == "continued"
    assert stack.deliveries_requested() == [(app_id, repository_id)]
    assert receiver.requests == []


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


def test_sync_failed_is_sent_once_per_opening_before_files(tmp_path, database_url, redis_url, monkeypatch, receiver):
    settings = {"circuit_breaker_threshold": 1}
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, **settings) as stack:
        repo = stack.make_repo()
        repo.commit({"a.md": b"a"})
        repository_id = stack.add_repository(base_url=receiver.url)
        app_id = stack.app_ids(repository_id)[0]
        stack.git_server.fail_with(500)
        stack.scan(repository_id, at=T0)

        first = stack.deliver(app_id, repository_id)
        second = stack.deliver(app_id, repository_id)

        assert (first.outcome, second.outcome) == ("waiting", "waiting")
        (notice,) = receiver.requests
        body = json.loads(notice.body)
        assert notice.path == "/sync_failed"
        assert list(body) == ["event", "repository", "error", "circuit_breaker", "retry_count", "timestamp"]
        assert body["error"] == {"type": "git_failure", "message": "git server did not answer"}
        assert verify(notice)


def test_the_attempt_log_is_paged_newest_first(stack, receiver):
    _, repository_id, app_id = watched(stack, receiver, {f"{i}.md": b"x" for i in range(5)})
    stack.deliver(app_id, repository_id)

    with stack.deps.store.transaction() as tx:
        first = tx.deliveries.attempts(app_id, repository_id, limit=3, before=None)
        rest = tx.deliveries.attempts(app_id, repository_id, limit=3, before=first[-1].id)

    assert [a.path for a in first + rest] == ["4.md", "3.md", "2.md", "1.md", "0.md"]


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
