"""Receivers that misbehave, one programmable receiver per app on loopback, several apps watching one repository.

Whatever a receiver does (random 5xx, resets, timeouts, 429 with Retry-After, 410, answers trickled a byte at a
time, acknowledgements that come after Docora gave up), its app ends holding every file in its final state,
retries come on schedule and carry the same X-Docora-Delivery, and the other apps do not notice.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta
from email.utils import format_datetime

import pytest

from chalicelib.adapters.sqs_queues import SqsDeliveryQueue
from chalicelib.adapters.webhook_http import WebhookSender
from chalicelib.services import admin
from docora_local.harness.consumers import DELIVERY_QUEUE, SCAN_QUEUE, Clock, Consumers
from docora_local.harness.end_state import assert_converged, resent
from docora_local.harness.receivers import PythonReceiver, Reply
from docora_local.harness.scan_stack import scan_stack
from docora_local.harness.scenario import add_app, add_repository, binary, synced
from tests.integration.test_webhook_http import tls_files
from tests.reliability.conftest import SETTINGS

FILES = {"a.md": b"alpha\n", "b.md": b"bravo\n", "c.md": b"charlie\n", "big.bin": binary(1200, 1)}
CHANGE = {"a.md": b"alpha 2\n", "c.md": None, "new.md": b"new\n", "big.bin": binary(1200, 2)}
SEED = 20261127


def sometimes(name: str, probability: float, fault: Reply):
    """A policy answering `fault` with this probability and 200 otherwise, from a generator seeded per app."""
    rng = random.Random(f"{SEED}:{name}")  # noqa: S311 - reproducible, not secret
    return lambda: fault if rng.random() < probability else Reply(200)


POLICIES = {
    "5xx at random": lambda: sometimes("5xx", 0.3, Reply(502)),
    "resets": lambda: sometimes("resets", 0.25, Reply(action="reset")),
    # Answered 200, but after Docora's timeout (0.5 s here): the receiver keeps the file and will acknowledge it again.
    "late acknowledgements": lambda: sometimes("late", 0.1, Reply(200, delay=0.8)),
    "429 with Retry-After": lambda: sometimes("429", 0.15, Reply(429, headers={"Retry-After": "1"})),
    # 64 bytes of body at 50 ms each: 3.2 s if Docora waited for it all.
    "slow bodies": lambda: sometimes("slow", 0.15, Reply(200, body=b"." * 64, delay=0.05, action="slow-body")),
}


@pytest.fixture
def impatient(tmp_path, database_url, redis_url, monkeypatch, clock):
    """A stack whose webhooks time out after half a second, and its consumers."""
    with scan_stack(
        tmp_path, database_url, redis_url, monkeypatch, **(SETTINGS | {"webhook_timeout_ms": 500})
    ) as stack:
        consumers = Consumers(stack, clock)
        yield stack, consumers
        consumers.close()


def test_every_app_ends_with_every_file_whatever_its_receiver_does(impatient, receivers):
    stack, consumers = impatient
    well_behaved = receivers()
    faulty = {name: receivers(policy=policy()) for name, policy in POLICIES.items()}
    gone = receivers()
    gone.script(Reply(410))
    everyone = [well_behaved, *faulty.values(), gone]
    repo, repository_id = add_repository(stack, "acme/widgets")
    repo.commit(FILES)
    app_ids = [add_app(stack, receiver.url, repository_id) for receiver in everyone[:-1]]
    # One request at a time, so nothing but the 410'd one was under way when it paused.
    app_ids.append(add_app(stack, gone.url, repository_id, max_in_flight=1))

    consumers.request_scan(repository_id)
    consumers.settle_until_synced(max_sweeps=10)
    paused = stack.rows("SELECT delivery_state FROM apps WHERE id = %s", app_ids[-1])
    sent_to_gone = len(gone.sent)
    admin.resume(app_ids[-1], deps=consumers.deps)
    repo.commit(CHANGE)
    consumers.request_scan(repository_id)
    consumers.settle_until_synced(max_sweeps=10)

    assert (paused, sent_to_gone) == ([("paused",)], 1)
    assert_converged(stack, {repository_id: repo}, everyone)
    for receiver in everyone:
        ids = {s.change_id for s in receiver.sent}
        assert len(ids) == len({(s.event, s.path, s.sha) for s in receiver.sent}), "a retry changed its delivery id"
    failed_attempts = dict(
        stack.rows("SELECT app_id, count(*) FROM delivery_attempts WHERE error IS NOT NULL GROUP BY app_id")
    )
    assert resent(well_behaved, app_ids[0]) == {}
    assert app_ids[0] not in failed_attempts  # untouched by the others' faults
    assert all(failed_attempts.get(app_id) for app_id in app_ids[1:5])  # the faults happened (a slow body delivers)


def test_retries_follow_the_backoff_and_retry_after_and_long_waits_are_left_to_the_sweep(
    tmp_path, database_url, redis_url, monkeypatch, receivers
):
    settings = SETTINGS | {"retry_base_delay_ms": 1000, "max_retry_attempts": 8}
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, **settings) as stack:
        clock = Clock(redis_url)
        jitter = random.Random(SEED).random  # noqa: S311 - reproducible, not secret
        consumers = Consumers(stack, clock, random=jitter)
        try:
            receiver = receivers()
            watched = synced(stack, consumers, [receiver], {"a.md": b"a\n"})
            watched.repo.commit({"a.md": b"a 2\n"})
            consumers.request_scan(watched.repository_id)
            consumers.run_once((SCAN_QUEUE,))
            (app_id,) = watched.app_ids
            when = format_datetime(clock.now().replace(microsecond=0) + timedelta(seconds=30), usegmt=True)
            receiver.script(
                Reply(500), Reply(502), Reply(500), Reply(429, headers={"Retry-After": "7"}),
                Reply(503, headers={"Retry-After": when}), Reply(429, headers={"Retry-After": "86400"}),
            )  # fmt: skip
            # Full jitter under base·2ⁿ⁻¹ for the first three, then what the receiver asked for (clamped to 1 h).
            allowed = [(0, 1), (0, 2), (0, 4), (7, 7), (29, 30), (3600, 3600)]
            delays = _record_delays(monkeypatch)

            waits = []
            for attempt in range(1, len(allowed) + 1):
                failed_at = clock.now()
                assert consumers.deliver(app_id, watched.repository_id).outcome == "retrying"
                ((attempts, next_attempt_at),) = stack.rows("SELECT attempts, next_attempt_at FROM watches")
                assert attempts == attempt
                waits.append((next_attempt_at - failed_at).total_seconds())
            retry_delays = list(delays)
            early = consumers.sweep(at=next_attempt_at - timedelta(seconds=60))
            due = consumers.sweep(at=next_attempt_at)
            consumers.run_once((DELIVERY_QUEUE,))
        finally:
            consumers.close()
            clock.close()

        assert all(low <= wait <= high + 1 for wait, (low, high) in zip(waits, allowed, strict=True)), waits
        # Waits within SQS's 15 minutes ride on the message's delay; the hour is kept for the sweep.
        assert [abs(delay - wait) <= 1 for delay, wait in zip(retry_delays, waits[:5], strict=True)] == [True] * 5
        assert (early.retries, due.retries) == (0, 1)
        assert_converged(stack, {watched.repository_id: watched.repo}, [receiver])
        assert len({s.delivery_id for s in receiver.sent}) == 1  # seven tries of one change, one delivery id


def test_a_fast_app_finishes_while_another_apps_receiver_hangs(
    tmp_path, database_url, redis_url, monkeypatch, receivers
):
    with scan_stack(
        tmp_path, database_url, redis_url, monkeypatch, **(SETTINGS | {"webhook_timeout_ms": 30_000})
    ) as stack:
        clock = Clock(redis_url)
        setup, hanging_job, fast_job = (Consumers(stack, clock) for _ in range(3))
        try:
            hanging, fast = receivers(), receivers()
            repo, repository_id = add_repository(stack, "acme/widgets")
            repo.commit(FILES)
            hanging_app, fast_app = add_app(stack, hanging.url, repository_id), add_app(stack, fast.url, repository_id)
            setup.request_scan(repository_id)
            setup.run_once((SCAN_QUEUE,))
            held = hanging.hold(1)
            results = {}
            slow = threading.Thread(target=lambda: results.update(hung=hanging_job.deliver(hanging_app, repository_id)))
            quick = threading.Thread(target=lambda: results.update(fast=fast_job.deliver(fast_app, repository_id)))

            slow.start()
            assert held.entered.wait(30)
            quick.start()
            quick.join(60)
            hung_while_fast_finished = slow.is_alive()
            held.release.set()
            slow.join(60)
            setup.settle()
        finally:
            for consumers in (setup, hanging_job, fast_job):
                consumers.close()
            clock.close()

        assert hung_while_fast_finished
        assert results["fast"].outcome == "synced"
        assert_converged(stack, {repository_id: repo}, [hanging, fast])


@pytest.mark.parametrize(
    ("reply", "outcome", "error"),
    [
        # 100-odd bytes of status line and headers at 0.3 s each: half a minute if Docora waited.
        (Reply(200, delay=0.3, action="slow-head"), "retrying", "timed out after 1 s"),
        # A 200 whose body is still coming at the timeout: not acknowledged (docs/protocol.md §1.5).
        (Reply(200, body=b"." * 100, delay=0.3, action="slow-body"), "retrying", "timed out after 1 s"),
    ],
    ids=["slow status line and headers", "slow body after a 200"],
)
def test_an_answer_trickled_a_byte_at_a_time_is_cut_off_at_the_timeout(
    stack, consumers, receivers, reply, outcome, error
):
    receiver = receivers()
    watched = synced(stack, consumers, [receiver], {"a.md": b"a\n"})
    watched.repo.commit({"a.md": b"a 2\n"})
    consumers.request_scan(watched.repository_id)
    consumers.run_once((SCAN_QUEUE,))
    receiver.script(reply)
    (app_id,) = watched.app_ids

    started = time.monotonic()
    result = consumers.deliver(app_id, watched.repository_id)
    took = time.monotonic() - started
    consumers.settle()

    assert took < 10  # the timeout is 1 s; unbounded, the answer would take 30 s
    assert result.outcome == outcome
    assert stack.rows("SELECT error FROM delivery_attempts ORDER BY id")[1] == (error,)
    assert_converged(stack, {watched.repository_id: watched.repo}, [receiver])


def test_over_tls_a_trickled_answer_is_cut_off_at_the_timeout_too(tmp_path):
    context, ca_path = tls_files(tmp_path, "receiver.test")
    receiver = PythonReceiver(tls=context).start()
    sender = WebhookSender(
        allow_private=True, user_agent="Docora/test", resolver=lambda host: ["127.0.0.1"], ca_bundle=ca_path
    )
    receiver.script(Reply(200, delay=0.3, action="slow-head"))
    url = f"https://receiver.test:{receiver.port}/create"
    try:
        started = time.monotonic()
        cut = sender.send(url, b"{}", {}, timeout=1.0)
        took = time.monotonic() - started
        after = sender.send(url, b"{}", {}, timeout=1.0)
    finally:
        sender.close()
        receiver.stop()

    assert took < 10
    assert (cut.status_code, cut.error) == (None, "timed out after 1 s")
    assert after.status_code == 200


def test_an_acknowledgement_that_comes_too_late_is_sent_again_with_the_same_id_and_kept_once(
    stack, consumers, receivers
):
    receiver = receivers()
    watched = synced(stack, consumers, [receiver], FILES)
    watched.repo.commit(CHANGE)
    consumers.request_scan(watched.repository_id)
    consumers.run_once((SCAN_QUEUE,))
    receiver.script(Reply(200), Reply(200, delay=1.5))  # the second change: kept by the receiver, timed out here
    (app_id,) = watched.app_ids

    consumers.settle()

    assert_converged(stack, {watched.repository_id: watched.repo}, [receiver])
    (twice,) = resent(receiver, app_id).items()
    assert twice[1] == 2
    acknowledged = [s for s in receiver.sent if s.change_id == twice[0]]
    assert [s.acknowledged for s in acknowledged] == [True, True]  # the receiver took it both times


def _record_delays(monkeypatch) -> list[int]:
    """The delay of every delivery request put on the queue from now on."""
    delays: list[int] = []
    original = SqsDeliveryQueue.request_delivery

    def request_delivery(self, app_id: str, repository_id: str, delay_seconds: int = 0) -> None:
        delays.append(delay_seconds)
        original(self, app_id, repository_id, delay_seconds)

    monkeypatch.setattr(SqsDeliveryQueue, "request_delivery", request_delivery)
    return delays
