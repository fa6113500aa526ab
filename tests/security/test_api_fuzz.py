"""Schemathesis against /openapi.json: every route, with and without credentials, never answers 5xx and
always answers what the document promises, NUL characters in every string included. The API runs on a real local
HTTP server over real adapters: Postgres refuses U+0000 in text, so a NUL that got past the edge would be a 500."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
from collections.abc import Iterator

import boto3
import pytest
import schemathesis
from chalice.config import Config
from chalice.local import LocalDevServer
from hypothesis import HealthCheck, given, settings
from moto import mock_aws
from schemathesis import checks

from chalicelib import wiring
from chalicelib.adapters.bcrypt_tokens import BcryptTokenHasher
from chalicelib.edge import openapi
from docora_local.harness.settings import TEST_ADMIN_API_KEY, make_settings
from docora_local.standins.github_api import GitHubStandIn

EXAMPLES = 6
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@dataclasses.dataclass
class ServedApi:
    url: str
    app_token: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_api(admin_database_url, template_database) -> Iterator[ServedApi]:
    import uuid

    import psycopg
    import redis
    from psycopg import sql

    import app

    name = f"docora_fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_database_url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template_database))
        )
    database_url = psycopg.conninfo.make_conninfo(admin_database_url, dbname=name)
    import os

    redis_url = os.environ["TEST_REDIS_URL"]
    redis.Redis.from_url(redis_url).flushdb()
    with mock_aws(), GitHubStandIn() as github:
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        for queue in ("docora-scan", "docora-delivery"):
            boto3.client("sqs").create_queue(QueueName=queue)
        boto3.client("s3").create_bucket(Bucket="docora-contents")
        github.add_repository("acme", "widgets")
        settings_ = make_settings(
            database_url=database_url,
            redis_url=redis_url,
            github_api_url=github.url,
            allow_private_webhook_targets=True,
            github_webhook_secret="fuzz-secret",
            public_rate_limit_per_minute=10**6,
            app_rate_limit_per_minute=10**6,
        )
        deps = dataclasses.replace(
            wiring.build(settings_), token_hasher=BcryptTokenHasher(settings_.encryption_key, rounds=4)
        )
        configs = wiring.configs_from(settings_)
        original = wiring.deps, wiring.configs
        wiring.deps, wiring.configs = (lambda: deps), (lambda: configs)
        port = _free_port()
        server = LocalDevServer(app.app, Config(), "127.0.0.1", port)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        token = _onboard(base)
        try:
            yield ServedApi(base, token)
        finally:
            server.shutdown()
            wiring.deps, wiring.configs = original
            deps.store.close()
    with psycopg.connect(admin_database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _onboard(base: str) -> str:
    import requests

    body = {"base_url": "http://127.0.0.1:9", "app_name": "fuzz", "email": "fuzz@example.com"}
    headers = {"Authorization": f"Bearer {TEST_ADMIN_API_KEY}"}
    reply = requests.post(f"{base}/api/apps/onboard", json=body, headers=headers, timeout=10)
    reply.raise_for_status()
    token = reply.json()["token"]
    requests.post(f"{base}/api/repositories", json={"github_url": "https://github.com/acme/widgets"},
                  headers={"Authorization": f"Bearer {token}"}, timeout=10).raise_for_status()  # fmt: skip
    return token


def _check(case, served_api: ServedApi, authorization: str | None) -> None:
    headers = dict(case.headers or {})
    if authorization is not None:
        headers["Authorization"] = authorization

    response = case.call(base_url=served_api.url, headers=headers)

    case.validate_response(response, checks=CHECKS)


def _with_nul(value):
    """`value` with a NUL character in every string it holds, keys aside."""
    if isinstance(value, str):
        return value[: len(value) // 2] + "\x00" + value[len(value) // 2 :]
    if isinstance(value, dict):
        return {key: _with_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_nul(item) for item in value]
    return value


def _operations():
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(openapi.document())))
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("who", ["no credentials", "app token", "operator key"])
def test_every_route_keeps_its_contract(served_api, who):
    authorization = {
        "no credentials": None,
        "app token": f"Bearer {served_api.app_token}",
        "operator key": f"Bearer {TEST_ADMIN_API_KEY}",
    }[who]
    for operation in _operations():

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            _check(case, served_api, authorization)

        fuzz()


@pytest.mark.parametrize("who", ["app token", "operator key"])
def test_nul_characters_in_any_string_are_refused_not_a_server_error(served_api, who):
    authorization = f"Bearer {served_api.app_token}" if who == "app token" else f"Bearer {TEST_ADMIN_API_KEY}"
    for operation in _operations():

        @given(operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            if isinstance(case.body, dict | list | str):
                case.body = _with_nul(case.body)
            if case.query:
                case.query = _with_nul(dict(case.query))
            headers = dict(case.headers or {}) | {"Authorization": authorization}

            response = case.call(base_url=served_api.url, headers=headers)

            case.validate_response(response, checks=[checks.not_a_server_error])

        fuzz()
