"""Faults injected into our own adapters at a chosen step: the Lambda dying there, or a dependency going away."""

from __future__ import annotations

import dataclasses
import functools
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import redis

from chalicelib.adapters.postgres_snapshots import PostgresSnapshots


class Crash(SystemExit):
    """The runtime killed mid-job: not an Exception, so no handler of ours (or Powertools') catches it."""


def crash_on(
    monkeypatch: pytest.MonkeyPatch, owner: type, name: str, *, call: int = 1, after: bool = False
) -> list[int]:
    """Kill the job at the `call`-th call of `owner.name`, before it runs (or just after it returned)."""
    return on_call(monkeypatch, owner, name, _raise_crash(f"{owner.__name__}.{name}"), call=call, after=after)


def on_call(
    monkeypatch: pytest.MonkeyPatch,
    owner: type,
    name: str,
    fault: Callable[[], None],
    *,
    call: int = 1,
    after: bool = False,
) -> list[int]:
    """Run `fault` at the `call`-th call of `owner.name`, before or after it; the returned list counts calls."""
    original = getattr(owner, name)
    calls: list[int] = []
    counting = threading.Lock()  # a delivery job calls its senders from several threads

    @functools.wraps(original)
    def faulty(self: Any, *args: Any, **kwargs: Any) -> Any:
        with counting:
            calls.append(1)
            number = len(calls)
        if number == call and not after:
            fault()
        result = original(self, *args, **kwargs)
        if number == call and after:
            fault()
        return result

    monkeypatch.setattr(owner, name, faulty)
    return calls


def fault_mid_copy(monkeypatch: pytest.MonkeyPatch, fault: Callable[[], None] | None = None) -> list[int]:
    """Run `fault` (by default, a crash) halfway through the COPY of the next snapshot's rows."""
    original = PostgresSnapshots.apply
    fault = fault or _raise_crash("the COPY of snapshot_files")
    calls: list[int] = []

    def apply(self: PostgresSnapshots, repository_id: str, *, delta: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            delta = dataclasses.replace(delta, written=_Halfway(delta.written, fault))
        original(self, repository_id, delta=delta, **kwargs)

    monkeypatch.setattr(PostgresSnapshots, "apply", apply)
    return calls


def terminate_backends(database_url: str) -> int:
    """Kill, from another connection, every other session on this test's database (a Postgres restart for it)."""
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return len(rows)


def restart_redis(redis_url: str, *clients: redis.Redis) -> None:
    """What a Redis restart without persistence does to these clients: every key gone, every connection cut."""
    names = {client.get_connection_kwargs().get("client_name") for client in clients}
    with redis.Redis.from_url(redis_url) as admin:
        admin.flushdb()
        for entry in admin.client_list():
            if entry.get("name") in names:
                admin.client_kill_filter(_id=entry["id"])


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Halfway(list):
    def __init__(self, items: list[Any], fault: Callable[[], None]) -> None:
        super().__init__(items)
        self._fault = fault

    def __iter__(self) -> Iterator[Any]:
        half = len(self) // 2
        for index, item in enumerate(super().__iter__()):
            if index == half:
                self._fault()
            yield item


def _raise_crash(where: str) -> Callable[[], None]:
    def crash() -> None:
        raise Crash(f"killed at {where}")

    return crash
