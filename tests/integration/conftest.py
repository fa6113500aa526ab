"""Integration fixtures: the real adapters over real Postgres and Redis, moto for AWS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from chalicelib.adapters.postgres import PostgresStore
from chalicelib.adapters.redis_rate_limits import RedisRateLimiter


@pytest.fixture
def postgres_store(database_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(database_url)
    yield store
    store.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_rate_limiter(redis_client: redis.Redis) -> RedisRateLimiter:
    return RedisRateLimiter(redis_client)
