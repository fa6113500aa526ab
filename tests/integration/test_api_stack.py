"""The API over its real adapters: Postgres, Redis, SQS (moto) and a GitHub stand-in on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import psycopg
import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib import wiring
from chalicelib.messages import ScanRequested
from docora_local.harness.settings import TEST_ADMIN_API_KEY, make_settings
from docora_local.standins.github_api import GitHubStandIn

PRIVATE_TOKEN = "ghp_" + "p" * 36
ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_API_KEY}", "Content-Type": "application/json"}


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn() as standin:
        standin.add_repository("vercel", "next.js", default_branch="canary", branches=("canary",))
        standin.add_repository("acme", "secret", private=True, token=PRIVATE_TOKEN)
        yield standin


@pytest.fixture
def sqs(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # boto3.client() in wiring reads the region here
    with mock_aws():
        client = boto3.client("sqs")
        client.create_queue(QueueName="docora-scan")
        yield client


@pytest.fixture
def client(monkeypatch, database_url, redis_url, github, sqs) -> Iterator[Client]:
    settings = make_settings(
        database_url=database_url,
        redis_url=redis_url,
        github_api_url=github.url,
        allow_private_webhook_targets=True,
    )
    deps, configs = wiring.build(settings), wiring.configs_from(settings)
    monkeypatch.setattr(wiring, "deps", lambda: deps)
    monkeypatch.setattr(wiring, "configs", lambda: configs)
    import app

    with Client(app.app) as test_client:
        yield test_client
    deps.store.close()


def scans_requested(sqs) -> list[str]:
    url = sqs.get_queue_url(QueueName="docora-scan")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [ScanRequested.from_json(message["Body"]).repository_id for message in messages]


def onboard(client) -> str:
    body = {"base_url": "http://127.0.0.1:9/hooks", "app_name": "Mirror", "email": "ops@example.com"}
    response = client.http.post("/api/apps/onboard", headers=ADMIN, body=json.dumps(body))
    assert response.status_code == 201, response.json_body
    return response.json_body["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_onboard_register_list_and_unwatch_over_the_real_stack(client, sqs, database_url):
    token = onboard(client)

    registered = client.http.post(
        "/api/repositories", headers=bearer(token), body=json.dumps({"github_url": "https://github.com/vercel/next.js"})
    )
    repository_id = registered.json_body["repository_id"]
    listed = client.http.get("/api/repositories", headers=bearer(token)).json_body["repositories"]
    deleted = client.http.delete(f"/api/repositories/{repository_id}", headers=bearer(token))

    assert registered.status_code == 201
    assert registered.json_body["branch"] == "canary"
    assert scans_requested(sqs) == [repository_id]
    assert [item["repository_id"] for item in listed] == [repository_id]
    assert deleted.status_code == 204
    with psycopg.connect(database_url) as connection:
        assert connection.execute("SELECT count(*) FROM repositories").fetchone() == (0,)


def test_secrets_are_stored_encrypted_or_hashed_only(client, database_url):
    token = onboard(client)
    client.http.post(
        "/api/repositories",
        headers=bearer(token),
        body=json.dumps({"github_url": "https://github.com/acme/secret", "github_token": PRIVATE_TOKEN}),
    )

    with psycopg.connect(database_url) as connection:
        dump = repr(connection.execute("SELECT * FROM apps").fetchall())
        dump += repr(connection.execute("SELECT * FROM watches").fetchall())

    assert token not in dump
    assert PRIVATE_TOKEN not in dump


def test_github_refusals_reach_the_client_as_the_protocol_says(client, github):
    token = onboard(client)
    url = json.dumps({"github_url": "https://github.com/acme/secret", "github_token": "ghp_" + "w" * 36})

    rejected = client.http.post("/api/repositories", headers=bearer(token), body=url)
    github.rate_limit(retry_after=30)
    limited = client.http.post(
        "/api/repositories", headers=bearer(token), body=json.dumps({"github_url": "https://github.com/vercel/next.js"})
    )

    assert (rejected.status_code, rejected.json_body["error"]) == (422, "unprocessable")
    assert (limited.status_code, limited.headers["Retry-After"]) == (503, "30")


def test_health_checks_the_real_dependencies(client):
    response = client.http.get("/health")

    assert response.status_code == 200
    assert response.json_body["checks"] == {"database": "ok", "redis": "ok", "queues": "ok"}


def test_authentication_survives_a_cold_container(client, monkeypatch, database_url, redis_url, github):
    token = onboard(client)
    settings = make_settings(database_url=database_url, redis_url=redis_url, github_api_url=github.url)
    cold = wiring.build(settings)
    monkeypatch.setattr(wiring, "deps", lambda: cold)

    assert client.http.get("/api/repositories", headers=bearer(token)).status_code == 200
    cold.store.close()
