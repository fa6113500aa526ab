"""Delivering: send each app what its ledger lacks of one repository, several requests in flight; record every answer.

One job serves the apps of one repository that one message names (a scan's fan-out names up to 50). Each app gets a
lane (domain.delivery_lanes decides what may start); the job's main thread starts transfers on the sender threads,
acknowledges each change as its 2xx comes back, and ends each lane as soon as it is done:

- a watch is reconciled under its own lock, released when its lane ends, so a new job for the repository can serve
  that app again while this one is still busy with another;
- an app's requests in flight, over all jobs, are held to its `max_in_flight` by slots leased in Redis (fewer while
  its receiver keeps timing out): a hanging receiver holds little capacity, and never another app's;
- a job gives way after its time slice, handing what is left to a new message: a 20,000-file first sync does not
  keep small jobs waiting;
- every acknowledged change is written to the ledger right after its 2xx, so a job killed anywhere re-sends only the
  changes that were in flight, under the same delivery ids.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from chalicelib import errors
from chalicelib.domain import deliveries, delivery_lanes, retry_schedule, webhooks
from chalicelib.domain.apps import App, PausedBy
from chalicelib.domain.deliveries import Attempt, Change
from chalicelib.domain.delivery_lanes import Lane, Refusal, Stop
from chalicelib.domain.repositories import Repository, Watch
from chalicelib.domain.retry_schedule import Answer
from chalicelib.ports import Deps, SlotLease, SlotRequest
from chalicelib.services import transfers
from chalicelib.services.content_window import ContentWindow
from chalicelib.services.transfers import Sender, Sent

logger = logging.getLogger(__name__)

ATTEMPTS_KEPT_PER_WATCH = 500
# Stop this long before the Lambda's end, so the job can record where it stopped and hand over.
_MARGIN_MS = 35_000
# Rate-limit tokens are taken this many at a time: one Redis call per block, not per file. Those a job stops before
# using are not given back, so the app may go a little under its rate, never over it.
_TOKENS_PER_TAKE = 32
# A lane whose app's slots are all taken by its other jobs tries again soon, more slowly each time, for so long;
# then a message carries it on this much later.
_SLOTS_FIRST_RETRY = timedelta(milliseconds=25)
_SLOTS_LONGEST_RETRY = timedelta(milliseconds=250)
_SLOTS_WAIT = timedelta(seconds=5)
_SLOTS_BUSY_SECONDS = 2
# A lane's slots are leased for this long and renewed while it runs: a job that dies gives them back by itself
# before its message comes back (the queue's visibility timeout, 30 s).
_SLOT_LEASE = timedelta(seconds=15)
_LEASE_SECONDS = int(_SLOT_LEASE.total_seconds())
# Past this much of contents read ahead and not yet sent (a lane far behind the others), the lane furthest behind
# hands its rest to a job of its own.
_WINDOW_BUDGET_BYTES = 64 * 1024 * 1024


class Outcome(StrEnum):
    SYNCED = "synced"  # the app holds the whole snapshot
    WAITING = "waiting"  # nothing to send yet (no snapshot), or a content is being restored
    BUSY = "busy"  # another job holds the watch; it runs once more afterwards
    GONE = "gone"  # the watch or the app is gone
    PAUSED = "paused"  # the app is paused (an operator, a 410, or no success for AUTO_PAUSE_AFTER_MS)
    CONTINUED = "continued"  # the time slice is over, or the app's slots are taken: a new message carries on
    PACED = "paced"  # the app's rate limit: a delayed message carries on
    RETRYING = "retrying"  # refused: tried again after a backoff
    FAILED = "failed"  # out of attempts: tried again after a long wait, or at the next change


@dataclass(frozen=True)
class DeliveryConfig:
    rate_limit_per_minute: int = 6000
    webhook_timeout: timedelta = timedelta(seconds=30)
    sync_failed_timeout: timedelta = timedelta(seconds=10)
    chunk_threshold_bytes: int = 1_048_576
    chunk_size_chars: int = 524_288
    max_retry_attempts: int = 5
    retry_base_delay_ms: int = 1000
    circuit_breaker_threshold: int = 5
    time_slice: timedelta = timedelta(seconds=30)
    auto_pause_after: timedelta = timedelta(days=5)
    threads: int = 32  # DELIVERY_THREADS: the job's sender threads


@dataclass(frozen=True)
class Delivered:
    app_id: str
    outcome: Outcome
    sent: int = 0


def deliver_watch(
    app_id: str,
    repository_id: str,
    *,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    time_left_ms: Callable[[], int],
    random: Callable[[], float],
    config: DeliveryConfig,
    deps: Deps,
) -> Delivered:
    """Reconcile one watch: `deliver` for one app."""
    (result,) = deliver(
        repository_id,
        [app_id],
        clock=clock,
        sleep=sleep,
        time_left_ms=time_left_ms,
        random=random,
        config=config,
        deps=deps,
    )
    return result


def deliver(
    repository_id: str,
    app_ids: list[str],
    *,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    time_left_ms: Callable[[], int],
    random: Callable[[], float],
    config: DeliveryConfig,
    deps: Deps,
) -> list[Delivered]:
    """Reconcile these apps' watches of the repository. A watch whose lock is taken gets one more run afterwards: the
    request leaves word first and tries the lock second, and the holder reads the word after letting go."""
    started = clock()
    names = {app_id: f"deliver:{app_id}:{repository_id}" for app_id in dict.fromkeys(app_ids)}
    for name in names.values():
        deps.locks.ask_again(name, started)
    with deps.locks.hold_each(list(names.values())) as locks:
        busy = [Delivered(app_id, Outcome.BUSY) for app_id, name in names.items() if name not in locks.held]
        held = [app_id for app_id, name in names.items() if name in locks.held]
        job = _Job(repository_id, clock, sleep, time_left_ms, random, config, deps, release=locks.release)
        results = job.run(held) if held else []
    again = [
        (result.app_id, repository_id)
        for result in results
        if result.outcome in (Outcome.SYNCED, Outcome.GONE)
        and deps.locks.asked_again_since(names[result.app_id], started) is not None
    ]
    deps.delivery_queue.request_deliveries(again)
    return busy + results


@dataclass
class _AppLane:
    """One app's lane in this job, with what sending and ending it needs."""

    app: App
    watch: Watch
    lane: Lane
    sender: Sender
    lock: str
    slots_wanted: SlotRequest
    waiting_since: datetime | None = None  # since its first try for slots found them all taken
    slots: SlotLease | None = None
    slots_renewed_at: datetime | None = None
    next_slots_try: datetime | None = None
    slots_retry: timedelta = _SLOTS_FIRST_RETRY
    tokens: int = 0
    pace_seconds: int = 0
    notice: tuple[bytes, str] | None = None  # a sync_failed owed: its body and delivery id, sent before any file
    notice_done: bool = True
    missing: Change | None = None
    logged: list[Attempt] = field(default_factory=list)  # refusals and notices, written when the lane ends


class _Job:
    def __init__(
        self,
        repository_id: str,
        clock: Callable[[], datetime],
        sleep: Callable[[float], None],
        time_left_ms: Callable[[], int],
        random: Callable[[], float],
        config: DeliveryConfig,
        deps: Deps,
        *,
        release: Callable[[str], None],
    ) -> None:
        self.repository_id, self.clock, self.sleep = repository_id, clock, sleep
        self.time_left_ms, self.random = time_left_ms, random
        self.config, self.deps, self.release = config, deps, release
        self.ends_at = clock() + config.time_slice
        self.results: list[Delivered] = []
        self.requeue: list[tuple[str, str, int]] = []  # (app, repository, delay in seconds)
        self.last_acknowledged: _AppLane | None = None  # the lane whose acknowledgement's answer is still unread
        self.commit: str | None = None  # the snapshot's; None before the first scan
        self.leased: list[SlotLease] = []  # slots taken and not yet given back

    def run(self, app_ids: list[str]) -> list[Delivered]:
        try:
            lanes = self._open(app_ids)
            if lanes:
                self._send(lanes)
        finally:
            # A job that fails gives its slots back at once; one that is killed leaves them to lapse.
            with contextlib.suppress(errors.Unavailable):
                for lease in self.leased:
                    self.deps.slots.give_back(lease)
        for app_id, repository_id, delay in self.requeue:
            self.deps.delivery_queue.request_delivery(app_id, repository_id, delay_seconds=delay)
        return self.results

    def _open(self, app_ids: list[str]) -> list[_AppLane]:
        deps, repository_id = self.deps, self.repository_id
        with deps.store.transaction() as tx:
            repository, commit = tx.repositories.get(repository_id), tx.snapshots.commit(repository_id)
            self.commit = commit
            apps, watches = tx.apps.get_many(app_ids), tx.watches.get_many(repository_id, app_ids)
            owed = {app_id: tx.watches.take_sync_failed(app_id, repository_id) for app_id in app_ids}
            pending = {app_id: tx.deliveries.pending(app_id, repository_id) for app_id in app_ids}
            for app_id in app_ids:
                if pending[app_id] and app_id in watches and _active(apps.get(app_id)):
                    tx.watches.start_sync(app_id, repository_id)
                elif not pending[app_id] and commit is not None and app_id in watches:
                    tx.watches.finish_sync(app_id, repository_id, commit=commit, at=self.clock())
        lanes = []
        for app_id in app_ids:
            app, watch = apps.get(app_id), watches.get(app_id)
            if app is None or watch is None or repository is None:
                self._end(app_id, Outcome.GONE)
            elif not _active(app):
                self._end(app_id, Outcome.PAUSED)
            elif not pending[app_id] and owed[app_id] is None:
                self._end(app_id, Outcome.SYNCED if commit is not None else Outcome.WAITING)
            elif app.consecutive_timeouts and len(app_ids) > 1:
                # A receiver that keeps timing out is served by a job of its own, the only one it can hold up.
                self._end(app_id, Outcome.CONTINUED, delay=0, lock=f"deliver:{app_id}:{repository_id}")
            else:
                lanes.append(self._lane(app, watch, repository, commit or "", pending[app_id], owed[app_id]))
        return lanes

    def _lane(
        self,
        app: App,
        watch: Watch,
        repository: Repository,
        commit: str,
        changes: list[Change],
        owed: datetime | None,
    ) -> _AppLane:
        limit, timeout = delivery_lanes.receiver_limits(
            app.max_in_flight, self.config.webhook_timeout, app.consecutive_timeouts
        )
        previous = app.previous_key_until(self.clock())
        sender = Sender(
            app=app,
            repository=repository,
            commit=commit,
            key=self.deps.cipher.decrypt(app.client_auth_key_encrypted),
            previous_key=self.deps.cipher.decrypt(previous) if previous is not None else None,
            attempt=watch.attempts + 1,
            timeout=timeout,
            chunk_threshold_bytes=self.config.chunk_threshold_bytes,
            chunk_size_chars=self.config.chunk_size_chars,
            clock=self.clock,
            deps=self.deps,
        )
        lock = f"deliver:{app.id}:{repository.id}"
        # Only as many slots as the lane can use: the app's other jobs share the rest. None until they are taken.
        wanted = SlotRequest(f"app:{app.id}", want=min(limit, max(1, len(changes))), limit=limit)
        lane = _AppLane(app, watch, Lane(changes, 0), sender, lock, wanted)
        if owed is not None and repository.circuit_open_until is not None:
            lane.notice, lane.notice_done = self._notice_body(repository, app.id, owed), False
        return lane

    def _notice_body(self, repository: Repository, app_id: str, opened_at: datetime) -> tuple[bytes, str]:
        ref = webhooks.RepositoryRef(repository.id, repository.github_url, repository.owner, repository.name)
        body = webhooks.sync_failed_body(
            ref,
            repository.last_error or "the repository could not be read",
            repository.consecutive_failures,
            self.config.circuit_breaker_threshold,
            repository.circuit_open_until,
            repository.consecutive_failures,
            self.clock(),
        )
        return body, webhooks.delivery_id(app_id, repository.id, "", opened_at.isoformat(), "sync_failed")

    def _send(self, lanes: list[_AppLane]) -> None:
        threshold = self.config.chunk_threshold_bytes
        # In the order the lanes will reach them: each lane goes in protocol order, and they go about together.
        ahead = sorted(
            (deliveries.protocol_order_key(change), transfers.stored(change))
            for lane in lanes
            for change in lane.lane.changes
            if transfers.reads_ahead(change, threshold)
        )
        running: dict[Future[Sent], tuple[_AppLane, int | None]] = {}
        with ContentWindow(self.deps.contents, [item for _, item in ahead]) as window:
            open_lanes = list(lanes)
            while open_lanes:
                self._take_slots(open_lanes)
                for lane in open_lanes:
                    self._start(lane, window, running)
                self._keep_within(window, open_lanes)
                self._renew_slots(open_lanes)
                # Woken in time to renew the slots' leases (even while every request hangs) and to try for slots.
                timeout = min(self._seconds_left(), (_SLOT_LEASE / 3).total_seconds(), self._next_slots_try(open_lanes))
                if running:
                    done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
                    for future in done:
                        lane, index = running.pop(future)
                        self._finished(lane, index, future.result())
                elif any(lane.slots is None and lane.lane.stop is None for lane in open_lanes):
                    self.sleep(timeout)  # nothing in flight, and lanes waiting for their app's slots
                if self._out_of_time():
                    for lane in open_lanes:
                        lane.lane.halt(Stop.HANDED_OVER)
                for lane in [lane for lane in open_lanes if lane.notice_done and lane.lane.finished]:
                    open_lanes.remove(lane)
                    self._close(lane, window)

    def _start(
        self, lane: _AppLane, window: ContentWindow, running: dict[Future[Sent], tuple[_AppLane, int | None]]
    ) -> None:
        if lane.notice is not None and not lane.notice_done:
            if not any(owner is lane for owner, _ in running.values()):
                body, delivery_id = lane.notice
                future = self.deps.workers.submit(transfers.notice, lane.sender, body, delivery_id,
                                                  self.config.sync_failed_timeout)  # fmt: skip
                running[future] = (lane, None)
            return
        for index in lane.lane.startable():
            if self._out_of_time():
                lane.lane.halt(Stop.HANDED_OVER)
                return
            if lane.tokens == 0 and not self._take_tokens(lane):
                return
            change = lane.lane.changes[index]
            content = None
            if transfers.reads_ahead(change, self.config.chunk_threshold_bytes):
                content = window.take(transfers.stored(change))
                if content is None:
                    lane.missing = change
                    lane.lane.halt(Stop.MISSING)
                    return
            lane.tokens -= 1
            lane.lane.mark_started([index])
            running[self.deps.workers.submit(transfers.transfer, lane.sender, change, content)] = (lane, index)

    def _take_tokens(self, lane: _AppLane) -> bool:
        remaining = len(lane.lane.changes) - lane.lane.started
        taken, wait_seconds = self.deps.rate_limiter.acquire_many(
            f"deliver:{lane.app.id}", self.config.rate_limit_per_minute, up_to=min(_TOKENS_PER_TAKE, remaining)
        )
        if wait_seconds is not None:
            lane.pace_seconds = wait_seconds
            lane.lane.halt(Stop.PACED)
            return False
        lane.tokens = taken
        return True

    def _finished(self, lane: _AppLane, index: int | None, sent: Sent) -> None:
        if index is None:  # the sync_failed notice: best effort, once per opening, never retried
            lane.notice_done = True
            lane.logged.append(sent.attempt)
            return
        if sent.missing:
            lane.missing = lane.lane.changes[index]
            lane.lane.in_flight.discard(index)
            lane.lane.halt(Stop.MISSING)
        elif sent.answer is Answer.DELIVERED:
            lane.lane.mark_delivered(index)
            self._acknowledge(lane, lane.lane.changes[index], sent.attempt)
        else:
            timed_out = sent.result.status_code is None and "timed out" in (sent.result.error or "")
            refusal = Refusal(index, sent.answer, sent.result.status_code, sent.result.retry_after,
                              transfers.describe(sent.result), timed_out)  # fmt: skip
            lane.lane.mark_refused(refusal)
            lane.logged.append(sent.attempt)

    def _acknowledge(self, lane: _AppLane, change: Change, attempt: Attempt) -> None:
        """Log the attempt and write the ledger row, sent at once; the answer is read after the next one is sent.

        The database writes the row while the next file goes out. The answer says whether the app was still active
        then: an app paused meanwhile (or a watch deleted) may get one file more per request in flight.
        """
        previous = self.last_acknowledged
        try:
            active = self.deps.store.acknowledge(lane.app.id, self.repository_id, change, attempt)
        except errors.NotFound:
            if previous is not None:
                previous.lane.halt(Stop.GONE)
            active = True
        self.last_acknowledged = lane
        if previous is not None and not active:
            previous.lane.halt(Stop.PAUSED)

    def _settle(self) -> None:
        """Read the answer to the last acknowledgement before anything else is written."""
        previous, self.last_acknowledged = self.last_acknowledged, None
        try:
            active = self.deps.store.settle()
        except errors.NotFound:
            if previous is not None:
                previous.lane.halt(Stop.GONE)
            return
        if previous is not None and not active:
            previous.lane.halt(Stop.PAUSED)

    def _take_slots(self, open_lanes: list[_AppLane]) -> None:
        """Slots for the lanes waiting for them, in one round trip. The job holds no more than its sender threads can
        use, leaving the rest to the apps' other jobs; a lane that found its app's slots taken for too long hands
        over to a later message."""
        now, budget = self.clock(), self._slots_budget(open_lanes)
        due = []
        for lane in open_lanes:
            if lane.slots is not None or lane.lane.stop is not None or (lane.next_slots_try or now) > now:
                continue
            if lane.waiting_since is not None and now - lane.waiting_since >= _SLOTS_WAIT:
                lane.lane.halt(Stop.BUSY_ELSEWHERE)
            elif lane.slots_wanted.want <= budget or (not due and budget == self.config.threads):
                due.append(lane)
                budget -= lane.slots_wanted.want
        if not due:
            return
        leases = self.deps.slots.take([lane.slots_wanted for lane in due], now=now, seconds=_LEASE_SECONDS)
        for lane, lease in zip(due, leases, strict=True):
            if lease.granted:
                self.leased.append(lease)
                lane.slots, lane.slots_renewed_at, lane.lane.limit = lease, now, lease.granted
            elif lane.app.consecutive_timeouts:
                lane.lane.halt(Stop.BUSY_ELSEWHERE)  # a receiver that keeps hanging is not worth waiting for here
            else:
                lane.waiting_since = lane.waiting_since or now
                lane.next_slots_try = now + lane.slots_retry
                lane.slots_retry = min(lane.slots_retry * 2, _SLOTS_LONGEST_RETRY)

    def _slots_budget(self, open_lanes: list[_AppLane]) -> int:
        return self.config.threads - sum(lane.lane.limit for lane in open_lanes if lane.slots is not None)

    def _next_slots_try(self, open_lanes: list[_AppLane]) -> float:
        """Seconds until a waiting lane tries for slots again: at once for one that has not tried yet, if the job has
        threads to spare; otherwise a long while (a lane that ends wakes the loop anyway)."""
        now, spare = self.clock(), self._slots_budget(open_lanes) > 0
        tries = [
            lane.next_slots_try or now
            for lane in open_lanes
            if lane.slots is None and lane.lane.stop is None and (lane.next_slots_try is not None or spare)
        ]
        return max(0.0, min((at - now).total_seconds() for at in tries)) if tries else 3600.0

    def _renew_slots(self, open_lanes: list[_AppLane]) -> None:
        now = self.clock()
        due = [
            lane
            for lane in open_lanes
            if lane.slots is not None
            and lane.slots_renewed_at is not None
            and now - lane.slots_renewed_at >= _SLOT_LEASE / 3
        ]
        if due:
            self.deps.slots.renew([lane.slots for lane in due if lane.slots], now=now, seconds=_LEASE_SECONDS)
            for lane in due:
                lane.slots_renewed_at = now

    def _keep_within(self, window: ContentWindow, open_lanes: list[_AppLane]) -> None:
        """Too much read ahead means one lane is far behind the rest: it carries on in a job of its own."""
        if window.bytes_held > _WINDOW_BUDGET_BYTES and len(open_lanes) > 1:
            slowest = min(open_lanes, key=lambda lane: lane.lane.started)
            slowest.lane.halt(Stop.HANDED_OVER)

    def _close(self, lane: _AppLane, window: ContentWindow) -> None:
        """Record how the lane ended, give back its slots and its lock; its app may be served by another job now."""
        threshold = self.config.chunk_threshold_bytes
        for change in lane.lane.changes[lane.lane.started :]:
            if transfers.reads_ahead(change, threshold):
                window.give_up(transfers.stored(change))
        self._settle()
        outcome, delay = self._record(lane)
        if lane.slots is not None:
            self.deps.slots.give_back(lane.slots)
            self.leased.remove(lane.slots)
        self._end(lane.app.id, outcome, delay=delay, lock=lane.lock, sent=len(lane.lane.delivered))

    def _record(self, lane: _AppLane) -> tuple[Outcome, int | None]:
        deps, app_id, repository_id, now = self.deps, lane.app.id, self.repository_id, self.clock()
        stop, sent = lane.lane.stop, len(lane.lane.delivered)
        with deps.store.transaction() as tx:
            for attempt in lane.logged:
                try:
                    tx.deliveries.log_attempt(app_id, repository_id, attempt)
                except errors.NotFound:
                    return Outcome.GONE, None  # the watch went away mid-job; its log went with it
            if sent:
                tx.apps.record_receiver_answer(app_id, succeeded=True, timed_out=False, at=now)
            if lane.lane.refusal is not None:  # whatever else stopped the lane, the receiver's answer decides
                return self._refused(tx, lane, lane.lane.refusal, now=now)
            if stop is None and self.commit is None:
                return Outcome.WAITING, None  # only a sync_failed notice went out: there is no snapshot yet
            if stop is None:
                tx.watches.finish_sync(app_id, repository_id, commit=self.commit, at=now)
                tx.deliveries.trim_attempts(app_id, repository_id, keep=ATTEMPTS_KEPT_PER_WATCH)
                return Outcome.SYNCED, None
            if stop is Stop.MISSING and lane.missing is not None:
                return self._content_missing(tx, lane, lane.missing), None
        if stop is Stop.PACED:
            return Outcome.PACED, lane.pace_seconds
        if stop is Stop.BUSY_ELSEWHERE and lane.app.consecutive_timeouts:
            delay = delivery_lanes.busy_receiver_delay(lane.app.consecutive_timeouts, lane.sender.timeout)
            return Outcome.CONTINUED, int(delay.total_seconds())
        return _STOPPED[stop]

    def _refused(self, tx, lane: _AppLane, refusal: Refusal, *, now: datetime) -> tuple[Outcome, int | None]:  # type: ignore[no-untyped-def]
        app_id, repository_id = lane.app.id, self.repository_id
        failing_since = tx.apps.record_receiver_answer(app_id, succeeded=False, timed_out=refusal.timed_out, at=now)
        if refusal.answer is Answer.GONE:
            tx.apps.pause(app_id, reason="the receiver answered 410 Gone", by=PausedBy.RECEIVER)
            tx.watches.record_delivery_failure(app_id, repository_id, retry=_unchanged(lane.watch), error=refusal.error)
            return Outcome.PAUSED, None
        retry_after = None
        if refusal.answer is Answer.THROTTLED:
            retry_after = retry_schedule.retry_after_seconds(refusal.retry_after, now)
        retry = deliveries.plan_retry(
            # Attempts count failures in a row: a job that got files through before failing starts the count afresh,
            # so a receiver that fails now and then keeps syncing, and only one that takes nothing ends up `failed`.
            0 if lane.lane.delivered else lane.watch.attempts,
            now=now,
            retry_after=retry_after,
            max_attempts=self.config.max_retry_attempts,
            base_delay_ms=self.config.retry_base_delay_ms,
            random=self.random,
        )
        tx.watches.record_delivery_failure(app_id, repository_id, retry=retry, error=refusal.error)
        failing_for = now - failing_since if failing_since is not None else None
        if delivery_lanes.auto_pause_due(failing_for, after=self.config.auto_pause_after):
            reason = f"no delivery succeeded since {webhooks.format_timestamp(failing_since)}"
            tx.apps.pause(app_id, reason=reason, by=PausedBy.RECEIVER)
            return Outcome.PAUSED, None
        if retry.failed:
            return Outcome.FAILED, None
        # A wait beyond SQS's 15-minute delay stays in next_attempt_at, where the sweep finds it.
        delay = retry.delay_seconds
        return Outcome.RETRYING, delay if delay is not None and delay <= deliveries.SQS_MAX_DELAY_SECONDS else None

    def _content_missing(self, tx, lane: _AppLane, change: Change) -> Outcome:  # type: ignore[no-untyped-def]
        """The bucket lost the content (expired, deleted): a refreshing scan uploads it again and fans out."""
        logger.warning("content missing", extra={"repository_id": self.repository_id, "sha256": change.sha256.hex()})
        tx.watches.record_delivery_failure(lane.app.id, self.repository_id, retry=_unchanged(lane.watch),
                                           error="file content is missing; a rescan was requested")  # fmt: skip
        self.deps.scan_queue.request_scan(self.repository_id, self.clock(), refresh=True)
        return Outcome.WAITING

    def _end(
        self, app_id: str, outcome: Outcome, *, delay: int | None = None, lock: str | None = None, sent: int = 0
    ) -> None:
        if lock is not None:
            self.release(lock)
        if delay is not None:
            self.requeue.append((app_id, self.repository_id, delay))
        self.results.append(Delivered(app_id, outcome, sent))

    def _out_of_time(self) -> bool:
        return self.clock() >= self.ends_at or self.time_left_ms() < _MARGIN_MS

    def _seconds_left(self) -> float:
        return max(0.05, min((self.ends_at - self.clock()).total_seconds(), (self.time_left_ms() - _MARGIN_MS) / 1000))


# How a lane that stopped for these reasons ends, and after how many seconds a new message carries on (None: none).
_STOPPED: dict[Stop, tuple[Outcome, int | None]] = {
    Stop.HANDED_OVER: (Outcome.CONTINUED, 0),
    # Until one is likely free: soon for a busy receiver (later and later for one that keeps hanging).
    Stop.BUSY_ELSEWHERE: (Outcome.CONTINUED, _SLOTS_BUSY_SECONDS),
    Stop.PAUSED: (Outcome.PAUSED, None),
    Stop.GONE: (Outcome.GONE, None),
    Stop.REFUSED: (Outcome.RETRYING, None),  # only without a refusal recorded, which cannot be
    Stop.MISSING: (Outcome.WAITING, None),  # likewise
}


def _active(app: App | None) -> bool:
    return app is not None and app.delivery_state == "active"


def _unchanged(watch: Watch) -> deliveries.Retry:
    return deliveries.Retry(watch.attempts, failed=False, delay_seconds=None, next_attempt_at=None)
