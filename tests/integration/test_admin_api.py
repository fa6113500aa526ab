"""The operator API on the real stack: credentials, counts, lists, app detail, retries, resyncs and bulk actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from chalice.test import Client

from chalicelib import wiring
from docora_local.harness.scan_stack import T0, scan_stack
from docora_local.harness.settings import TEST_ADMIN_API_KEY

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_API_KEY}", "Content-Type": "application/json"}


@pytest.fixture
def stack(tmp_path, database_url, redis_url, monkeypatch):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, sweep_batch_size=2) as built:
        monkeypatch.setattr(wiring, "deps", lambda: built.deps)
        yield built


@pytest.fixture
def client(stack):
    import app

    with Client(app.app) as test_client:
        yield test_client


def get(client, path, **query):
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return client.http.get(f"/api/admin{path}{suffix}", headers=ADMIN)


def post(client, path, body=None):
    return client.http.post(f"/api/admin{path}", headers=ADMIN, body=json.dumps(body or {}))


def fail_watches(stack, count: int, name: str = "acme/widgets") -> str:
    repository_id = stack.add_repository(name, apps=count)
    stack.rows("UPDATE watches SET status = 'failed', attempts = 5, last_error = 'the receiver answered 500'")
    return repository_id


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer docora_" + "a" * 64}],
    ids=["missing", "wrong", "app token"],
)
def test_operator_routes_need_the_operator_key(client, headers):
    for path in ("/overview", "/apps", "/repositories", "/watches/failed", "/attempts"):
        assert client.http.get(f"/api/admin{path}", headers=headers).status_code == 401
    assert client.http.post("/api/admin/retry-failed", headers=headers).status_code == 401


def test_the_overview_counts_everything(stack, client):
    fail_watches(stack, 2)

    body = get(client, "/overview").json_body

    assert (body["apps"], body["repositories"]) == (2, 1)
    assert body["watches"] == {"pending": 0, "syncing": 0, "synced": 0, "failed": 2}
    assert body["queues"]["scan"] == {"waiting": 0, "in_flight": 0, "delayed": 0}


def test_lists_are_paged_sorted_and_searched_with_wildcards_taken_literally(stack, client):
    stack.add_repository("acme/a_b")
    stack.add_repository("acme/axb")

    literal = get(client, "/repositories", search="a_b").json_body
    paged = get(client, "/repositories", sort="github_url", order="asc", limit=1, offset=1).json_body
    bad_sort = get(client, "/repositories", sort="password")
    bad_limit = get(client, "/repositories", limit=0)

    assert [item["github_url"] for item in literal["items"]] == ["https://github.com/acme/a_b"]
    assert (paged["total"], [i["github_url"] for i in paged["items"]]) == (2, ["https://github.com/acme/axb"])
    assert bad_sort.status_code == 400 and bad_sort.json_body["details"][0]["field"] == "sort"
    assert bad_limit.status_code == 400 and bad_limit.json_body["details"][0]["field"] == "limit"


def test_an_operator_onboards_an_app_and_sees_its_detail(client):
    body = {"base_url": "http://127.0.0.1:9", "app_name": "Ops made", "email": "ops@example.com"}

    created = post(client, "/apps", body)
    detail = get(client, f"/apps/{created.json_body['app_id']}")
    missing = get(client, "/apps/app_" + "0" * 24)

    assert created.status_code == 201 and created.json_body["token"].startswith("docora_")
    assert detail.json_body["app"]["app_name"] == "Ops made" and detail.json_body["repositories"] == []
    assert missing.status_code == 404


def test_retrying_all_failed_watches_is_an_operation_with_progress(stack, client):
    repository_id = fail_watches(stack, 3)

    started = post(client, "/retry-failed")
    operation_id = started.json_body["operation_id"]
    after_first_batch = get(client, f"/operations/{operation_id}").json_body
    stack.sweep(at=datetime.now(UTC))
    finished = get(client, f"/operations/{operation_id}").json_body

    assert started.status_code == 202
    assert (after_first_batch["done"], after_first_batch["total"], after_first_batch["status"]) == (2, 3, "running")
    assert (finished["done"], finished["status"]) == (3, "done")
    assert stack.rows("SELECT DISTINCT status, attempts FROM watches") == [("pending", 0)]
    assert sorted(r for _, r in stack.deliveries_requested()) == [repository_id] * 3


def test_one_watch_is_retried_or_resynced_and_unknown_ones_are_404(stack, client):
    repository_id = fail_watches(stack, 1)
    (app_id,) = stack.app_ids(repository_id)

    retried = post(client, f"/watches/{app_id}/{repository_id}/retry")
    resynced = post(client, f"/watches/{app_id}/{repository_id}/resync")
    unknown = post(client, f"/watches/{app_id}/repo_{'0' * 24}/retry")

    assert (retried.status_code, resynced.status_code, unknown.status_code) == (202, 202, 404)
    assert len(stack.deliveries_requested()) == 2


def test_pause_resume_and_circuit_reset(stack, client):
    repository_id = stack.add_repository()
    (app_id,) = stack.app_ids(repository_id)
    stack.rows("UPDATE repositories SET consecutive_failures = 7, circuit_open_until = now() + interval '1 hour'")

    paused = post(client, f"/apps/{app_id}/pause")
    state = stack.rows("SELECT delivery_state, paused_reason FROM apps")
    resumed = post(client, f"/apps/{app_id}/resume")
    reset = post(client, f"/repositories/{repository_id}/reset-circuit")

    assert (paused.status_code, resumed.status_code, reset.status_code) == (202, 202, 202)
    assert state == [("paused", "paused by the operator")]
    assert stack.rows("SELECT delivery_state FROM apps") == [("active",)]
    assert stack.rows("SELECT consecutive_failures, circuit_open_until FROM repositories") == [(0, None)]
    assert stack.deliveries_requested() == [(app_id, repository_id)]
    assert [request.repository_id for request in stack.scans_requested()] == [repository_id]


def test_deleting_an_app_leaves_no_orphans(stack, client):
    repository_id = stack.add_repository()
    (app_id,) = stack.app_ids(repository_id)
    stack.rows("INSERT INTO delivered_files VALUES (%s, %s, 'a.md', %s, now())", app_id, repository_id, b"\0" * 32)

    reply = client.http.delete(f"/api/admin/apps/{app_id}", headers=ADMIN)

    assert reply.status_code == 204
    for table in ("apps", "watches", "repositories", "delivered_files", "delivery_attempts", "snapshots"):
        assert stack.rows(f"SELECT count(*) FROM {table}") == [(0,)], table  # noqa: S608 - fixed table names
    assert client.http.delete(f"/api/admin/apps/{app_id}", headers=ADMIN).status_code == 404


def test_failed_watches_and_attempts_are_listed(stack, client):
    fail_watches(stack, 1)
    stack.scan(stack.rows("SELECT id FROM repositories")[0][0], at=T0)

    failed = get(client, "/watches/failed").json_body

    assert failed["total"] == 1 and failed["items"][0]["last_error"] == "the receiver answered 500"
    assert get(client, "/attempts").json_body == {"items": [], "total": 0, "limit": 50, "offset": 0}
