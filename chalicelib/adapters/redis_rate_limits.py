"""Token buckets in Redis: per client IP on public routes, per app on client routes (and per receiver later)."""

from __future__ import annotations

import math

import redis

from chalicelib import errors

# Redis's own clock, so every container agrees on time. Takes as many of ARGV[2] tokens as the bucket holds and
# returns {taken, 0}; when it holds less than one, {0, the milliseconds until one will be free}. Buckets expire once
# full again.
_TAKE_TOKENS = """
local capacity = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local per_ms = capacity / 60000.0
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local taken = math.min(wanted, math.floor(tokens))
local wait = 0
if taken >= 1 then
  tokens = tokens - taken
else
  wait = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return {taken, wait}
"""
_KEY_PREFIX = "docora:rate:"


class RedisRateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._take_tokens = client.register_script(_TAKE_TOKENS)

    def acquire(self, key: str, per_minute: int) -> int | None:
        return self.acquire_many(key, per_minute, up_to=1)[1]

    def acquire_many(self, key: str, per_minute: int, *, up_to: int) -> tuple[int, int | None]:
        try:
            taken, wait_ms = self._take_tokens(keys=[_KEY_PREFIX + key], args=[per_minute, up_to])
        except redis.RedisError as error:
            raise errors.Unavailable("the rate limiter is not available") from error
        return int(taken), None if taken else max(1, math.ceil(int(wait_ms) / 1000))

    def ping(self) -> None:
        try:
            self._client.ping()
        except redis.RedisError as error:
            raise errors.Unavailable("redis is not available") from error
