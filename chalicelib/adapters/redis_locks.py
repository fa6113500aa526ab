"""Locks in Redis with an owner token, renewed while held and released only by their owner."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import redis

from chalicelib.adapters.redis_client import translated

_LOCK_PREFIX = "docora:lock:"
_ASKED_PREFIX = "docora:asked:"
_CLAIM_PREFIX = "docora:claim:"
# Only the owner may extend or delete: a holder that paused past its TTL must not free a lock
# that someone else has taken since.
_RENEW_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_SET_IF_LATER = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return 0
"""
_ASKED_TTL_SECONDS = 24 * 3600


class RedisLocks:
    def __init__(self, client: redis.Redis, *, ttl_seconds: float = 60.0) -> None:
        """`ttl_seconds` is how long a lock outlives a holder that died; holders renew at a third of it."""
        self._client = client
        self._ttl_ms = int(ttl_seconds * 1000)
        self._renew = client.register_script(_RENEW_IF_OWNER)
        self._release = client.register_script(_RELEASE_IF_OWNER)
        self._set_if_later = client.register_script(_SET_IF_LATER)

    @contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        key, token = _LOCK_PREFIX + name, secrets.token_hex(16)
        with translated():
            acquired = bool(self._client.set(key, token, nx=True, px=self._ttl_ms))
        if not acquired:
            yield False
            return
        stop = threading.Event()
        renewer = threading.Thread(target=self._keep_renewing, args=(key, token, stop), daemon=True)
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join()
            with translated():
                self._release(keys=[key], args=[token])

    @contextmanager
    def hold_each(self, names: list[str]) -> Iterator[_HeldLocks]:
        token = secrets.token_hex(16)
        keys = [_LOCK_PREFIX + name for name in names]
        with translated():
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, token, nx=True, px=self._ttl_ms)
            taken = pipe.execute()
        held = _HeldLocks(self, token, {name: key for name, key, won in zip(names, keys, taken, strict=True) if won})
        stop = threading.Event()
        renewer = threading.Thread(target=self._keep_renewing_each, args=(held, stop), daemon=True)
        renewer.start()
        try:
            yield held
        finally:
            stop.set()
            renewer.join()
            for name in list(held.held):
                held.release(name)

    def claim(self, name: str, *, seconds: int) -> bool:
        with translated():
            return bool(self._client.set(_CLAIM_PREFIX + name, "1", nx=True, ex=seconds))

    def ask_again(self, name: str, requested_at: datetime) -> None:
        with translated():
            self._set_if_later(keys=[_ASKED_PREFIX + name], args=[_micros(requested_at), _ASKED_TTL_SECONDS])

    def asked_again_since(self, name: str, since: datetime) -> datetime | None:
        with translated():
            value = self._client.getdel(_ASKED_PREFIX + name)
        if value is None or int(value) <= _micros(since):
            return None
        return datetime.fromtimestamp(int(value) / 1_000_000, tz=UTC)

    def release_key(self, key: str, token: str) -> None:
        self._release(keys=[key], args=[token])

    def _keep_renewing_each(self, held: _HeldLocks, stop: threading.Event) -> None:
        while not stop.wait(self._ttl_ms / 3000):
            try:
                for key in held.redis_keys():
                    self._renew(keys=[key], args=[held.token, self._ttl_ms])
            except redis.RedisError:
                continue  # a blip; the TTL leaves room for two more tries

    def _keep_renewing(self, key: str, token: str, stop: threading.Event) -> None:
        while not stop.wait(self._ttl_ms / 3000):
            try:
                if not self._renew(keys=[key], args=[token, self._ttl_ms]):
                    return  # lost: another holder may run now; ours still ends by itself
            except redis.RedisError:
                continue  # a blip; the TTL leaves room for two more tries


class _HeldLocks:
    """Locks taken together under one owner token, renewed together, each released when its holder is done."""

    def __init__(self, locks: RedisLocks, token: str, keys: dict[str, str]) -> None:
        self._locks, self.token, self._keys = locks, token, keys
        self._guard = threading.Lock()

    @property
    def held(self) -> frozenset[str]:
        with self._guard:
            return frozenset(self._keys)

    def redis_keys(self) -> list[str]:
        with self._guard:
            return list(self._keys.values())

    def release(self, name: str) -> None:
        with self._guard:
            key = self._keys.pop(name, None)
        if key is not None:
            with translated():
                self._locks.release_key(key, self.token)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)
