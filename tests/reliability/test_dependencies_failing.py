"""Postgres, Redis, S3, SQS and the git server failing under running jobs: the system resumes by itself.

One repository is synced to an app; each case commits a change and breaks a dependency at one step. The job fails
loudly (its message goes back to the queue) or records a git failure; the dependency comes back; the queue's
redelivery, and where the case says so one sweep, finish the work. Nothing is lost: the app ends holding the last
commit, and every watch is `synced`, which is where the next case starts.
"""

from __future__ import annotations

import threading

import boto3
import pytest
from botocore.config import Config

from chalicelib.adapters import redis_client
from chalicelib.adapters.git_dulwich import DulwichGit
from chalicelib.adapters.redis_locks import RedisLocks
from chalicelib.adapters.redis_rate_limits import RedisRateLimiter
from chalicelib.adapters.s3_contents import S3Contents
from chalicelib.adapters.sqs_queues import SqsDeliveryQueue
from chalicelib.adapters.webhook_http import WebhookSender
from chalicelib.messages import ScanRequested
from docora_local.harness.consumers import DELIVERY_QUEUE, SCAN_QUEUE, Consumers
from docora_local.harness.end_state import assert_converged, resent
from docora_local.harness.mirror import MirrorReceiver
from docora_local.harness.receivers import Reply
from docora_local.harness.scenario import FIRST, next_change, synced
from tests.reliability.faults import closed_port, fault_mid_copy, on_call, restart_redis, terminate_backends

_REFUSING = Config(connect_timeout=1, retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def synced_once(module_stack):
    stack, clock = module_stack
    receiver = MirrorReceiver().start()
    consumers = Consumers(stack, clock)
    try:
        yield stack, clock, consumers, receiver, synced(stack, consumers, [receiver], FIRST)
    finally:
        consumers.close()
        receiver.stop()


@pytest.fixture
def changed(synced_once):
    """The shared repository with a new commit whose scan is requested; logs and failures cleared."""
    stack, clock, consumers, receiver, watched = synced_once
    consumers.failures.clear()
    consumers.outcomes.clear()
    receiver.forget_log()
    watched.repo.commit(next_change(watched.repo))
    consumers.request_scan(watched.repository_id)
    return stack, clock, consumers, receiver, watched


def converged(stack, receiver, watched) -> None:
    assert_converged(stack, {watched.repository_id: watched.repo}, [receiver])


@pytest.mark.parametrize(
    ("owner", "name", "after"),
    [(DulwichGit, "fetch_tree", True), (S3Contents, "put_many", True)],
    ids=["after the tree fetch", "after the S3 upload"],
)
def test_postgres_killed_mid_scan_fails_the_job_and_its_redelivery_finishes_it(
    changed, monkeypatch, owner, name, after
):
    stack, _, consumers, receiver, watched = changed
    on_call(monkeypatch, owner, name, lambda: terminate_backends(stack.database_url), after=after)

    consumers.settle()

    assert consumers.failures == ["scan: Unavailable: the database is not available"]
    converged(stack, receiver, watched)


def test_postgres_killed_mid_copy_leaves_no_half_snapshot(changed, monkeypatch):
    stack, _, consumers, receiver, watched = changed
    fault_mid_copy(monkeypatch, lambda: terminate_backends(stack.database_url))

    consumers.settle()

    assert consumers.failures == ["scan: Unavailable: the database is not available"]
    converged(stack, receiver, watched)


def test_postgres_killed_between_a_post_and_its_ledger_write_resends_at_most_the_last_two_changes_once(
    changed, monkeypatch
):
    stack, _, consumers, receiver, watched = changed
    on_call(monkeypatch, WebhookSender, "send", lambda: terminate_backends(stack.database_url), call=2, after=True)

    consumers.settle()

    assert consumers.failures == ["deliver: Unavailable: the database is not available"]
    converged(stack, receiver, watched)
    # The change just POSTed, and the one before it when the database died before running its ledger write (sent,
    # not yet answered: see delivering._send_until_stopped).
    assert list(resent(receiver, watched.app_ids[0]).values()) in ([2], [2, 2])


def test_redis_restarted_mid_delivery_loses_the_lock_and_both_jobs_still_end_right(changed):
    stack, clock, consumers, receiver, watched = changed
    (app_id,) = watched.app_ids
    consumers.run_once((SCAN_QUEUE,))
    held = receiver.hold(2)
    first = threading.Thread(target=consumers.run)
    first.start()
    assert held.entered.wait(30)

    restart_redis(stack.settings.redis_url, consumers.redis)
    other = Consumers(stack, clock)
    try:
        second = other.deliver(app_id, watched.repository_id)
    finally:
        other.close()
    held.release.set()
    first.join(30)
    consumers.settle(sweeps=1)

    assert second.outcome == "synced"  # the lock was gone, so a second job ran beside the first
    converged(stack, receiver, watched)
    assert set(resent(receiver, app_id).values()) <= {2}


@pytest.mark.parametrize(
    ("dependency", "queue", "sweeps"),
    [
        ("redis", DELIVERY_QUEUE, 0),
        ("s3", SCAN_QUEUE, 0),
        ("s3", DELIVERY_QUEUE, 0),
        # The snapshot is in and the watches are marked; the requests could not be sent. The sweep sends them.
        ("sqs", SCAN_QUEUE, 1),
    ],
)
def test_a_dependency_refusing_connections_fails_the_job_and_it_runs_when_it_is_back(
    changed, dependency, queue, sweeps
):
    stack, _, consumers, receiver, watched = changed
    if queue == DELIVERY_QUEUE:
        consumers.run_once((SCAN_QUEUE,))
    healthy = consumers.deps
    consumers.replace(**_refusing(dependency, stack.settings))

    try:
        consumers.run_once((queue,))
    finally:
        consumers.deps = healthy
    consumers.settle(sweeps=sweeps)

    (failure,) = consumers.failures
    assert "Unavailable" in failure
    converged(stack, receiver, watched)


def test_a_bucket_that_disappears_mid_delivery_is_refilled_once_it_is_back(changed):
    stack, _, consumers, receiver, watched = changed
    consumers.run_once((SCAN_QUEUE,))
    _empty_and_delete_bucket(stack.s3)

    try:
        consumers.run_once((DELIVERY_QUEUE,))
        consumers.run_once((SCAN_QUEUE,))  # the refreshing scan finds no bucket either
    finally:
        stack.s3.create_bucket(Bucket="docora-contents")
    consumers.settle()

    assert ("deliver", "waiting") in consumers.outcomes
    assert consumers.failures == ["scan: Unavailable: the content bucket is not available"]
    converged(stack, receiver, watched)


def test_the_same_scan_request_twice_at_once_scans_once(changed):
    stack, clock, consumers, receiver, watched = changed
    (request,) = stack.scans_requested()
    twins = [Consumers(stack, clock), Consumers(stack, clock)]
    start = threading.Barrier(2)
    outcomes = []

    def scan(container: Consumers) -> None:
        start.wait()
        outcomes.append(container.scan(ScanRequested.from_json(request.to_json())).outcome)

    try:
        _in_parallel(scan, twins)
    finally:
        for twin in twins:
            twin.close()
    consumers.settle()

    assert sorted(outcomes) in (["busy", "scanned"], ["scanned", "skipped"])
    converged(stack, receiver, watched)
    assert resent(receiver, watched.app_ids[0]) == {}


def test_the_same_delivery_request_twice_at_once_sends_each_change_once(changed, monkeypatch):
    stack, clock, consumers, receiver, watched = changed
    monkeypatch.setattr(receiver, "default", Reply(200, delay=0.02))  # long enough for the two jobs to overlap
    consumers.run_once((SCAN_QUEUE,))
    (app_id,) = watched.app_ids
    twins = [Consumers(stack, clock), Consumers(stack, clock)]
    start = threading.Barrier(2)
    outcomes = []

    def deliver(container: Consumers) -> None:
        start.wait()
        outcomes.append(container.deliver(app_id, watched.repository_id).outcome)

    try:
        _in_parallel(deliver, twins)
        again = twins[0].deliver(app_id, watched.repository_id)  # SQS redelivers a message already done
    finally:
        for twin in twins:
            twin.close()
    consumers.settle()

    assert "synced" in outcomes and again.outcome == "synced"
    converged(stack, receiver, watched)
    assert resent(receiver, app_id) == {}


@pytest.mark.parametrize(
    ("name", "fault"),
    [
        ("read_blobs", lambda server: server.hang()),
        ("fetch_tree", lambda server: server.reset(after_bytes=200)),
        ("read_blobs", lambda server: server.reset(after_bytes=600)),
    ],
    ids=["hang at the blob fetch", "reset mid-pack of trees", "reset mid-pack of blobs"],
)  # fmt: skip
def test_a_git_server_that_hangs_or_resets_is_a_recorded_failure_and_the_next_sweep_recovers(
    changed, monkeypatch, name, fault
):
    stack, _, consumers, receiver, watched = changed
    on_call(monkeypatch, DulwichGit, name, lambda: fault(stack.git_server))

    try:
        consumers.settle()
    finally:
        stack.git_server.recover()
    recorded = stack.rows("SELECT consecutive_failures, last_error FROM repositories")
    consumers.settle(sweeps=1)

    assert recorded == [(1, "git server did not answer")]
    assert consumers.failures == []
    converged(stack, receiver, watched)
    assert stack.rows("SELECT consecutive_failures, last_error FROM repositories") == [(0, None)]


def _refusing(dependency: str, settings) -> dict:
    """Adapters of `dependency` pointed at a loopback port that refuses every connection."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    if dependency == "redis":
        client = redis_client.connect(f"redis://127.0.0.1:{closed_port()}/0")
        return {"locks": RedisLocks(client), "rate_limiter": RedisRateLimiter(client)}
    if dependency == "s3":
        s3 = boto3.client("s3", endpoint_url=endpoint, config=_REFUSING)
        return {"contents": S3Contents(s3, settings.content_bucket)}
    sqs = boto3.client("sqs", endpoint_url=endpoint, config=_REFUSING)
    return {"delivery_queue": SqsDeliveryQueue(sqs, settings.delivery_queue_name)}


def _empty_and_delete_bucket(s3) -> None:
    for item in s3.list_objects_v2(Bucket="docora-contents").get("Contents", []):
        s3.delete_object(Bucket="docora-contents", Key=item["Key"])
    s3.delete_bucket(Bucket="docora-contents")


def _in_parallel(job, containers) -> None:
    threads = [threading.Thread(target=job, args=(container,)) for container in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
