"""The Lambda side of the local executor: LocalStack's runtime-init protocol, spoken by a plain Python process.

It runs under the interpreter named by LAMBDA_LOCAL_PYTHON (the Lambda runtime's Python version, so native
wheels in the function's zip load) and uses the standard library only. The protocol, as LocalStack 2026.3.0
speaks it (localstack/services/lambda_/invocation/executor_endpoint.py):

1. once the handler is imported, POST {LOCALSTACK_RUNTIME_ENDPOINT}/status/{LOCALSTACK_RUNTIME_ID}/ready
   (or .../error with the import failure, and exit);
2. LocalStack POSTs {"invoke-id", "invoked-function-arn", "payload", "trace-id"} to /invoke on our port;
3. answer 202, run the handler, then POST .../invocations/{id}/logs and .../response or .../error.

Output is captured at the file-descriptor level, so log handlers that kept a reference to the original
stdout (Powertools' Logger does) land in the invocation's logs too. Invocations run one at a time, as
LocalStack reserves an environment per invocation.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[Any, Any], Any]

_POST_TIMEOUT_SECONDS = 30
_PARENT_POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Runtime:
    """What LocalStack and the executor tell this process through its environment."""

    endpoint: str
    runtime_id: str
    port: int
    task_root: str
    handler: str
    timeout_seconds: int

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Runtime:
        return cls(
            endpoint=environ["LOCALSTACK_RUNTIME_ENDPOINT"],
            runtime_id=environ["LOCALSTACK_RUNTIME_ID"],
            port=int(environ["LOCAL_INIT_PORT"]),
            task_root=environ["LAMBDA_TASK_ROOT"],
            handler=environ["_HANDLER"],
            timeout_seconds=int(environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or 3),
        )

    def post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - LocalStack's own http:// endpoint
            self.endpoint + path, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=_POST_TIMEOUT_SECONDS) as response:  # noqa: S310
            response.read()


class Context:
    """The Lambda context object, with the attributes the Python runtime gives handlers."""

    def __init__(self, request_id: str, function_arn: str, timeout_seconds: int, environ: Mapping[str, str]) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: str, task_root: str) -> Handler:
    """`app.handler` (or `folder/module.handler`) from the function's code folder, ahead of anything installed."""
    sys.path.insert(0, task_root)
    module_name, _, attribute = spec.rpartition(".")
    module = importlib.import_module(module_name.replace("/", "."))
    return getattr(module, attribute)


def error_body(error: BaseException) -> bytes:
    lines = traceback.format_exception(error)
    return json.dumps({"errorMessage": str(error), "errorType": type(error).__name__, "stackTrace": lines}).encode()


class Invoker:
    """Runs invocations one at a time, with file descriptors 1 and 2 pointed at a capture file meanwhile."""

    def __init__(self, runtime: Runtime, handler: Handler, environ: MutableMapping[str, str]) -> None:
        self.runtime = runtime
        self.handler = handler
        self.environ = environ
        self._lock = threading.Lock()

    def run(self, invocation: Mapping[str, str]) -> None:
        with self._lock:
            request_id = invocation["invoke-id"]
            self.environ["_X_AMZN_TRACE_ID"] = invocation.get("trace-id", "")
            with captured_output() as logs:
                path, body = self._call(request_id, invocation)
            os.write(1, logs)  # the environment's own log keeps everything too
            text = logs.decode(errors="replace")
            self.runtime.post(f"/invocations/{request_id}/logs", json.dumps({"logs": text}).encode())
            self.runtime.post(f"/invocations/{request_id}/{path}", body)

    def _call(self, request_id: str, invocation: Mapping[str, str]) -> tuple[str, bytes]:
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.monotonic()
        context = Context(request_id, invocation["invoked-function-arn"], self.runtime.timeout_seconds, self.environ)
        try:
            event = json.loads(invocation.get("payload") or "{}")
            result = json.dumps(self.handler(event, context)).encode()
            path = "response"
        except BaseException as error:  # noqa: BLE001 - any failure, sys.exit included, is the result, as on AWS
            traceback.print_exc()
            result, path = error_body(error), "error"
        elapsed_ms = (time.monotonic() - started) * 1000
        print(f"END RequestId: {request_id}", flush=True)
        print(f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms", flush=True)
        return path, result


@contextmanager
def captured_output() -> Iterator[bytearray]:
    """Points fds 1 and 2 at a temporary file while the block runs; afterwards the bytearray holds what came."""
    captured = bytearray()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 1)
        os.dup2(capture.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in zip((1, 2), saved, strict=True):
                os.dup2(original, fd)
                os.close(original)
            capture.seek(0)
            captured.extend(capture.read())


def serve(runtime: Runtime, invoker: Invoker) -> ThreadingHTTPServer:
    class InvokeHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            invocation = json.loads(self.rfile.read(length) or b"{}")
            self.send_response(202)
            self.end_headers()
            threading.Thread(target=invoker.run, args=(invocation,), daemon=True).start()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", runtime.port), InvokeHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def exit_with_parent(parent_pid: int) -> None:
    """LocalStack may die without stopping us (kill -9); an environment must not outlive it."""
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_SECONDS)
    os._exit(0)


def main() -> None:
    # Run as a script, this file's folder heads sys.path; the function must not import the executor's modules.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != here]
    runtime = Runtime.from_environ(os.environ)
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True).start()
    try:
        handler = load_handler(runtime.handler, runtime.task_root)
    except Exception as error:  # noqa: BLE001 - reported to LocalStack, which fails the environment
        traceback.print_exc()
        runtime.post(f"/status/{runtime.runtime_id}/error", error_body(error))
        sys.exit(1)
    serve(runtime, Invoker(runtime, handler, os.environ))
    runtime.post(f"/status/{runtime.runtime_id}/ready", b"{}")
    threading.Event().wait()


if __name__ == "__main__":
    main()
