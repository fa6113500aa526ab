"""Docora deployed on LocalStack for a test session, and what tests need to drive it from outside.

LocalStack runs in host mode on a free loopback port with its state in a temporary folder; the stack is
packaged and deployed once (docora_local/deploy.py), exactly as `make run` does. The functions are processes
of this Python, so they reach the session's Postgres database, Redis, the git smart-HTTP server, the GitHub
stand-in and the receivers, all on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import requests

from docora_local import deploy, host
from docora_local.endpoints import free_port
from docora_local.harness.receivers import PythonReceiver

T = TypeVar("T")
READY_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 30


@contextmanager
def localstack(state: Path) -> Iterator[str]:
    """LocalStack in host mode for the block; yields its endpoint. Killed, with its functions, afterwards."""
    port = free_port(host.LOOPBACK)
    host.prepare(state)
    env = host.environment(os.environ, state=state, port=port, lambda_python=Path(sys.executable))
    with (state / "localstack.log").open("wb") as log:
        process = subprocess.Popen(
            host.command(), env=env, cwd=state, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: host.is_ready(port) or _exited(process, state), READY_SECONDS, "LocalStack to start")
        yield host.endpoint(port)
    finally:
        # The whole group: LocalStack and the function processes it started. Nothing here outlives the session.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _exited(process: subprocess.Popen[bytes], state: Path) -> bool:
    if process.poll() is not None:
        log = (state / "localstack.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"LocalStack exited with code {process.returncode}:\n{log}")
    return False


def session_for(region: str = host.REGION) -> Any:
    return boto3.session.Session(
        aws_access_key_id=host.CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=host.CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )


def wait_for(condition: Callable[[], T], seconds: float, what: str) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.2)


@dataclass(frozen=True)
class Onboarded:
    app_id: str
    token: str
    key: str


@dataclass(frozen=True)
class Docora:
    """The deployed stack, reached the way clients and AWS tooling reach it."""

    deployment: deploy.Deployment
    admin_key: str
    webhook_secret: str
    session: Any

    def url(self, path: str) -> str:
        return self.deployment.api_url + path

    def get(self, path: str, token: str | None = None) -> requests.Response:
        return requests.get(self.url(path), headers=_bearer(token), timeout=HTTP_TIMEOUT_SECONDS)

    def post(self, path: str, body: object, token: str | None = None) -> requests.Response:
        return requests.post(self.url(path), json=body, headers=_bearer(token), timeout=HTTP_TIMEOUT_SECONDS)

    def onboard(self, receiver: PythonReceiver, name: str) -> Onboarded:
        key = f"{name}-signing-key-0123456789"
        body = {"base_url": receiver.url, "app_name": name, "email": "e2e@example.com", "client_auth_key": key}
        response = self.post("/api/apps/onboard", body, token=self.admin_key)
        assert response.status_code == 201, response.text
        return Onboarded(response.json()["app_id"], response.json()["token"], key)

    def one_at_a_time(self, app: Onboarded) -> None:
        """Deliver to `app` one request at a time (max_in_flight 1), where a test reads the order of attempts."""
        response = requests.patch(
            self.url("/api/apps/me"),
            json={"max_in_flight": 1},
            headers=_bearer(app.token),
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        assert response.status_code == 200, response.text

    def register(self, app: Onboarded, full_name: str) -> str:
        response = self.post("/api/repositories", {"github_url": f"https://github.com/{full_name}"}, token=app.token)
        assert response.status_code == 201, response.text
        return response.json()["repository_id"]

    def watch_status(self, app: Onboarded, repository_id: str) -> dict[str, Any]:
        response = self.get(f"/api/repositories/{repository_id}", token=app.token)
        assert response.status_code == 200, response.text
        return response.json()

    def push_webhook(self, full_name: str, branch: str = "main") -> requests.Response:
        body = json.dumps(
            {
                "ref": f"refs/heads/{branch}",
                "repository": {"full_name": full_name, "html_url": f"https://github.com/{full_name}"},
            }
        ).encode()
        digest = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "e2e-" + digest[:12],
            "X-Hub-Signature-256": f"sha256={digest}",
        }
        return requests.post(self.url("/api/github/webhook"), data=body, headers=headers, timeout=HTTP_TIMEOUT_SECONDS)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.deployment.endpoint)


def _bearer(token: str | None) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}
