"""Token buckets in Redis: per client IP on public routes, per app on client routes (and per receiver later)."""

from __future__ import annotations

import math

import redis

from chalicelib import errors

# Redis's own clock, so every container agrees on time. Returns 0 when a token was taken,
# else the milliseconds until one will be free. Buckets expire once full again.
_TAKE_TOKEN = """
local capacity = tonumber(ARGV[1])
local per_ms = capacity / 60000.0
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * per_ms)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / per_ms)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / per_ms) + 1000)
return wait
"""
_KEY_PREFIX = "docora:rate:"


class RedisRateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._take_token = client.register_script(_TAKE_TOKEN)

    def acquire(self, key: str, per_minute: int) -> int | None:
        try:
            wait_ms = int(self._take_token(keys=[_KEY_PREFIX + key], args=[per_minute]))
        except redis.RedisError as error:
            raise errors.Unavailable("the rate limiter is not available") from error
        return None if wait_ms == 0 else max(1, math.ceil(wait_ms / 1000))

    def ping(self) -> None:
        try:
            self._client.ping()
        except redis.RedisError as error:
            raise errors.Unavailable("redis is not available") from error
