"""Several requests in flight per app, several apps per job: order, the ledger, capacity, fairness, long failures."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from chalicelib.domain.apps import AppChanges
from chalicelib.ports import SlotRequest
from tests.fakes import Answer, CountingRateLimiter
from tests.unit.fake_stack import FakeStack, fake_stack


@pytest.fixture
def stack() -> FakeStack:
    return fake_stack()


FILES = {f"f{n}.md": f"file {n}\n".encode() for n in range(6)}


def watched(stack: FakeStack, files: dict[str, bytes] = FILES, *, apps: int = 1):
    repo, repository_id = stack.first_scan(files, apps=apps)
    return repo, repository_id, stack.app_ids(repository_id)


def test_with_several_in_flight_a_refusal_lets_the_others_through_and_only_it_goes_again(stack):
    _, repository_id, (app_id,) = watched(stack)
    stack.webhooks.script(Answer(200), Answer(500))

    first = stack.deliver(app_id, repository_id)
    stack.sent.clear()
    again = stack.deliver(app_id, repository_id)

    assert (first.outcome, first.sent) == ("retrying", 5)
    assert stack.received() == [("create", "f1.md")]
    assert again.outcome == "synced" and len(stack.ledger(app_id, repository_id)) == 6


def test_a_crash_with_several_in_flight_resends_only_those_under_the_same_ids(stack):
    _, repository_id, (app_id,) = watched(stack)

    def killed() -> None:
        raise SystemExit("the Lambda was killed")

    stack.webhooks.script(Answer(200), Answer(200), Answer(200, then=killed))
    with pytest.raises(SystemExit):
        stack.deliver(app_id, repository_id)
    acknowledged, first = set(stack.ledger(app_id, repository_id)), delivery_ids(stack)
    stack.sent.clear()
    stack.clock.advance(30)

    stack.deliver(app_id, repository_id)

    again = delivery_ids(stack)
    resent = set(first) & set(again)
    assert resent == set(first) - acknowledged  # what was in flight, and nothing acknowledged
    assert all(again[path] == first[path] for path in resent)
    assert len(stack.ledger(app_id, repository_id)) == 6


def delivery_ids(stack: FakeStack) -> dict[str, str]:
    return {json.loads(body)["file"]["path"]: headers["X-Docora-Delivery"] for _, body, headers in stack.sent}


def test_the_rate_limit_holds_with_eight_in_flight(stack):
    _, repository_id, (app_id,) = watched(stack)
    limiter: CountingRateLimiter = stack.deps.rate_limiter  # type: ignore[assignment]
    paced = fake_stack(rate_limit_per_minute=4)
    paced.deps = stack.deps

    result = paced.deliver(app_id, repository_id)

    assert (result.outcome, result.sent) == ("paced", 4)
    assert len(stack.sent) == 4 and limiter.used == {f"deliver:{app_id}": 4}
    assert stack.deliveries_requested() == [(app_id, repository_id, 60)]  # once the bucket has refilled


def test_the_apps_other_jobs_share_its_requests_in_flight(stack):
    _, repository_id, (app_id,) = watched(stack)
    (taken,) = stack.deps.slots.take([SlotRequest(f"app:{app_id}", 8, 8)], now=stack.clock(), seconds=15)  # elsewhere
    started = stack.clock()

    busy = stack.deliver(app_id, repository_id)
    waited = stack.clock() - started
    stack.deps.slots.give_back(taken)
    free = stack.deliver(app_id, repository_id)

    assert busy.outcome == "continued" and busy.sent == 0
    assert timedelta(seconds=5) <= waited < timedelta(seconds=5.5)  # it kept trying for 5 s
    assert stack.deliveries_requested()[0] == (app_id, repository_id, 2)
    assert free.outcome == "synced" and len(stack.sent) == 6


def test_a_receiver_that_keeps_timing_out_is_probed_by_one_job_and_its_other_watches_ask_again_later_and_later(stack):
    _, repository_id, (app_id,) = watched(stack)
    with stack.deps.store.transaction() as tx:
        for _ in range(4):
            tx.apps.record_receiver_answer(app_id, succeeded=False, timed_out=True, at=stack.clock())
    # Its one slot (8 halved four times) is out with the job probing its receiver from another repository.
    stack.deps.slots.take([SlotRequest(f"app:{app_id}", 1, 1)], now=stack.clock(), seconds=15)
    started = stack.clock()

    busy = stack.deliver(app_id, repository_id)

    assert busy.outcome == "continued" and busy.sent == 0
    assert stack.clock() == started  # no waiting for the slot: the job ends at once
    assert stack.deliveries_requested() == [(app_id, repository_id, 80)]  # 5 s, doubled for each of the 4 timeouts


def test_a_lane_waiting_for_its_apps_slots_starts_as_soon_as_another_job_gives_them_back(stack, monkeypatch):
    _, repository_id, (app_id,) = watched(stack)
    (taken,) = stack.deps.slots.take([SlotRequest(f"app:{app_id}", 8, 8)], now=stack.clock(), seconds=15)
    started, advance = stack.clock(), stack.clock.advance

    def the_other_job_ends_meanwhile(seconds: float) -> None:
        advance(seconds)
        if stack.clock() - started >= timedelta(milliseconds=100):
            stack.deps.slots.give_back(taken)

    monkeypatch.setattr(stack.clock, "advance", the_other_job_ends_meanwhile)
    result = stack.deliver(app_id, repository_id)

    assert result.outcome == "synced" and len(stack.sent) == 6
    assert stack.clock() - started < timedelta(milliseconds=300)  # it tried again 25, 50, 100 ms after


def test_the_slots_of_a_job_that_died_come_back_when_their_lease_lapses(stack):
    _, repository_id, (app_id,) = watched(stack)
    stack.deps.slots.take([SlotRequest(f"app:{app_id}", 8, 8)], now=stack.clock(), seconds=15)  # never given back
    started = stack.clock()

    busy = stack.deliver(app_id, repository_id)  # waits 5 s of the lease's 15
    stack.clock.advance(5)
    free = stack.deliver(app_id, repository_id)  # waits for the rest, then gets them

    assert (busy.outcome, free.outcome) == ("continued", "synced")
    assert stack.clock() - started >= timedelta(seconds=15)


def test_one_app_in_flight_is_the_originals_order_request_after_request(stack):
    repo, repository_id, (app_id,) = watched(stack, {"keep.md": b"k", "gone.md": b"g", "edit.md": b"1"})
    stack.deliver(app_id, repository_id)
    repo.commit({"gone.md": None, "edit.md": b"2", "new.md": b"n", "another.md": b"a"})
    stack.scan(repository_id, at=stack.clock())
    stack.sent.clear()
    stack.one_at_a_time(app_id)

    stack.deliver(app_id, repository_id)

    assert stack.received() == [("delete", "gone.md"), ("create", "another.md"), ("create", "new.md"),
                                ("update", "edit.md")]  # fmt: skip


def test_one_job_serves_each_app_its_own_lane_and_reads_each_content_once(stack):
    _, repository_id, app_ids = watched(stack, apps=3)
    reads = []
    contents = stack.deps.contents
    original = contents.read_each

    def counted(items):
        items = list(items)
        reads.append(len(items))
        return original(items)

    contents.read_each = counted  # type: ignore[method-assign]

    results = stack.deliver_all(repository_id, app_ids)

    assert sorted(result.outcome for result in results) == ["synced"] * 3
    assert len(stack.sent) == 18 and reads == [6]  # six contents read once for three apps
    assert {len(stack.ledger(app_id, repository_id)) for app_id in app_ids} == {6}


def test_a_hanging_receiver_holds_up_another_app_in_its_job_no_longer_than_one_time_slice(stack):
    _, repository_id, (slow, quick) = watched(stack, apps=2)
    stack.one_at_a_time(quick)
    with stack.deps.store.transaction() as tx:  # the slow app's receiver: two requests at once
        tx.apps.update(slow, AppChanges(max_in_flight=2))
    stack.webhooks.script(Answer(None, hangs=True, then=lambda: stack.clock.advance(31)))  # past the 30-s slice

    results = {result.app_id: result for result in stack.deliver_all(repository_id, [slow, quick])}
    handed_over = stack.deliveries_requested()
    stack.sent.clear()
    next_job = stack.deliver(quick, repository_id)

    assert results[slow].outcome == "retrying"
    assert results[quick].outcome == "continued" and (quick, repository_id, 0) in handed_over  # at once
    assert next_job.outcome == "synced" and len(stack.ledger(quick, repository_id)) == 6


def test_a_receiver_that_keeps_timing_out_is_served_by_a_job_of_its_own(stack):
    _, repository_id, (struggling, healthy) = watched(stack, apps=2)
    with stack.deps.store.transaction() as tx:
        tx.apps.record_receiver_answer(struggling, succeeded=False, timed_out=True, at=stack.clock())

    results = {result.app_id: result.outcome for result in stack.deliver_all(repository_id, [struggling, healthy])}
    handed_over = stack.deliveries_requested()
    alone = stack.deliver(struggling, repository_id)

    assert results == {struggling: "continued", healthy: "synced"}
    assert handed_over == [(struggling, repository_id, 0)]
    assert alone.outcome == "synced" and len(stack.ledger(struggling, repository_id)) == 6


def test_a_receiver_that_keeps_timing_out_gets_fewer_requests_and_shorter_timeouts_until_it_answers(stack):
    _, repository_id, (app_id,) = watched(stack)
    stack.webhooks.script(*[Answer(None, hangs=True)] * 12)

    for _ in range(3):
        stack.deliver(app_id, repository_id)
        stack.clock.advance(3600)
    timeouts_before = list(stack.webhooks.timeouts)
    stack.webhooks.timeouts.clear()
    stack.deliver(app_id, repository_id)  # it answers again

    app = stack.store.tables.apps[app_id][0]
    # Its 6 files at once with the whole timeout; then half the requests and half the time after each timed-out job.
    assert timeouts_before == [30.0] * 6 + [15.0] * 4 + [7.5] * 2
    assert stack.webhooks.timeouts == [5.0] * 6  # one at a time, the shortest timeout, in the job where it answers
    assert app.consecutive_timeouts == 0


def test_an_app_whose_receivers_take_nothing_for_five_days_is_paused_until_it_resumes(stack):
    _, repository_id, (app_id,) = watched(stack)
    stack.webhooks.status = 500

    stack.deliver(app_id, repository_id)
    stack.clock.advance(timedelta(days=5).total_seconds())
    last = stack.deliver(app_id, repository_id)

    app = stack.store.tables.apps[app_id][0]
    assert last.outcome == "paused" and app.delivery_state == "paused"
    assert app.paused_reason.startswith("no delivery succeeded since ")
