"""Delivery's behaviour on the fakes: order, signatures, chunks, retries, pauses, hand-overs and receiver faults."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest

from chalicelib.domain.apps import PausedBy
from chalicelib.domain.deliveries import FAILED_RETRY_FIRST
from tests.fakes import Answer
from tests.unit.fake_stack import RECEIVER, T0, FakeStack, fake_stack, later

NOT_FOLLOWED = "(redirects are not followed)"


@pytest.fixture
def stack():
    return fake_stack(webhook_timeout=timedelta(seconds=1.5))


def watched(stack: FakeStack, files: dict[str, bytes]):
    repo, repository_id = stack.first_scan(files)
    return repo, repository_id, stack.app_ids(repository_id)[0]


def sha(content: bytes) -> bytes:
    return hashlib.sha256(content).digest()


def bodies(stack: FakeStack) -> list[dict]:
    return [json.loads(body) for _, body, _ in stack.sent]


def test_a_first_sync_sends_every_file_signed_in_path_order_and_fills_the_ledger(stack):
    repo, repository_id, app_id = watched(stack, {"b.md": b"b\n", "a.md": b"a\n", "img.bin": b"\x00\x01"})

    result = stack.deliver(app_id, repository_id)

    assert result.outcome == "synced"
    assert stack.received() == [("create", "a.md"), ("create", "b.md"), ("create", "img.bin")]
    assert stack.verified()
    url, _, headers = stack.sent[0]
    assert url == RECEIVER + "/create"
    assert (headers["X-Docora-Event"], headers["X-Docora-App-Id"]) == ("create", app_id)
    assert headers["User-Agent"].startswith("Docora/")
    first, _, binary = bodies(stack)
    assert first["file"] == {"path": "a.md", "sha": sha(b"a\n").hex(), "size": 2, "content": "a\n"}
    assert first["commit_sha"] == repo.head()
    assert binary["file"]["content_encoding"] == "base64"
    assert base64.b64decode(binary["file"]["content"]) == b"\x00\x01"
    assert stack.ledger(app_id, repository_id) == {"a.md": sha(b"a\n"), "b.md": sha(b"b\n"), "img.bin": sha(b"\0\1")}
    watch = stack.watch(app_id, repository_id)
    assert (watch.status, watch.attempts, watch.last_commit_sha) == ("synced", 0, repo.head())


def test_a_commit_sends_deletes_then_creates_then_updates(stack):
    repo, repository_id, app_id = watched(stack, {"keep.md": b"k", "edit.md": b"1", "gone.md": b"g"})
    stack.deliver(app_id, repository_id)
    stack.sent.clear()
    repo.commit({"edit.md": b"2", "gone.md": None, "new.md": b"n"})
    stack.scan(repository_id, at=later(T0))

    stack.deliver(app_id, repository_id)

    assert stack.received() == [("delete", "gone.md"), ("create", "new.md"), ("update", "edit.md")]
    deleted, _, updated = bodies(stack)
    assert deleted["file"] == {"path": "gone.md", "sha": sha(b"g").hex()}
    assert updated["previous_sha"] == sha(b"1").hex()
    assert stack.ledger(app_id, repository_id) == {"keep.md": sha(b"k"), "edit.md": sha(b"2"), "new.md": sha(b"n")}


def test_a_large_binary_goes_out_in_signed_slices_that_reassemble_to_it():
    stack = fake_stack(chunk_threshold_bytes=1024, chunk_size_chars=400)
    content = bytes(range(256)) * 8
    _, repository_id, app_id = watched(stack, {"big.bin": content})

    result = stack.deliver(app_id, repository_id)

    files = [body["file"] for body in bodies(stack)]
    ids = [headers["X-Docora-Delivery"] for _, _, headers in stack.sent]
    assert result.outcome == "synced"
    assert [(file["chunk"]["index"], file["chunk"]["total"]) for file in files] == [(i, 7) for i in range(7)]
    assert len({file["chunk"]["id"] for file in files}) == 1
    assert base64.b64decode("".join(file["content"] for file in files)) == content
    assert ids == [f"{ids[0][:-2]}.{i}" for i in range(7)]
    assert stack.verified()
    assert stack.ledger(app_id, repository_id) == {"big.bin": sha(content)}


def test_a_slice_the_receiver_refuses_stops_the_transfer_and_the_retry_sends_it_whole_again():
    stack = fake_stack(chunk_threshold_bytes=1024, chunk_size_chars=400)
    _, repository_id, app_id = watched(stack, {"big.bin": bytes(range(256)) * 8})
    stack.webhooks.script(Answer(200), Answer(200), Answer(500))

    failed = stack.deliver(app_id, repository_id)
    first_try = [headers["X-Docora-Delivery"] for _, _, headers in stack.sent]
    stack.sent.clear()
    retried = stack.deliver(app_id, repository_id)

    assert (failed.outcome, retried.outcome) == ("retrying", "synced")
    assert [headers["X-Docora-Delivery"] for _, _, headers in stack.sent][:3] == first_try
    assert len(stack.sent) == 7


def test_a_failing_receiver_gets_retries_and_acknowledged_files_are_not_sent_again(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a", "b.md": b"b", "c.md": b"c"})
    stack.one_at_a_time(app_id)
    stack.webhooks.script(Answer(200), Answer(500))

    failed = stack.deliver(app_id, repository_id)
    retry_requests = stack.deliveries_requested()
    watch = stack.watch(app_id, repository_id)
    stack.sent.clear()
    recovered = stack.deliver(app_id, repository_id)

    assert failed.outcome == "retrying"
    assert retry_requests == [(app_id, repository_id, 1)]  # 1 s: the first backoff with this jitter
    assert (watch.status, watch.attempts, watch.last_error) == ("pending", 1, "the receiver answered 500")
    assert watch.next_attempt_at == later(stack.clock(), 1)
    assert recovered.outcome == "synced"
    assert stack.received() == [("create", "b.md"), ("create", "c.md")]
    with stack.deps.store.transaction() as tx:
        logged = tx.deliveries.attempts(app_id, repository_id, limit=10, before=None)
    assert [(a.path, a.status_code, a.attempt) for a in reversed(logged)] == [
        ("a.md", 200, 1), ("b.md", 500, 1), ("b.md", 200, 2), ("c.md", 200, 2)
    ]  # fmt: skip


def test_retry_after_is_honoured_and_long_waits_are_left_to_the_sweep(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a"})
    stack.webhooks.script(Answer(429, retry_after="1200"))

    result = stack.deliver(app_id, repository_id)

    assert result.outcome == "retrying"
    assert stack.watch(app_id, repository_id).next_attempt_at == later(stack.clock(), 1200)
    assert stack.deliveries_requested() == []  # beyond SQS's 15-minute delay: the sweep re-enqueues it


def test_a_short_retry_after_comes_back_through_the_queue_after_that_wait(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a"})
    stack.webhooks.script(Answer(503, retry_after="120"))

    result = stack.deliver(app_id, repository_id)

    assert result.outcome == "retrying"
    assert stack.deliveries_requested() == [(app_id, repository_id, 120)]


def test_gone_pauses_the_app_and_nothing_more_is_sent(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a", "b.md": b"b"})
    stack.one_at_a_time(app_id)
    stack.webhooks.script(Answer(410))

    first = stack.deliver(app_id, repository_id)
    second = stack.deliver(app_id, repository_id)

    app = stack.store.tables.apps[app_id][0]
    assert (first.outcome, second.outcome) == ("paused", "paused")
    assert len(stack.sent) == 1
    assert (app.delivery_state, app.paused_reason) == ("paused", "the receiver answered 410 Gone")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (Answer(301), f"the receiver answered 301 {NOT_FOLLOWED}"),
        (Answer(404), "the receiver answered 404"),
        (Answer(None, hangs=True), "timed out after 1.5 s"),
        (Answer(None, error="connection reset"), "connection reset"),
    ],
    ids=["redirect", "not found", "timeout", "reset"],
)
def test_receiver_faults_are_failures_with_a_plain_error(stack, answer, error):
    _, repository_id, app_id = watched(stack, {"a.md": b"a"})
    stack.webhooks.script(answer)

    result = stack.deliver(app_id, repository_id)

    assert result.outcome == "retrying"
    assert stack.watch(app_id, repository_id).last_error == error
    assert stack.ledger(app_id, repository_id) == {}


def test_after_the_last_attempt_the_watch_is_failed():
    stack = fake_stack(max_retry_attempts=2)
    _, repository_id, app_id = watched(stack, {"a.md": b"a"})
    stack.webhooks.script(Answer(500), Answer(500))

    outcomes = [stack.deliver(app_id, repository_id).outcome for _ in range(2)]

    watch = stack.watch(app_id, repository_id)
    assert outcomes == ["retrying", "failed"]
    assert (watch.status, watch.attempts) == ("failed", 2)
    assert watch.next_attempt_at == stack.clock() + FAILED_RETRY_FIRST  # one more try later, then longer waits


def test_a_crash_between_the_post_and_the_ledger_write_resends_once_with_the_same_id(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a", "b.md": b"b"})
    stack.one_at_a_time(app_id)

    def killed() -> None:
        raise SystemExit("the Lambda was killed")

    stack.webhooks.script(Answer(200), Answer(200, then=killed))
    with pytest.raises(SystemExit):
        stack.deliver(app_id, repository_id)
    stack.clock.advance(30)  # the message comes back; so do the dead job's slots, their lease over

    stack.deliver(app_id, repository_id)

    ids = [headers["X-Docora-Delivery"] for _, _, headers in stack.sent]
    assert [path for _, path in stack.received()] == ["a.md", "b.md", "b.md"]
    assert ids[1] == ids[2]


def test_an_app_that_unwatches_mid_job_receives_at_most_the_file_already_on_its_way(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a", "b.md": b"b", "c.md": b"c"})
    stack.one_at_a_time(app_id)

    def unwatch() -> None:
        with stack.deps.store.transaction() as tx:
            tx.watches.delete(app_id, repository_id)

    stack.webhooks.script(Answer(200, then=unwatch))

    result = stack.deliver(app_id, repository_id)

    # The job learns that a.md's acknowledgement found no watch while b.md goes out (acknowledgements are answered
    # one file late, see delivering._send_until_stopped); c.md never does.
    assert result.outcome == "gone"
    assert [path for _, path in stack.received()] == ["a.md", "b.md"]
    assert stack.ledger(app_id, repository_id) == {}


def test_an_app_paused_mid_job_gets_at_most_the_file_already_on_its_way_and_the_rest_after_resuming(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a", "b.md": b"b", "c.md": b"c"})
    stack.one_at_a_time(app_id)

    def pause() -> None:
        with stack.deps.store.transaction() as tx:
            tx.apps.pause(app_id, reason="paused by the operator", by=PausedBy.OPERATOR)

    stack.webhooks.script(Answer(200, then=pause))
    paused = stack.deliver(app_id, repository_id)
    held = sorted(stack.ledger(app_id, repository_id))
    with stack.deps.store.transaction() as tx:
        tx.apps.resume(app_id)
    resumed = stack.deliver(app_id, repository_id)

    # The pause shows in the answer to a.md's ledger write, which the job reads once b.md is out.
    assert (paused.outcome, paused.sent) == ("paused", 2)
    assert held == ["a.md", "b.md"]
    assert resumed.outcome == "synced"
    assert [path for _, path in stack.received()] == ["a.md", "b.md", "c.md"]


def test_a_missing_content_asks_for_a_refreshing_scan_that_restores_it(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a"})
    stack.deps.contents.objects.clear()

    missing = stack.deliver(app_id, repository_id)
    scan_queue = stack.deps.scan_queue
    (requested_at,), (refresh,) = scan_queue.requested_at, scan_queue.refreshing
    stack.scan(repository_id, at=requested_at, refresh=refresh)
    delivered = stack.deliver(app_id, repository_id)

    assert missing.outcome == "waiting"
    assert stack.watch(app_id, repository_id).last_error is None
    assert refresh is True
    assert delivered.outcome == "synced"
    assert [path for _, path in stack.received()] == ["a.md"]


def test_the_same_request_twice_at_once_runs_once(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a"})

    with stack.deps.locks.hold(f"deliver:{app_id}:{repository_id}"):
        busy = stack.deliver(app_id, repository_id)

    assert busy.outcome == "busy"
    assert stack.sent == []


def test_a_request_that_finds_the_job_running_gets_one_more_run_after_it(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a"})
    meanwhile = []

    def asked_again() -> None:
        stack.clock.advance()
        meanwhile.append(stack.deliver(app_id, repository_id).outcome)

    stack.webhooks.script(Answer(200, then=asked_again))

    result = stack.deliver(app_id, repository_id)

    assert (result.outcome, meanwhile) == ("synced", ["busy"])
    assert stack.deliveries_requested() == [(app_id, repository_id, 0)]


def test_a_job_near_the_lambda_timeout_hands_over_the_rest(stack):
    _, repository_id, app_id = watched(stack, {"a.md": b"a"})

    result = stack.deliver(app_id, repository_id, time_left_ms=1000)

    assert result.outcome == "continued"
    assert stack.deliveries_requested() == [(app_id, repository_id, 0)]
    assert stack.sent == []


def test_an_app_over_its_rate_gets_what_its_bucket_holds_and_the_rest_later():
    stack = fake_stack(rate_limit_per_minute=5)
    _, repository_id, app_id = watched(stack, {f"{i:02d}.md": b"x" for i in range(12)})

    first = stack.deliver(app_id, repository_id)
    second = stack.deliver(app_id, repository_id)

    assert (first.outcome, first.sent) == ("paced", 5)  # tokens are taken in blocks, never more than it holds
    assert (second.outcome, second.sent) == ("paced", 0)
    assert len(stack.sent) == 5
    assert len(stack.ledger(app_id, repository_id)) == 5
    assert stack.deliveries_requested() == [(app_id, repository_id, 60)] * 2  # each asks again once refilled


def failing_scan(stack: FakeStack, repo, repository_id: str) -> None:
    repo.fail_with(500)
    stack.scan(repository_id, at=later(T0, 10))


def test_sync_failed_is_sent_once_per_opening():
    stack = fake_stack(circuit_breaker_threshold=1)
    repo = stack.make_repo()
    repo.commit({"a.md": b"a"})
    repository_id = stack.add_repository()
    app_id = stack.app_ids(repository_id)[0]
    failing_scan(stack, repo, repository_id)

    first = stack.deliver(app_id, repository_id)
    second = stack.deliver(app_id, repository_id)

    assert (first.outcome, second.outcome) == ("waiting", "waiting")
    ((url, body, _),) = stack.sent
    notice = json.loads(body)
    assert url == RECEIVER + "/sync_failed"
    assert list(notice) == ["event", "repository", "error", "circuit_breaker", "retry_count", "timestamp"]
    assert notice["error"] == {"type": "git_failure", "message": "git server did not answer"}
    assert stack.verified()


def test_sync_failed_goes_out_before_the_files_the_app_still_lacks():
    stack = fake_stack(circuit_breaker_threshold=1)
    repo, repository_id, app_id = watched(stack, {"a.md": b"a"})
    repo.commit({"b.md": b"b"})
    failing_scan(stack, repo, repository_id)

    result = stack.deliver(app_id, repository_id)

    assert result.outcome == "synced"
    assert stack.received() == [("sync_failed", None), ("create", "a.md")]
