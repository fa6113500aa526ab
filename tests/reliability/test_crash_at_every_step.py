"""A job killed at any step of a scan or a delivery: the next jobs end every app in the right state.

One repository is synced to two apps; each case commits a change (a delete, a create, updates, a chunked binary),
kills the first job that reaches its step, and lets the system go on as it would: the queue redelivers the message
the dead job never acknowledged, and, where the case says so, one sweep runs after the time it waits for. Then
every app holds the last commit, each change went out once (those in flight at the kill, at most twice, under
the same X-Docora-Delivery), no row is orphaned and every watch is `synced`, which is where the next case starts.
One job serves both apps, one request in flight each: a kill mid-send may catch a request of each in flight.

The kill is a SystemExit raised from one of our adapters, so `finally` blocks run and locks are released: that is
the state a redelivery finds, because SQS's visibility timeout outlasts the lock's TTL. The last test covers a
redelivery that comes while the dead job's lock still holds.
"""

from __future__ import annotations

import pytest
import redis

from chalicelib.adapters.git_dulwich import DulwichGit
from chalicelib.adapters.postgres_deliveries import PostgresDeliveries
from chalicelib.adapters.postgres_watches import PostgresWatches
from chalicelib.adapters.redis_locks import RedisLocks
from chalicelib.adapters.redis_rate_limits import RedisRateLimiter
from chalicelib.adapters.s3_contents import S3Contents
from chalicelib.adapters.sqs_queues import SqsDeliveryQueue
from chalicelib.adapters.webhook_http import WebhookSender
from docora_local.harness.consumers import Consumers
from docora_local.harness.end_state import assert_converged, resent
from docora_local.harness.mirror import MirrorReceiver
from docora_local.harness.scenario import CHANGES_SENT, FIRST, next_change, synced
from tests.reliability.faults import crash_on, fault_mid_copy


def crash(owner: type, name: str, **where: int | bool):
    return lambda monkeypatch: crash_on(monkeypatch, owner, name, **where)


# The fault, the sweeps the recovery may take, and how many changes may go out twice in all: the one the kill caught
# between its POST and its ledger write, and the other app's request if it was in flight then.
NO, THE_OTHERS, ONE_AND_THE_OTHERS = range(0, 1), range(0, 2), range(1, 3)
STEPS = [
    pytest.param(crash(DulwichGit, "head", after=True), 0, NO, id="after the head probe"),
    pytest.param(crash(DulwichGit, "fetch_tree", after=True), 0, NO, id="after the tree fetch"),
    pytest.param(crash(S3Contents, "put_many", after=True), 0, NO, id="after the S3 upload"),
    pytest.param(fault_mid_copy, 0, NO, id="mid-COPY of the snapshot"),
    # The redelivery finds the head stored and only fans out: the check is recorded after the fan-out.
    pytest.param(crash(PostgresWatches, "needing_delivery"), 0, NO, id="after the snapshot commit, before the fan-out"),
    pytest.param(crash(SqsDeliveryQueue, "send_many"), 0, NO, id="fan-out marked, not yet sent"),
    pytest.param(crash(RedisLocks, "asked_again_since"), 0, NO, id="after the fan-out, before the message is deleted"),
    pytest.param(crash(RedisRateLimiter, "acquire_many"), 0, NO, id="after the sync started, before the first POST"),
    pytest.param(
        crash(PostgresDeliveries, "send_acknowledgement"),
        0,
        ONE_AND_THE_OTHERS,
        id="after a delete's POST, before its ledger write",
    ),
    pytest.param(
        crash(PostgresDeliveries, "send_acknowledgement", call=3),
        0,
        ONE_AND_THE_OTHERS,
        id="after a POST, before its ledger write",
    ),
    # The ledger write sent before it still lands: only the file just POSTed goes out again.
    pytest.param(
        crash(PostgresDeliveries, "read_acknowledgement", call=2),
        0,
        ONE_AND_THE_OTHERS,
        id="after a POST, before the answer to the previous ledger write",
    ),
    pytest.param(crash(WebhookSender, "send", call=5, after=True), 0, ONE_AND_THE_OTHERS, id="mid-chunk"),
    pytest.param(crash(PostgresWatches, "finish_sync"), 0, THE_OTHERS, id="after the last ledger write, before synced"),
]


@pytest.fixture(scope="module")
def synced_twice(module_stack):
    """The module's repository, synced to two apps on one receiver, and the consumers that keep it so."""
    stack, clock = module_stack
    receiver = MirrorReceiver().start()
    consumers = Consumers(stack, clock)
    try:
        yield stack, consumers, receiver, synced(stack, consumers, [receiver, receiver], FIRST)
    finally:
        consumers.close()
        receiver.stop()


@pytest.mark.parametrize(("fault", "sweeps", "twice"), STEPS)
def test_a_job_killed_at_a_step_is_finished_by_the_next_ones(synced_twice, monkeypatch, fault, sweeps, twice: range):
    stack, consumers, receiver, watched = synced_twice
    consumers.failures.clear()
    receiver.forget_log()
    watched.repo.commit(next_change(watched.repo))
    consumers.request_scan(watched.repository_id)
    fault(monkeypatch)

    consumers.settle(sweeps=sweeps)

    (failure,) = consumers.failures
    assert "crashed" in failure
    assert_converged(stack, {watched.repository_id: watched.repo}, [receiver])
    for app_id in watched.app_ids:
        assert len(receiver.starts(app_id)) == CHANGES_SENT
    resent_per_app = [len(resent(receiver, app_id)) for app_id in watched.app_ids]
    assert all(count <= 1 for count in resent_per_app)  # one request in flight per app
    assert sum(resent_per_app) in twice
    assert all(count == 2 for app_id in watched.app_ids for count in resent(receiver, app_id).values())


def test_a_redelivery_that_finds_the_dead_jobs_lock_still_held_is_left_to_the_sweep(
    stack, consumers, receivers, monkeypatch, redis_url
):
    receiver = receivers()
    watched = synced(stack, consumers, [receiver], FIRST)
    watched.repo.commit(next_change(watched.repo))
    consumers.request_scan(watched.repository_id)
    crash_on(monkeypatch, PostgresDeliveries, "send_acknowledgement", call=2)
    consumers.run_once()
    (app_id,) = watched.app_ids
    # Killed for real, the job would have left its lock to expire by itself.
    redis.Redis.from_url(redis_url).set(f"docora:lock:deliver:{app_id}:{watched.repository_id}", "dead", px=60_000)

    consumers.run()
    busy = consumers.outcomes[-1]
    consumers.settle(sweeps=1)

    assert busy == ("deliver", "busy")
    assert_converged(stack, {watched.repository_id: watched.repo}, [receiver])
    assert len(resent(receiver, app_id)) == 1
