"""End-to-end fixtures: one LocalStack, one deployment and one set of loopback servers for the whole session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from psycopg import sql

from docora_local import deploy
from docora_local.harness.settings import TEST_ADMIN_API_KEY, TEST_ENCRYPTION_KEY
from docora_local.standins.git_server import GitServer
from docora_local.standins.github_api import GitHubStandIn
from tests.e2e.deployed import Docora, localstack, session_for

WEBHOOK_SECRET = "e2e-github-webhook-secret"
# The unit and integration tests flush TEST_REDIS_URL's database; the deployed functions use the one below it.
REDIS_DATABASE = 14
# Two receives, not five, before the dead-letter queue: its test then waits two visibility timeouts.
MAX_RECEIVE_COUNT = "2"


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("git")) as server:
        yield server


@pytest.fixture(scope="session")
def github(git_server: GitServer) -> Iterator[GitHubStandIn]:
    with GitHubStandIn(git_server.repos_dir) as standin:
        yield standin


@pytest.fixture(scope="session")
def e2e_database_url(admin_database_url: str, template_database: str) -> Iterator[str]:
    name = f"docora_e2e_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_database_url, autocommit=True) as connection:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
        connection.execute(create.format(sql.Identifier(name), sql.Identifier(template_database)))
    yield urlunsplit(urlsplit(admin_database_url)._replace(path=f"/{name}"))  # Settings takes URLs only
    with psycopg.connect(admin_database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def e2e_redis_url() -> str:
    test_url = os.environ.get("TEST_REDIS_URL")
    if not test_url:
        pytest.fail("TEST_REDIS_URL is not set; `make test` sets it (see the README)")
    url = urlunsplit(urlsplit(test_url)._replace(path=f"/{REDIS_DATABASE}"))
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture(scope="session")
def docora(
    tmp_path_factory: pytest.TempPathFactory,
    e2e_database_url: str,
    e2e_redis_url: str,
    git_server: GitServer,
    github: GitHubStandIn,
) -> Iterator[Docora]:
    env = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "DATABASE_URL": e2e_database_url,
        "REDIS_URL": e2e_redis_url,
        "ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "ADMIN_API_KEY": TEST_ADMIN_API_KEY,
        "GITHUB_API_URL": github.url,
        "GIT_BASE_URL": git_server.url,
        "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
        "RETRY_BASE_DELAY_MS": "200",
        # No scheduled rescan during the session: a change arrives only when a test asks for it.
        "RESCAN_INTERVAL_MS": "3600000",
    }
    package_dir = deploy.package(tmp_path_factory.mktemp("package") / "out", stage="local", env={**os.environ, **env})
    with localstack(tmp_path_factory.mktemp("localstack")) as endpoint:
        session = session_for()
        parameters = {"MaxReceiveCount": MAX_RECEIVE_COUNT}
        deployment = deploy.deploy(package_dir, session=session, endpoint=endpoint, env=env, parameters=parameters)
        yield Docora(deployment, TEST_ADMIN_API_KEY, WEBHOOK_SECRET, session)
