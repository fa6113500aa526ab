"""The scan and delivery consumers run as Lambda would run them, from the real (moto) queues, and the sweep.

A "container" is one set of adapters (its own Postgres connection, git cache handle and ephemeral folder reuse);
a job killed by an injected fault takes its container with it, and the next job gets a fresh one, as after a
Lambda crash. A job that fails (a service error or a crash) leaves its message in the queue, where it becomes
visible again, as after SQS's visibility timeout; a job that returns deletes it.

Time is a `Clock`: real time plus an offset the test moves forward, so the sweep can find retries and work left
behind without the test waiting for them. Moving it ages the Redis keys (locks, claims, rate buckets) by as much.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from chalicelib import errors
from chalicelib.adapters import redis_client
from chalicelib.adapters.git_dulwich import DulwichGit
from chalicelib.adapters.postgres import PostgresStore
from chalicelib.adapters.redis_locks import RedisLocks
from chalicelib.adapters.redis_rate_limits import RedisRateLimiter
from chalicelib.adapters.redis_slots import RedisSlots
from chalicelib.config import Settings
from chalicelib.messages import DeliveryRequested, ScanRequested
from chalicelib.ports import Deps
from chalicelib.services import delivering, scanning, sweeping
from docora_local.harness.scan_stack import ScanStack

SCAN_QUEUE, DELIVERY_QUEUE = "docora-scan", "docora-delivery"
# Longer than every job in these tests, so a message is never taken twice by accident, only by a failure.
_VISIBILITY_SECONDS = 120
# A crashed job's message comes back after the delivery queue's visibility timeout: the clock moves on by as much.
_REDELIVERED_AFTER_SECONDS = 30


class Clock:
    def __init__(self, redis_url: str) -> None:
        self._offset = timedelta()
        self._redis = redis.Redis.from_url(redis_url)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += timedelta(seconds=seconds)
        by_ms = int(seconds * 1000)
        for key in self._redis.scan_iter("docora:*"):
            ttl = self._redis.pttl(key)
            if 0 <= ttl <= by_ms:
                self._redis.delete(key)
            elif ttl > by_ms:
                self._redis.pexpire(key, ttl - by_ms)

    def close(self) -> None:
        self._redis.close()


class Consumers:
    def __init__(
        self,
        stack: ScanStack,
        clock: Clock,
        *,
        random: Callable[[], float] = lambda: 0.0,
        ephemeral_dir: str | None = None,
        git_timeout: float = 2.0,
    ) -> None:
        """`ephemeral_dir` gives this container a /tmp of its own; by default containers share the stack's."""
        self.stack = stack
        self.clock = clock
        self.random = random
        self.configs = stack.configs
        self.git_timeout = git_timeout
        self._cache_root = ephemeral_dir or stack.settings.ephemeral_dir
        self.deps, self.redis = _container(stack.deps, stack.settings, self._cache_root, git_timeout)
        self.failures: list[str] = []  # one line per job that crashed or raised
        self.outcomes: list[tuple[str, str]] = []  # (kind, outcome) of each job that returned
        self.sweeps = 0

    def close(self) -> None:
        _close(self.deps, self.redis)

    def replace(self, **adapters: Any) -> None:
        """Swap adapters of this container (a dependency pointed elsewhere, or given back)."""
        self.deps = dataclasses.replace(self.deps, **adapters)

    def scan(self, request: ScanRequested) -> scanning.ScanResult:
        return scanning.scan_repository(
            request.repository_id,
            request.requested_at,
            now=self.clock.now(),
            config=self.configs.scanning,
            deps=self.deps,
            refresh=request.refresh,
        )

    def deliver(self, app_id: str, repository_id: str) -> delivering.Delivered:
        (result,) = self.deliver_all(repository_id, [app_id])
        return result

    def deliver_all(self, repository_id: str, app_ids: list[str]) -> list[delivering.Delivered]:
        """What the delivery consumer does with one message: its apps' watches of its repository."""
        return delivering.deliver(
            repository_id,
            app_ids,
            clock=self.clock.now,
            sleep=time.sleep,
            time_left_ms=lambda: 900_000,
            random=self.random,
            config=self.configs.delivering,
            deps=self.deps,
        )

    def request_scan(self, repository_id: str) -> None:
        """What a push webhook does: one scan request, now."""
        self.deps.scan_queue.request_scan(repository_id, self.clock.now())

    def run_once(self, queues: tuple[str, ...] = (SCAN_QUEUE, DELIVERY_QUEUE)) -> int:
        """Take every visible message of these queues once, in this order; how many jobs ran."""
        jobs = 0
        if SCAN_QUEUE in queues:
            for body, handle in self._take(SCAN_QUEUE):
                jobs += 1
                self._run(SCAN_QUEUE, handle, "scan", functools.partial(self.scan, ScanRequested.from_json(body)))
        if DELIVERY_QUEUE in queues:
            for body, handle in self._take(DELIVERY_QUEUE):
                jobs += 1
                request = DeliveryRequested.from_json(body)
                job = functools.partial(self.deliver_all, request.repository_id, list(request.app_ids))
                self._run(DELIVERY_QUEUE, handle, "deliver", job)
        return jobs

    def run(self, *, wait_for_delayed: float = 5.0, max_jobs: int = 2000) -> int:
        """Run jobs until the queues are empty, waiting a little for messages SQS is still holding back."""
        jobs = 0
        deadline = time.monotonic() + wait_for_delayed
        while jobs < max_jobs:
            ran = self.run_once()
            jobs += ran
            if ran:
                deadline = time.monotonic() + wait_for_delayed
            elif not self._held_back() or time.monotonic() > deadline:
                return jobs
            else:
                time.sleep(0.1)
        raise AssertionError(f"still busy after {max_jobs} jobs: {self.outcomes[-10:]}")

    def sweep(self, *, at: datetime | None = None) -> sweeping.SweepReport:
        """One sweep, at `at` or else once rescans and work left behind are due."""
        config = self.configs.sweeping
        if at is None:
            at = self.clock.now() + max(config.stuck_after, config.head_checks.policy.poll_interval)
        self.clock.advance(max(0.0, (at - self.clock.now()).total_seconds()) + 0.001)
        self.sweeps += 1
        return sweeping.sweep(
            clock=self.clock.now, time_left_ms=lambda: 60_000, random=self.random, config=config, deps=self.deps
        )

    def settle(self, *, sweeps: int = 0) -> None:
        """Run what the queues hold, then `sweeps` times: a sweep and what it enqueued."""
        self.run()
        for _ in range(sweeps):
            self.sweep()
            self.run()

    def settle_until_synced(self, *, max_sweeps: int) -> int:
        """Run and sweep until every watch of an active app is synced; how many sweeps it took."""
        self.run()
        for sweeps in range(max_sweeps + 1):
            behind = self.stack.rows(
                "SELECT count(*) FROM watches w JOIN apps a ON a.id = w.app_id"
                " WHERE a.delivery_state = 'active' AND w.status <> 'synced'"
            )
            if behind == [(0,)]:
                return sweeps
            if sweeps < max_sweeps:
                self.sweep()
                self.run()
        states = self.stack.rows(
            "SELECT w.app_id, w.status, w.attempts, w.next_attempt_at, w.last_error FROM watches w"
            " JOIN apps a ON a.id = w.app_id WHERE a.delivery_state = 'active' AND w.status <> 'synced'"
        )
        raise AssertionError(f"watches still behind after {max_sweeps} sweeps: {states} {self.failures[-5:]}")

    def _run(self, queue: str, handle: str, kind: str, job: Callable[[], Any]) -> None:
        try:
            result = job()
        except SystemExit as crash:
            self.failures.append(f"{kind}: crashed ({crash})")
            self.clock.advance(_REDELIVERED_AFTER_SECONDS)
            self._make_visible(queue, handle)
            _close(self.deps, self.redis)
            self.deps, self.redis = _container(self.deps, self.stack.settings, self._cache_root, self.git_timeout)
            return
        except errors.ServiceError as error:
            self.failures.append(f"{kind}: {type(error).__name__}: {error}")
            self._make_visible(queue, handle)
            return
        for each in result if isinstance(result, list) else [result]:  # a delivery job answers for each app
            self.outcomes.append((kind, each.outcome))
        self.stack.sqs.delete_message(QueueUrl=self._url(queue), ReceiptHandle=handle)

    def _take(self, queue: str) -> list[tuple[str, str]]:
        found = self.stack.sqs.receive_message(
            QueueUrl=self._url(queue), MaxNumberOfMessages=10, VisibilityTimeout=_VISIBILITY_SECONDS
        )
        return [(m["Body"], m["ReceiptHandle"]) for m in found.get("Messages", [])]

    def _make_visible(self, queue: str, handle: str) -> None:
        self.stack.sqs.change_message_visibility(QueueUrl=self._url(queue), ReceiptHandle=handle, VisibilityTimeout=0)

    def _held_back(self) -> bool:
        for queue in (SCAN_QUEUE, DELIVERY_QUEUE):
            attributes = self.stack.sqs.get_queue_attributes(
                QueueUrl=self._url(queue), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
            )["Attributes"]
            if int(attributes["ApproximateNumberOfMessagesDelayed"]):
                return True
        return False

    def _url(self, queue: str) -> str:
        return self.stack.sqs.get_queue_url(QueueName=queue)["QueueUrl"]


def _container(base: Deps, settings: Settings, cache_root: str, git_timeout: float) -> tuple[Deps, redis.Redis]:
    """Fresh adapters that hold state per container: connections to Postgres and Redis, the git cache handle."""
    # Named, so a test can find this container's connections on the server and cut them.
    separator = "&" if "?" in settings.redis_url else "?"
    client = redis_client.connect(f"{settings.redis_url}{separator}client_name=docora-{uuid.uuid4().hex[:12]}")
    deps = dataclasses.replace(
        base,
        store=PostgresStore(settings.database_url),
        git=DulwichGit(cache_root, timeout=git_timeout),
        locks=RedisLocks(client),
        rate_limiter=RedisRateLimiter(client),
        slots=RedisSlots(client),
    )
    return deps, client


def _close(deps: Deps, client: redis.Redis) -> None:
    deps.store.close()
    deps.git.close()  # type: ignore[attr-defined]
    client.close()
