"""bootstrap.py against a stand-in for LocalStack's runtime API: the protocol, the output capture, the context.

These run on the project's Python (the one functions run on), with no LocalStack: the executor's LocalStack
side is exercised by the end-to-end tests.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

BOOTSTRAP = Path(__file__).resolve().parents[1] / "docora_lambda_executor" / "bootstrap.py"
RUNTIME_ID = "env-1"
WAIT_SECONDS = 20


@dataclass(frozen=True)
class Call:
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class RuntimeApi:
    """Records what the environment POSTs, as LocalStack's executor endpoint would receive it."""

    def __init__(self) -> None:
        self.calls: queue.Queue[Call] = queue.Queue()
        calls = self.calls

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                calls.put(Call(self.path, body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/_localstack_lambda/{RUNTIME_ID}"

    def next(self) -> Call:
        return self.calls.get(timeout=WAIT_SECONDS)


@dataclass
class Environment:
    process: subprocess.Popen[bytes]
    api: RuntimeApi
    port: int

    def invoke(self, payload: object, request_id: str = "req-1") -> None:
        invocation = {
            "invoke-id": request_id,
            "invoked-function-arn": "arn:aws:lambda:us-east-1:000000000000:function:demo",
            "payload": json.dumps(payload),
            "trace-id": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
        }
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/invoke", data=json.dumps(invocation).encode())
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
            assert response.status == 202


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tmp_path: Path, handler_source: str, *, timeout: int = 3) -> tuple[subprocess.Popen[bytes], RuntimeApi, int]:
    task_root = tmp_path / "task"
    task_root.mkdir()
    (task_root / "handler.py").write_text(textwrap.dedent(handler_source))
    api, port = RuntimeApi(), free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "LOCALSTACK_RUNTIME_ENDPOINT": api.url,
        "LOCALSTACK_RUNTIME_ID": RUNTIME_ID,
        "LOCAL_INIT_PORT": str(port),
        "LAMBDA_TASK_ROOT": str(task_root),
        "_HANDLER": "handler.handle",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout),
        "AWS_LAMBDA_FUNCTION_NAME": "demo",
    }
    log = (tmp_path / "environment.log").open("wb")
    process = subprocess.Popen([sys.executable, str(BOOTSTRAP)], env=env, cwd=task_root, stdout=log, stderr=log)
    log.close()
    return process, api, port


@pytest.fixture
def environment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Environment]:
    process, api, port = start(tmp_path, request.param)
    try:
        assert api.next() == Call(f"/_localstack_lambda/{RUNTIME_ID}/status/{RUNTIME_ID}/ready", b"{}")
        yield Environment(process, api, port)
    finally:
        process.kill()
        process.wait()
        api.server.shutdown()


HANDLER_THAT_LOGS = """
    import logging, sys

    # Bound to the original stdout at import time, as Powertools' Logger is.
    log = logging.getLogger("demo")
    log.addHandler(logging.StreamHandler(sys.stdout))
    log.setLevel(logging.INFO)

    def handle(event, context):
        print("printed", event["n"])
        log.info("logged %s", event["n"])
        return {"doubled": event["n"] * 2}
"""


@pytest.mark.parametrize("environment", [HANDLER_THAT_LOGS], indirect=True)
def test_an_invocation_reports_its_logs_then_the_handlers_result(environment: Environment) -> None:
    environment.invoke({"n": 21})

    logs, response = environment.api.next(), environment.api.next()
    assert logs.path.endswith("/invocations/req-1/logs")
    lines = logs.json()["logs"].splitlines()
    assert lines[0] == "START RequestId: req-1 Version: $LATEST"
    assert lines[1:3] == ["printed 21", "logged 21"]
    assert lines[3] == "END RequestId: req-1"
    assert lines[4].startswith("REPORT RequestId: req-1\tDuration: ")
    assert response == Call(f"/_localstack_lambda/{RUNTIME_ID}/invocations/req-1/response", b'{"doubled": 42}')


@pytest.mark.parametrize("environment", [HANDLER_THAT_LOGS], indirect=True)
def test_invocations_in_turn_each_get_only_their_own_logs(environment: Environment) -> None:
    environment.invoke({"n": 1}, request_id="first")
    first_logs, _ = environment.api.next(), environment.api.next()
    environment.invoke({"n": 2}, request_id="second")
    second_logs, _ = environment.api.next(), environment.api.next()

    assert "printed 1" in first_logs.json()["logs"]
    assert "printed 1" not in second_logs.json()["logs"]
    assert "printed 2" in second_logs.json()["logs"]


FAILING_HANDLER = """
    def handle(event, context):
        raise ValueError("no such widget")
"""


@pytest.mark.parametrize("environment", [FAILING_HANDLER], indirect=True)
def test_an_exception_becomes_the_invocations_error(environment: Environment) -> None:
    environment.invoke({})

    logs, error = environment.api.next(), environment.api.next()
    assert error.path.endswith("/invocations/req-1/error")
    assert error.json()["errorType"] == "ValueError"
    assert error.json()["errorMessage"] == "no such widget"
    assert "Traceback" in logs.json()["logs"]


CONTEXT_HANDLER = """
    import os

    def handle(event, context):
        return {
            "remaining": context.get_remaining_time_in_millis(),
            "name": context.function_name,
            "request": context.aws_request_id,
            "trace": os.environ["_X_AMZN_TRACE_ID"],
        }
"""


@pytest.mark.parametrize("environment", [CONTEXT_HANDLER], indirect=True)
def test_the_context_counts_down_from_the_function_timeout(environment: Environment) -> None:
    environment.invoke({})

    environment.api.next()
    result = environment.api.next().json()
    assert 0 < result["remaining"] <= 3000
    assert result["name"] == "demo"
    assert result["request"] == "req-1"
    assert result["trace"].startswith("Root=1-")


def test_a_handler_that_cannot_be_imported_fails_the_environment_at_start(tmp_path: Path) -> None:
    process, api, _ = start(tmp_path, "import no_such_module\n")

    error = api.next()
    assert error.path == f"/_localstack_lambda/{RUNTIME_ID}/status/{RUNTIME_ID}/error"
    assert error.json()["errorType"] == "ModuleNotFoundError"
    assert process.wait(WAIT_SECONDS) == 1
    api.server.shutdown()
