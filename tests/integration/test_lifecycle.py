"""The sweep, the GitHub push webhook, resync, app self-management and their consistency, on the real stack."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from chalice.test import Client

from chalicelib import wiring
from chalicelib.domain.repositories import NewWatch
from docora_local.harness.receivers import PythonReceiver
from docora_local.harness.receivers import Reply as PythonReply
from docora_local.harness.scan_stack import CLIENT_AUTH_KEY, T0, later, scan_stack
from docora_local.harness.settings import TEST_ADMIN_API_KEY

SECRET = "github-webhook-secret-for-tests"
ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_API_KEY}", "Content-Type": "application/json"}


@pytest.fixture
def receiver():
    server = PythonReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def stack(tmp_path, database_url, redis_url, monkeypatch):
    settings = {"github_webhook_secret": SECRET, "rescan_interval_ms": 60_000, "stuck_after_ms": 60_000}
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, **settings) as built:
        monkeypatch.setattr(wiring, "deps", lambda: built.deps)
        yield built


@pytest.fixture
def client(stack):
    import app

    with Client(app.app) as test_client:
        yield test_client


def onboard(client, base_url: str) -> tuple[str, str]:
    body = {"base_url": base_url, "app_name": "Mirror", "email": "ops@example.com", "client_auth_key": CLIENT_AUTH_KEY}
    reply = client.http.post("/api/apps/onboard", headers=ADMIN, body=json.dumps(body)).json_body
    return reply["app_id"], reply["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def watch(stack, app_id: str, repository_id: str) -> None:
    with stack.deps.store.transaction() as tx:
        tx.watches.add(NewWatch(app_id, repository_id, None))


def synced_repository(stack, client, receiver, files):
    repo = stack.make_repo()
    repo.commit(files)
    repository_id = stack.add_repository(apps=0)
    app_id, token = onboard(client, receiver.url)
    watch(stack, app_id, repository_id)
    stack.scan(repository_id, at=T0)
    stack.deliver(app_id, repository_id)
    stack.deliveries_requested()
    receiver.requests.clear()
    return repo, repository_id, app_id, token


def test_two_sweeps_at_once_check_each_due_repository_once_and_scan_only_the_moved_ones(stack):
    repos = {name: stack.make_repo(f"acme/{name}") for name in ("quiet1", "quiet2", "moved", "fresh")}
    ids = {name: stack.add_repository(f"acme/{name}") for name in repos}
    for name, repo in repos.items():
        repo.commit({"a.md": name.encode()})
        stack.scan(ids[name], at=T0)
    repos["moved"].commit({"a.md": b"changed"})
    stack.rows("UPDATE repositories SET next_check_at = %s WHERE id = %s", T0 + timedelta(hours=1), ids["fresh"])
    stack.scans_requested()
    stack.git_server.clear_log()
    now = T0 + timedelta(minutes=5)
    reports = []

    threads = [threading.Thread(target=lambda: reports.append(stack.sweep(at=now))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    again = stack.sweep(at=now + timedelta(seconds=1))

    assert sum(report.checks.checked for report in reports) == 3
    assert len(stack.git_server.requests) == 3  # one ls-refs each, and none for the one not yet due
    assert [request.repository_id for request in stack.scans_requested()] == [ids["moved"]]
    assert again.checks.checked == 0


def test_the_sweep_skips_open_circuits_until_their_cooldown_has_passed(stack):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a"})
    repository_id = stack.add_repository()
    stack.rows("UPDATE repositories SET consecutive_failures = 5, circuit_open_until = %s", T0 + timedelta(minutes=5))

    during = stack.sweep(at=T0)
    after = stack.sweep(at=T0 + timedelta(minutes=6))

    assert (during.checks.checked, after.checks.checked) == (0, 1)
    assert [request.repository_id for request in stack.scans_requested()] == [repository_id]  # never snapshotted


def test_the_sweep_reenqueues_retries_whose_time_has_come(stack):
    repository_id = stack.add_repository()
    stack.rows("UPDATE watches SET next_attempt_at = %s, attempts = 2", T0 + timedelta(minutes=20))

    early = stack.sweep(at=T0)
    due = stack.sweep(at=T0 + timedelta(minutes=21))

    assert (early.retries, due.retries) == (0, 1)
    assert stack.deliveries_requested() == [(stack.app_ids(repository_id)[0], repository_id)]


@pytest.mark.parametrize("status", ["syncing", "pending"], ids=["crashed job", "lost request"])
def test_the_sweep_recovers_work_left_behind(stack, client, receiver, status):
    repo = stack.make_repo()
    repo.commit({"a.md": b"a"})
    repository_id = stack.add_repository(base_url=receiver.url)
    stack.scan(repository_id, at=T0)
    stack.deliveries_requested()  # the fan-out's request is "lost"
    stack.rows("UPDATE watches SET status = %s, updated_at = now() - interval '10 minutes'", status)

    report = stack.sweep(at=datetime.now(UTC))
    (request,) = stack.deliveries_requested()
    stack.deliver(*request)

    assert report.recovered == 1
    assert [json.loads(r.body)["file"]["path"] for r in receiver.requests] == ["a.md"]
    assert stack.rows("SELECT status FROM watches") == [("synced",)]


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_hook(client, event: str, payload: dict, signature: str | None = None):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event}
    headers["X-Hub-Signature-256"] = signature if signature is not None else signed(body)
    return client.http.post("/api/github/webhook", headers=headers, body=body)


def push(branch: str = "main", full_name: str = "acme/widgets") -> dict:
    return {"ref": f"refs/heads/{branch}", "repository": {"full_name": full_name}}


def test_a_push_to_a_watched_branch_requests_its_scan_at_once(stack, client):
    repository_id = stack.add_repository()

    reply = github_hook(client, "push", push())

    assert reply.status_code == 202
    assert reply.json_body == {
        "outcome": "scan_requested",
        "detail": "a scan was requested",
        "repository_id": repository_id,
    }
    assert [request.repository_id for request in stack.scans_requested()] == [repository_id]


@pytest.mark.parametrize(
    ("event", "payload", "outcome"),
    [
        ("ping", {"zen": "Keep it logically awesome."}, "pong"),
        ("push", push(branch="feature"), "ignored"),
        ("push", push(full_name="acme/other"), "ignored"),
        ("push", {"ref": "refs/tags/v1", "repository": {"full_name": "acme/widgets"}}, "ignored"),
        ("issues", {"action": "opened"}, "ignored"),
    ],
    ids=["ping", "other branch", "unknown repository", "tag", "other event"],
)
def test_other_github_events_are_answered_and_change_nothing(stack, client, event, payload, outcome):
    stack.add_repository()

    reply = github_hook(client, event, payload)

    assert (reply.status_code, reply.json_body["outcome"]) == (200, outcome)
    assert stack.scans_requested() == []


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, signed(b"another body"), signed(b"{}", "wrong")])
def test_a_bad_github_signature_is_401_and_changes_nothing(stack, client, signature):
    stack.add_repository()

    reply = github_hook(client, "push", push(), signature=signature)

    assert reply.status_code == 401
    assert stack.scans_requested() == []


def test_resync_sends_deletes_for_vanished_paths_first_then_everything(stack, client, receiver):
    _, repository_id, app_id, token = synced_repository(stack, client, receiver, {"a.md": b"a", "b.md": b"b"})
    stack.rows(
        "INSERT INTO delivered_files VALUES (%s, %s, 'ghost.md', %s, now())", app_id, repository_id, b"\x01" * 32
    )

    stack.one_at_a_time(app_id)  # with more in flight, deletes start first but may arrive after a create
    reply = client.http.post(f"/api/repositories/{repository_id}/resync", headers=bearer(token))
    (request,) = stack.deliveries_requested()
    stack.deliver(*request)

    assert reply.status_code == 202
    assert [(r.path, json.loads(r.body)["file"]["path"]) for r in receiver.requests] == [
        ("/delete", "ghost.md"),
        ("/create", "a.md"),
        ("/create", "b.md"),
    ]


def test_a_rotated_token_replaces_the_old_one_at_once(stack, client):
    _, token = onboard(client, "http://127.0.0.1:9")

    rotated = client.http.post("/api/apps/me/rotate-token", headers=bearer(token)).json_body["token"]

    assert client.http.get("/api/apps/me", headers=bearer(token)).status_code == 401
    assert client.http.get("/api/apps/me", headers=bearer(rotated)).status_code == 200


def test_a_rotated_key_signs_the_next_request_and_the_old_one_signs_alongside(stack, client, receiver):
    repo, repository_id, app_id, token = synced_repository(stack, client, receiver, {"a.md": b"a"})

    reply = client.http.post("/api/apps/me/rotate-key", headers=bearer(token)).json_body
    repo.commit({"b.md": b"b"})
    stack.scan(repository_id, at=later(T0))
    stack.deliver(app_id, repository_id)

    (request,) = receiver.requests
    moment = request.headers["X-Docora-Timestamp"].encode()

    def signature(key: str) -> str:
        return "sha256=" + hmac.new(key.encode(), moment + b"." + request.body, hashlib.sha256).hexdigest()

    assert request.headers["X-Docora-Signature"] == signature(reply["client_auth_key"])
    assert request.headers["X-Docora-Signature-Previous"] == signature(CLIENT_AUTH_KEY)
    assert reply["previous_key_valid_until"] > datetime.now(UTC).isoformat()[:19]


def test_an_app_changes_its_profile_and_base_url_is_ssrf_checked(stack, client):
    _, token = onboard(client, "http://127.0.0.1:9")
    changed = client.http.patch(
        "/api/apps/me", headers=bearer(token), body=json.dumps({"app_name": "Renamed", "email": "new@example.com"})
    )
    refused = client.http.patch("/api/apps/me", headers=bearer(token), body=json.dumps({"base_url": "ftp://x"}))
    unknown = client.http.patch("/api/apps/me", headers=bearer(token), body=json.dumps({"token": "x"}))

    assert changed.status_code == 200
    assert (changed.json_body["app_name"], changed.json_body["email"]) == ("Renamed", "new@example.com")
    assert refused.status_code == 400 and refused.json_body["details"][0]["field"] == "base_url"
    assert unknown.status_code == 400 and unknown.json_body["details"][0]["field"] == "token"


def test_requests_in_flight_are_set_by_the_app_or_an_operator_within_the_ceiling(stack, client):
    app_id, token = onboard(client, "http://127.0.0.1:9")
    ceiling = stack.settings.max_in_flight_ceiling

    def patch_own(value):
        return client.http.patch("/api/apps/me", headers=bearer(token), body=json.dumps({"max_in_flight": value}))

    def patch_by_operator(value):
        return client.http.patch(f"/api/admin/apps/{app_id}", headers=ADMIN, body=json.dumps({"max_in_flight": value}))

    replies = [patch_own(4), patch_own(ceiling + 1), patch_own(0), patch_by_operator(1), patch_by_operator(ceiling + 1)]

    assert [reply.status_code for reply in replies] == [200, 400, 400, 200, 400]
    assert (replies[0].json_body["max_in_flight"], replies[3].json_body["max_in_flight"]) == (4, 1)
    assert all(
        reply.json_body["details"][0]["field"] == "max_in_flight" for reply in replies if reply.status_code == 400
    )
    assert stack.rows("SELECT max_in_flight FROM apps WHERE id = %s", app_id) == [(1,)]
    missing = client.http.patch("/api/admin/apps/app_missing", headers=ADMIN, body=json.dumps({"max_in_flight": 2}))
    assert missing.status_code == 404


def test_an_app_its_receiver_paused_resumes_itself_and_an_operators_pause_stays(stack, client, receiver):
    repo, repository_id, app_id, token = synced_repository(stack, client, receiver, {"a.md": b"a"})
    repo.commit({"b.md": b"b"})
    stack.scan(repository_id, at=later(T0))
    stack.deliveries_requested()
    receiver.script(PythonReply(410))
    stack.deliver(app_id, repository_id)
    paused = client.http.get("/api/apps/me", headers=bearer(token)).json_body

    resumed = client.http.post("/api/apps/me/resume", headers=bearer(token))
    requested = stack.deliveries_requested()
    stack.deliver(*requested[0])
    client.http.post(f"/api/admin/apps/{app_id}/pause", headers=ADMIN)
    refused = client.http.post("/api/apps/me/resume", headers=bearer(token))

    assert (paused["delivery_state"], paused["paused_by"]) == ("paused", "receiver")
    assert paused["paused_reason"] == "the receiver answered 410 Gone"
    assert resumed.status_code == 200 and resumed.json_body["delivery_state"] == "active"
    assert requested == [(app_id, repository_id)]
    assert [json.loads(r.body)["file"]["path"] for r in receiver.requests] == ["b.md", "b.md"]  # refused, then taken
    assert refused.status_code == 409
    assert stack.rows("SELECT delivery_state, paused_by FROM apps WHERE id = %s", app_id) == [("paused", "operator")]


def test_an_app_that_deletes_itself_takes_its_repositories_and_their_contents(stack, client, receiver):
    _, repository_id, app_id, token = synced_repository(stack, client, receiver, {"only.md": b"only mine"})
    shared = stack.add_repository("acme/shared", apps=1)
    watch(stack, app_id, shared)
    query = "SELECT encode(bundle, 'hex') FROM snapshot_files WHERE repository_id = %s"
    ((bundle,),) = stack.rows(query, repository_id)
    key = "bundles/" + bundle
    assert stack.s3.list_objects_v2(Bucket="docora-contents", Prefix=key).get("KeyCount") == 1

    reply = client.http.delete("/api/apps/me", headers=bearer(token))

    assert reply.status_code == 204
    assert client.http.get("/api/apps/me", headers=bearer(token)).status_code == 401
    assert stack.rows("SELECT id FROM repositories") == [(shared,)]
    assert stack.rows("SELECT count(*) FROM snapshot_files WHERE repository_id = %s", repository_id) == [(0,)]
    assert stack.s3.list_objects_v2(Bucket="docora-contents", Prefix=key).get("KeyCount") == 0


def test_an_app_deleted_while_its_delivery_runs_receives_at_most_the_file_already_on_its_way(stack, client, receiver):
    repo, repository_id, app_id, token = synced_repository(stack, client, receiver, {"a.md": b"a"})
    repo.commit({f"{i}.md": b"x" for i in range(3)})
    stack.scan(repository_id, at=later(T0))
    # One at a time: the API call below shares the job's database connection (one process), which a job with
    # acknowledgements in flight would be using; in Lambda the API has a connection of its own.
    stack.one_at_a_time(app_id)
    original = receiver._record

    def delete_app_on_first_request(received):
        original(received)
        if len(receiver.requests) == 1:
            client.http.delete("/api/apps/me", headers=bearer(token))

    receiver._record = delete_app_on_first_request
    result = stack.deliver(app_id, repository_id)

    # The first file's acknowledgement is answered while the second goes out (delivering._Job._acknowledge).
    assert result.outcome == "gone"
    assert len(receiver.requests) == 2
    assert stack.rows("SELECT count(*) FROM apps") == [(0,)]
