"""A LocalStack runtime executor that starts each execution environment as a host process running bootstrap.py.

Read from LocalStack's environment:

- LAMBDA_LOCAL_PYTHON (required): the interpreter functions run on. Use the Lambda runtime's Python version,
  so that native wheels packaged in the function's zip load.
- LAMBDA_LOCAL_LOG_DIR: where each environment writes its output, as `<function name>-<environment id>.log`
  (default: `lambda-logs` in the temporary folder).

What it does not do: isolate a function from the host or from other functions, enforce the function's timeout
(it only feeds get_remaining_time_in_millis) or memory size, or run container images, layers, extensions or
runtimes other than Python; prepare_version refuses those, so the function shows State=Failed with the reason.

It uses LocalStack's internal Lambda API (RuntimeExecutor, ExecutorEndpoint), so it is pinned to the one
localstack-core release it was written against.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from concurrent.futures import InvalidStateError
from pathlib import Path

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import ExecutorEndpoint
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import LambdaRuntimeException, RuntimeExecutor
from localstack.utils.net import get_free_tcp_port

LOOPBACK = "127.0.0.1"
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
STOP_TIMEOUT_SECONDS = 5
# Only these come from LocalStack's own environment; everything else is the function's, as on AWS.
_INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


class EnvironmentExited(Exception):
    """The function's process ended on its own; LocalStack then discards the environment."""


class LocalProcessExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = ExecutorEndpoint(id, container_address=LOOPBACK)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir() / f"{function_version.id.function_name}-{id}.log"
        self._stopping = False

    def start(self, env_vars: dict[str, str]) -> None:
        self.executor_endpoint.start()
        port = get_free_tcp_port()
        self.executor_endpoint.container_port = port
        code_dir = self.function_version.config.code.get_unzipped_code_location()
        env = process_environment(os.environ, env_vars, code_dir=code_dir, port=port)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - the configured interpreter and our own script
                [local_python(), str(BOOTSTRAP)],
                env=env,
                cwd=code_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        threading.Thread(target=self._fail_waiters_on_exit, name=f"lambda-{self.id}", daemon=True).start()
        self.executor_endpoint.wait_for_startup()

    def stop(self) -> None:
        self._stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(KeyError):  # LocalStack may stop an environment twice after a failed start
            self.executor_endpoint.shutdown()

    def get_address(self) -> str:
        return LOOPBACK

    def get_endpoint_from_executor(self) -> str:
        # Becomes AWS_ENDPOINT_URL=http://127.0.0.1:<gateway port> inside the function.
        return LOOPBACK

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{LOOPBACK}:{port}{self.executor_endpoint.get_endpoint_prefix()}"

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        function = function_version.config
        if function.package_type != PackageType.Zip or not str(function.runtime or "").startswith("python"):
            raise LambdaRuntimeException("the local executor runs zip-packaged Python functions only")
        if function.layers:
            raise LambdaRuntimeException("the local executor does not support layers")
        local_python()
        function.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        try:
            local_python()
        except LambdaRuntimeException:
            return False
        return True

    def _fail_waiters_on_exit(self) -> None:
        """Without this, a process that dies early leaves LocalStack waiting for it until its own timeouts."""
        assert self.process is not None
        code = self.process.wait()
        if self._stopping:
            return
        error = EnvironmentExited(f"the function's process exited with code {code}; see {self.log_path}")
        for future in (self.executor_endpoint.startup_future, self.executor_endpoint.invocation_future):
            if future is not None:
                with contextlib.suppress(InvalidStateError):  # it completed meanwhile
                    future.set_exception(error)


def local_python() -> str:
    python = os.environ.get("LAMBDA_LOCAL_PYTHON", "")
    if not python or not os.access(python, os.X_OK):
        raise LambdaRuntimeException(f"LAMBDA_LOCAL_PYTHON must name a Python interpreter (it is {python!r})")
    return python


def log_dir() -> Path:
    folder = Path(os.environ.get("LAMBDA_LOCAL_LOG_DIR") or Path(tempfile.gettempdir()) / "lambda-logs")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def process_environment(
    own: Mapping[str, str], function: Mapping[str, str], *, code_dir: Path, port: int
) -> dict[str, str]:
    """The function's environment as LocalStack built it, plus what bootstrap.py needs to find its way."""
    env = {name: own[name] for name in _INHERITED_VARIABLES if name in own}
    env.update({name: str(value) for name, value in function.items()})
    env["LAMBDA_TASK_ROOT"] = str(code_dir)
    env["LOCAL_INIT_PORT"] = str(port)
    env["PYTHONUNBUFFERED"] = "1"
    return env
