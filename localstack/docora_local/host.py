"""LocalStack in host mode: the command and settings that run it without Docker, and its readiness check.

localstack-core 2026.3.0 runs only on Python 3.13, from its own virtual environment (.venv-localstack,
built by `make` from localstack/constraints.txt) with the `local` Lambda executor of localstack/executor/
installed. Its functions run as host processes of the project's Python, so they reach Postgres and Redis
on 127.0.0.1 like everything else. The settings (LOCALSTACK.md §1.4):

- GATEWAY_LISTEN and LOCALSTACK_HOST: loopback only, on the given port (4566 for `make run`);
- FILESYSTEM_ROOT and TMPDIR: LocalStack's files, unzipped functions included, under the state folder;
- SQS_ENDPOINT_STRATEGY=path: queue URLs on 127.0.0.1, as `*.localhost.localstack.cloud` may not resolve;
- DNS_ADDRESS=0, DISABLE_EVENTS=1, SKIP_SSL_CERT_DOWNLOAD=1: no DNS server, no analytics, no downloads;
- LAMBDA_RUNTIME_EXECUTOR=local, LAMBDA_LOCAL_PYTHON, LAMBDA_LOCAL_LOG_DIR: the executor and its settings;
- LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC=1: an idle queue is polled each second, not
  every ten, so a message sent after a quiet spell is picked up as quickly as on AWS.

The repository's localstack/ folder is no package (docora_local/__init__.py), so `-m localstack.runtime.main`
finds the real LocalStack from any working folder.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from pathlib import Path

from docora_local import REPO

VENV = REPO / ".venv-localstack"
LOOPBACK = "127.0.0.1"
PORT = 4566
REGION = "us-east-1"
# LocalStack accepts any credentials; fixed dummy ones keep a stray call from reaching a real AWS account.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")


class Unavailable(Exception):
    """LocalStack cannot run here; the message says what to do instead."""


def python() -> Path:
    interpreter = VENV / "bin" / "python"
    if not interpreter.exists():
        raise Unavailable(
            f"{interpreter.relative_to(REPO)} is missing: `make run` and `make test` build it with Python 3.13 "
            "(pyenv install 3.13.0); or run LocalStack yourself (localstack/docker-compose.yml) and "
            "set AWS_ENDPOINT_URL=http://127.0.0.1:4566"
        )
    return interpreter


def command() -> list[str]:
    return [str(python()), "-m", "localstack.runtime.main"]


def endpoint(port: int = PORT) -> str:
    return f"http://{LOOPBACK}:{port}"


def environment(environ: Mapping[str, str], *, state: Path, port: int = PORT, lambda_python: Path) -> dict[str, str]:
    """LocalStack's environment: a few of the caller's variables (never PYTHONPATH) plus its settings."""
    env = {name: environ[name] for name in _INHERITED if name in environ}
    env.update(
        GATEWAY_LISTEN=f"{LOOPBACK}:{port}",
        LOCALSTACK_HOST=f"{LOOPBACK}:{port}",
        FILESYSTEM_ROOT=str(state / "fs"),
        TMPDIR=str(state / "tmp"),
        SQS_ENDPOINT_STRATEGY="path",
        DNS_ADDRESS="0",
        DISABLE_EVENTS="1",
        SKIP_SSL_CERT_DOWNLOAD="1",
        EAGER_SERVICE_LOADING="0",
        LAMBDA_RUNTIME_EXECUTOR="local",
        LAMBDA_LOCAL_PYTHON=str(lambda_python),
        LAMBDA_LOCAL_LOG_DIR=str(lambda_logs(state)),
        LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC="1",
    )
    return env


def prepare(state: Path) -> None:
    """Create the folders LocalStack expects; the working folder is `state` itself."""
    for folder in (state, state / "fs", state / "tmp", lambda_logs(state)):
        folder.mkdir(parents=True, exist_ok=True)


def lambda_logs(state: Path) -> Path:
    return state / "lambda-logs"


def is_ready(port: int = PORT) -> bool:
    """LocalStack's health endpoint answers, and so its gateway and service plugins are loaded."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=2)
    try:
        connection.request("GET", "/_localstack/health")
        response = connection.getresponse()
        return response.status == 200 and "services" in json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):
        return False
    finally:
        connection.close()
