"""Shared fixtures: a migrated template database cloned per test, a clean Redis database (settings: docora_local)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from chalicelib import migrate


def _required_url(name: str) -> str:
    url = os.environ.get(name)
    if not url:
        # Failing, not skipping: a suite that silently skips its database tests proves nothing.
        pytest.fail(f"{name} is not set; `make test` sets it (see the README)")
    return url


def _execute(url: str, statement: sql.Composable) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(statement)


@pytest.fixture(scope="session")
def admin_database_url() -> str:
    return _required_url("TEST_DATABASE_URL")


@pytest.fixture(scope="session")
def template_database(admin_database_url: str) -> Iterator[str]:
    name = f"docora_template_{uuid.uuid4().hex[:8]}"
    _execute(admin_database_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate.migrate(psycopg.conninfo.make_conninfo(admin_database_url, dbname=name))
    yield name
    _execute(admin_database_url, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def database_url(admin_database_url: str, template_database: str) -> Iterator[str]:
    name = f"docora_test_{uuid.uuid4().hex[:8]}"
    create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
    _execute(admin_database_url, create.format(sql.Identifier(name), sql.Identifier(template_database)))
    yield psycopg.conninfo.make_conninfo(admin_database_url, dbname=name)
    _execute(admin_database_url, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = _required_url("TEST_REDIS_URL")
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()
