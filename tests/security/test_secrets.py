"""Planted secrets never show up in logs, error bodies, exceptions, git caches or anything under EPHEMERAL_DIR."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib import wiring
from docora_local.harness.receivers import PythonReceiver
from docora_local.harness.scan_stack import T0, later, scan_stack
from docora_local.harness.settings import TEST_ADMIN_API_KEY, TEST_ENCRYPTION_KEY
from docora_local.standins.github_api import GitHubStandIn

GITHUB_TOKEN = "ghp_" + "S3cr3tT0k3n" * 3 + "abc"
CLIENT_AUTH_KEY = "planted-client-auth-key-0123456789"


def forms(secret: str) -> list[str]:
    """The secret and the encodings it could leak in (a Basic header, hex)."""
    basic = base64.b64encode(f"x-access-token:{secret}".encode()).decode()
    return [secret, basic, secret.encode().hex()]


def test_no_secret_leaks_anywhere_over_a_whole_lifecycle(tmp_path, database_url, redis_url, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    receiver = PythonReceiver().start()
    bodies: list[str] = []
    with GitHubStandIn() as github, scan_stack(tmp_path, database_url, redis_url, monkeypatch) as stack:
        github.add_repository("acme", "widgets", private=True, token=GITHUB_TOKEN)
        stack.git_server.require_token(GITHUB_TOKEN)
        repo = stack.make_repo()
        repo.commit({"readme.md": b"hello"})
        monkeypatch.setattr(wiring, "deps", lambda: _with_github(stack.deps, github.url))
        import app

        with Client(app.app) as client:
            admin = {"Authorization": f"Bearer {TEST_ADMIN_API_KEY}", "Content-Type": "application/json"}
            onboard = {"base_url": receiver.url, "app_name": "x", "email": "x@example.com",
                       "client_auth_key": CLIENT_AUTH_KEY}  # fmt: skip
            reply = client.http.post("/api/apps/onboard", headers=admin, body=json.dumps(onboard))
            token = reply.json_body["token"]
            app_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            register = {"github_url": "https://github.com/acme/widgets", "github_token": GITHUB_TOKEN}
            registered = client.http.post("/api/repositories", headers=app_headers, body=json.dumps(register))
            repository_id = registered.json_body["repository_id"]
            stack.scan(repository_id, at=T0)
            stack.deliver(reply.json_body["app_id"], repository_id)
            stack.git_server.require_token("ghp_" + "z" * 36)  # the planted token is now refused
            repo.commit({"more.md": b"more"})
            stack.scan(repository_id, at=later(T0))
            wrong = {"github_token": "ghp_" + "w" * 36}
            github.rate_limit(retry_after=5)
            replies = [
                reply,
                registered,
                client.http.patch(
                    f"/api/repositories/{repository_id}/token", headers=app_headers, body=json.dumps(wrong)
                ),
                client.http.get(f"/api/repositories/{repository_id}", headers=app_headers),
                client.http.get(f"/api/repositories/{repository_id}/deliveries", headers=app_headers),
                client.http.get("/api/admin/apps", headers=admin),
                client.http.get("/api/admin/repositories", headers=admin),
                client.http.post("/api/repositories", headers=app_headers, body=b"{not json"),
            ]
            bodies = [r.body.decode() if isinstance(r.body, bytes) else str(r.body) for r in replies[1:]]
            last_error = stack.rows("SELECT last_error FROM repositories")[0][0]
    receiver.stop()
    captured = capfd.readouterr()
    logs = "\n".join(caplog.messages) + "\n".join(str(record.__dict__) for record in caplog.records)
    everything = "\n".join([logs, captured.out, captured.err, *bodies, last_error or ""])
    files = b"".join(path.read_bytes() for path in Path(tmp_path, "ephemeral").rglob("*") if path.is_file())

    assert last_error == "GitHub rejected the token"
    assert len(files) > 1000 and caplog.records, "nothing was scanned: the test would prove nothing"
    for secret in [GITHUB_TOKEN, token, CLIENT_AUTH_KEY, TEST_ADMIN_API_KEY, TEST_ENCRYPTION_KEY]:
        for form in forms(secret):
            assert form not in everything, f"a secret leaked: {form[:8]}…"
            assert form.encode() not in files, f"a secret is on disk: {form[:8]}…"


def _with_github(deps, github_url):
    import dataclasses

    from chalicelib.adapters.github_rest import GitHubRest

    return dataclasses.replace(deps, github=GitHubRest(github_url))


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_git_errors_name_no_credential_or_userinfo(tmp_path, database_url, redis_url, monkeypatch, status):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch) as stack:
        repo = stack.make_repo()
        repo.commit({"a.md": b"a"})
        repository_id = stack.add_repository(token=GITHUB_TOKEN)
        stack.git_server.fail_with(status)

        stack.scan(repository_id, at=T0)

        (error,) = stack.rows("SELECT last_error FROM repositories")[0]
        assert GITHUB_TOKEN not in error and "@" not in error and "x-access-token" not in error
