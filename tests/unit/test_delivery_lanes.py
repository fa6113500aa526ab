"""A lane's rules under concurrency: order per path, deletes before creates, limits, and what one refusal stops."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.deliveries import Change, in_protocol_order
from chalicelib.domain.delivery_lanes import (
    Lane,
    Refusal,
    Stop,
    auto_pause_due,
    busy_receiver_delay,
    receiver_limits,
)
from chalicelib.domain.retry_schedule import Answer

PATHS = st.sampled_from(["a", "a/b", "b", "c.md", "d/e.md", "f"])
CHANGES = st.lists(st.tuples(st.sampled_from(["delete", "create", "update"]), PATHS), min_size=0, max_size=12)


def change(event: str, path: str) -> Change:
    return Change(event, path, b"\x01" * 32, b"\x02" * 32 if event == "update" else None, 1, False)


def run(lane: Lane, pick) -> list[int]:
    """Drive the lane to its end, finishing in-flight changes in the order `pick` chooses; the start order.

    Checks the rules at every step: the limit, one change per path in flight, deletes finished before creates start.
    """
    order: list[int] = []
    deletes = {i for i, c in enumerate(lane.changes) if c.event == "delete"}
    while not lane.finished:
        ready = lane.startable()
        if any(lane.changes[i].event != "delete" for i in ready):
            assert deletes <= lane.delivered
        lane.mark_started(ready)
        order.extend(ready)
        assert len(lane.in_flight) <= lane.limit
        paths = [lane.changes[index].path for index in lane.in_flight]
        assert len(paths) == len(set(paths))
        if lane.in_flight:
            lane.mark_delivered(pick(sorted(lane.in_flight)))
    return order


@settings(max_examples=300, deadline=None)
@given(CHANGES, st.integers(min_value=1, max_value=8), st.randoms(use_true_random=False))
def test_whatever_finishes_first_every_change_starts_in_order_and_deletes_end_before_creates_start(
    changes, limit, randomness
):
    ordered = in_protocol_order([change(event, path) for event, path in changes])
    lane = Lane(ordered, limit)

    order = run(lane, randomness.choice)

    assert order == list(range(len(ordered)))  # everything starts, in protocol order
    assert lane.delivered == set(range(len(ordered)))


@given(CHANGES)
def test_one_in_flight_is_the_originals_strictly_sequential_order(changes):
    ordered = in_protocol_order([change(event, path) for event, path in changes])
    lane = Lane(ordered, limit=1)
    steps = []

    while not lane.finished:
        ready = lane.startable()
        lane.mark_started(ready)
        steps.append(ready)
        lane.mark_delivered(ready[0])

    assert steps == [[index] for index in range(len(ordered))]


def test_no_create_starts_while_a_delete_is_in_flight():
    lane = Lane([change("delete", "a"), change("create", "a/b"), change("create", "c")], limit=8)

    first = lane.startable()
    lane.mark_started(first)
    blocked = lane.startable()
    lane.mark_delivered(0)
    freed = lane.startable()

    assert (first, blocked, freed) == ([0], [], [1, 2])


def test_a_refusal_stops_new_starts_and_lets_the_others_in_flight_finish():
    lane = Lane([change("create", p) for p in "abcdef"], limit=3)
    lane.mark_started(lane.startable())

    lane.mark_refused(Refusal(1, Answer.FAILED, 500, None, "the receiver answered 500", timed_out=False))
    nothing_more = lane.startable()
    lane.mark_delivered(0)
    lane.mark_delivered(2)

    assert nothing_more == []
    assert lane.finished and lane.stop is Stop.REFUSED and lane.delivered == {0, 2}


def test_the_first_reason_to_stop_is_the_one_kept():
    lane = Lane([change("create", "a")], limit=1)

    lane.halt(Stop.PACED)
    lane.halt(Stop.HANDED_OVER)

    assert lane.stop is Stop.PACED


def test_a_receiver_that_keeps_timing_out_gets_fewer_requests_and_shorter_timeouts_until_floors():
    base = timedelta(seconds=30)

    limits = [receiver_limits(8, base, n) for n in range(6)]

    assert [slots for slots, _ in limits] == [8, 4, 2, 1, 1, 1]
    assert [timeout.total_seconds() for _, timeout in limits] == [30, 15, 7.5, 5, 5, 5]
    assert receiver_limits(8, timedelta(seconds=2), 3) == (1, timedelta(seconds=2))  # never above what was set


def test_the_other_watches_of_a_receiver_that_keeps_timing_out_ask_again_later_and_later():
    delays = [busy_receiver_delay(n, timedelta(seconds=5)).total_seconds() for n in (1, 2, 3, 4, 7, 8, 50)]

    assert delays == [10, 20, 40, 80, 640, 900, 900]


def test_an_app_failing_long_enough_is_due_for_a_pause():
    five_days = timedelta(days=5)

    assert not auto_pause_due(None, after=five_days)
    assert not auto_pause_due(timedelta(days=4, hours=23), after=five_days)
    assert auto_pause_due(five_days, after=five_days)
