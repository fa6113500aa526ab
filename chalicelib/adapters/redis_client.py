"""The Redis connection every Redis adapter shares, with limits that fit a request path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from chalicelib import errors

# A Redis that hangs or is gone must fail the call in about a second, not hold a Lambda
# through redis-py's default retries with exponential backoff.
_TIMEOUT_SECONDS = 1.0
_RETRIES = 1


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=_TIMEOUT_SECONDS,
        socket_connect_timeout=_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), _RETRIES),
        health_check_interval=30,
    )


@contextmanager
def translated() -> Iterator[None]:
    """Redis failing, as a service error the caller can retry."""
    try:
        yield
    except redis.RedisError as error:
        raise errors.Unavailable("redis is not available") from error
