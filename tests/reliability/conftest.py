"""Reliability fixtures: the real stack, receivers that mirror what they acknowledge, consumers on a movable clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import psycopg
import pytest
import redis
from psycopg import sql

from docora_local.harness.consumers import Clock, Consumers
from docora_local.harness.mirror import MirrorReceiver
from docora_local.harness.scan_stack import ScanStack, scan_stack

# Small chunks, so a binary file of a few KB goes out in several slices; short timeouts, so faults are quick.
SETTINGS = {
    "binary_chunk_threshold_bytes": 1024,
    "binary_chunk_size_bytes": 512,
    "webhook_timeout_ms": 1000,
    "retry_base_delay_ms": 100,
}


@pytest.fixture
def stack(tmp_path, database_url, redis_url, monkeypatch) -> Iterator[ScanStack]:
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, **SETTINGS) as built:
        yield built


@pytest.fixture
def clock(redis_url) -> Iterator[Clock]:
    moving = Clock(redis_url)
    yield moving
    moving.close()


@pytest.fixture
def consumers(stack, clock) -> Iterator[Consumers]:
    running = Consumers(stack, clock)
    yield running
    running.close()


@pytest.fixture
def receivers() -> Iterator[Callable[..., MirrorReceiver]]:
    """Start as many mirror receivers as a test wants; all are stopped at its end."""
    with ExitStack() as started:

        def start(**options) -> MirrorReceiver:
            receiver = MirrorReceiver(**options).start()
            started.callback(receiver.stop)
            return receiver

        yield start


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory, admin_database_url, template_database) -> Iterator[tuple[ScanStack, Clock]]:
    """One stack for a whole module, for cases that each bring their own change and leave everything synced."""
    redis_url = os.environ.get("TEST_REDIS_URL") or pytest.fail("TEST_REDIS_URL is not set; `make test` sets it")
    name = f"docora_test_{uuid.uuid4().hex[:8]}"
    _execute(
        admin_database_url,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(*map(sql.Identifier, (name, template_database))),
    )
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    try:
        database_url = psycopg.conninfo.make_conninfo(admin_database_url, dbname=name)
        with (
            pytest.MonkeyPatch.context() as monkeypatch,
            scan_stack(tmp_path_factory.mktemp("stack"), database_url, redis_url, monkeypatch, **SETTINGS) as stack,
        ):
            clock = Clock(redis_url)
            yield stack, clock
            clock.close()
    finally:
        _execute(admin_database_url, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _execute(url: str, statement: sql.Composable) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)
