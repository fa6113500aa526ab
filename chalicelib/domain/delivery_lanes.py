"""One app's share of a delivery job, its lane: which of its changes may go out now, and what the lane's end means.

The rules (docs/protocol.md §1.5), all decided here and nowhere else:
- changes start in protocol order, at most `limit` in flight at once (the app's `max_in_flight`, fewer while its
  receiver keeps timing out);
- every delete is acknowledged before any create or update starts, since a delete may free a path a create reuses;
- two changes of one path are never in flight together, so a later change of a path never overtakes an earlier one;
- the first refusal, or anything else that stops the lane, stops it starting more; what is in flight finishes.
With a limit of 1 this is the original's strictly sequential delivery, in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from chalicelib.domain.deliveries import Change
from chalicelib.domain.retry_schedule import Answer

# A receiver that keeps timing out gets half the timeout and half the requests in flight with each timeout in a row,
# down to these, until it answers again: a hanging endpoint then holds little of the app's or anyone's capacity.
SHORTEST_TIMEOUT = timedelta(seconds=5)
_MOST_HALVINGS = 8
LONGEST_BUSY_DELAY = timedelta(minutes=15)  # SQS's longest message delay


class Stop(StrEnum):
    """Why a lane starts nothing more (what is in flight still finishes)."""

    REFUSED = "refused"  # the receiver refused a change, or did not answer in time
    PACED = "paced"  # the app's rate limit: the rest goes out once its bucket refills
    HANDED_OVER = "handed_over"  # the job's time slice is over: the rest is the next job's
    BUSY_ELSEWHERE = "busy_elsewhere"  # the app's other jobs kept every slot it has: a later message carries on
    MISSING = "missing"  # a content is gone from the bucket: a refreshing scan restores it
    PAUSED = "paused"  # an operator (or a 410 elsewhere) paused the app meanwhile
    GONE = "gone"  # the watch was deleted meanwhile


@dataclass(frozen=True)
class Refusal:
    index: int  # of the change refused
    answer: Answer
    status_code: int | None
    retry_after: str | None
    error: str
    timed_out: bool


@dataclass
class Lane:
    """The changes one app lacks from one repository, and how far their sending has gone."""

    changes: list[Change]
    limit: int  # requests in flight at once: the slots the lane holds, 0 while it waits for them
    started: int = 0  # changes[:started] have been started
    in_flight: set[int] = field(default_factory=set)
    delivered: set[int] = field(default_factory=set)
    refusal: Refusal | None = None
    stop: Stop | None = None

    def startable(self) -> list[int]:
        """The changes that may start now, in order; none once the lane has stopped."""
        if self.stop is not None:
            return []
        chosen: list[int] = []
        busy_paths = {self.changes[index].path for index in self.in_flight}
        while len(self.in_flight) + len(chosen) < self.limit and self.started + len(chosen) < len(self.changes):
            index = self.started + len(chosen)
            change = self.changes[index]
            if change.event != "delete" and not self._deletes_done(index):
                break
            if change.path in busy_paths:
                break
            busy_paths.add(change.path)
            chosen.append(index)
        return chosen

    def mark_started(self, indices: list[int]) -> None:
        assert indices == list(range(self.started, self.started + len(indices)))  # in order, none skipped
        self.started += len(indices)
        self.in_flight.update(indices)

    def mark_delivered(self, index: int) -> None:
        self.in_flight.discard(index)
        self.delivered.add(index)

    def mark_refused(self, refusal: Refusal) -> None:
        self.in_flight.discard(refusal.index)
        if self.refusal is None:
            self.refusal = refusal
        self.halt(Stop.REFUSED)

    def halt(self, why: Stop) -> None:
        """Start nothing more; the first reason given is the one that counts."""
        if self.stop is None:
            self.stop = why

    @property
    def finished(self) -> bool:
        """Nothing in flight, and nothing more to start."""
        return not self.in_flight and (self.stop is not None or len(self.delivered) == len(self.changes))

    def _deletes_done(self, index: int) -> bool:
        # Deletes come first in protocol order: those before `index` are every delete there is.
        return all(i in self.delivered for i in range(index) if self.changes[i].event == "delete")


def receiver_limits(max_in_flight: int, timeout: timedelta, consecutive_timeouts: int) -> tuple[int, timedelta]:
    """Requests in flight and timeout for a receiver that has timed out `consecutive_timeouts` times in a row."""
    halvings = min(consecutive_timeouts, _MOST_HALVINGS)
    return max(1, max_in_flight >> halvings), max(min(timeout, SHORTEST_TIMEOUT), timeout / 2**halvings)


def busy_receiver_delay(consecutive_timeouts: int, timeout: timedelta) -> timedelta:
    """How long a watch of a receiver that keeps timing out waits, when the app's one slot is taken elsewhere, before
    its next try: a timeout, doubled with each timeout in a row, up to SQS's longest delay. Only one request at a
    time probes such a receiver, so its other watches need not ask again and again: each ask is a job."""
    return min(LONGEST_BUSY_DELAY, max(timeout, SHORTEST_TIMEOUT) * 2 ** min(consecutive_timeouts, _MOST_HALVINGS))


def auto_pause_due(failing_for: timedelta | None, *, after: timedelta) -> bool:
    """An app whose receivers have taken nothing for this long is paused until it, or an operator, resumes it."""
    return failing_for is not None and failing_for >= after
