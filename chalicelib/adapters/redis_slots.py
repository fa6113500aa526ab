"""Capacity shared by concurrent jobs, in Redis: leases of slots under a name, at most a limit out at once.

A lease is a hash field (its slots) with an expiry in a sorted set; taking first drops lapsed leases, so a job that
died gives its slots back by itself once its lease runs out. Both steps are one script, so two jobs taking at once
cannot both see the same free slots. Expiries are the callers' clock (Lambda hosts keep theirs synchronised), which
is also how the tests move time.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

import redis

from chalicelib.adapters.redis_client import translated
from chalicelib.ports import SlotLease, SlotRequest

_PREFIX = "docora:slots:"
_TAKE = """
local now, want, limit, expires, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
for _, lapsed in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)) do
  redis.call('HDEL', KEYS[1], lapsed)
  redis.call('ZREM', KEYS[2], lapsed)
end
local used = 0
for _, slots in ipairs(redis.call('HVALS', KEYS[1])) do used = used + tonumber(slots) end
local granted = math.min(want, limit - used)
if granted <= 0 then return 0 end
redis.call('HSET', KEYS[1], lease, granted)
redis.call('ZADD', KEYS[2], expires, lease)
-- The keys outlive their longest lease, so an idle name leaves nothing behind.
local keep = math.max(redis.call('PTTL', KEYS[1]), math.floor((expires - now) * 1000))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return granted
"""
_RENEW = """
local now, expires, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local current = redis.call('ZSCORE', KEYS[2], lease)
if not current or tonumber(current) <= now then return 0 end
redis.call('ZADD', KEYS[2], expires, lease)
local keep = math.max(redis.call('PTTL', KEYS[1]), math.floor((expires - now) * 1000))
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return 1
"""
_GIVE_BACK = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 0
"""


class RedisSlots:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._take = client.register_script(_TAKE)
        self._renew = client.register_script(_RENEW)
        self._give_back = client.register_script(_GIVE_BACK)

    def take(self, requests: Sequence[SlotRequest], *, now: datetime, seconds: int) -> list[SlotLease]:
        at, lease_ids = now.timestamp(), [secrets.token_hex(8) for _ in requests]
        with translated():
            pipe = self._client.pipeline(transaction=False)
            for request, lease_id in zip(requests, lease_ids, strict=True):
                args = [at, request.want, request.limit, at + seconds, lease_id]
                self._take(keys=_keys(request.name), args=args, client=pipe)
            granted = pipe.execute()
        return [
            SlotLease(request.name, lease_id, int(count))
            for request, lease_id, count in zip(requests, lease_ids, granted, strict=True)
        ]

    def renew(self, leases: Sequence[SlotLease], *, now: datetime, seconds: int) -> None:
        at = now.timestamp()
        with translated():
            pipe = self._client.pipeline(transaction=False)
            for lease in leases:
                if lease.granted:
                    self._renew(keys=_keys(lease.name), args=[at, at + seconds, lease.lease_id], client=pipe)
            pipe.execute()

    def give_back(self, lease: SlotLease) -> None:
        if lease.granted:
            with translated():
                self._give_back(keys=_keys(lease.name), args=[lease.lease_id])


def _keys(name: str) -> list[str]:
    return [_PREFIX + name + ":leases", _PREFIX + name + ":expiries"]
