"""What `make run` starts, decided before anything starts, and the environment the functions get from it.

Postgres and Redis come from DATABASE_URL and REDIS_URL when they answer, else embedded ones start. AWS
is LocalStack on 127.0.0.1:4566, started here, unless AWS_ENDPOINT_URL names another endpoint (LocalStack
in Docker, say). The GitHub stand-ins run only with GITHUB=local. A port that is taken fails the plan, so
a clash costs nothing. The caller's whole environment passes through; the runner adds only what is unset.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from docora_local import endpoints, host, servers
from docora_local.processes import StartupError, say
from docora_local.servers import LOOPBACK

GITHUB_API_PORT = 8081
GIT_HTTP_PORT = 8082


@dataclass(frozen=True)
class Plan:
    database_url: str
    redis_url: str
    aws_endpoint_url: str
    embedded_postgres: bool
    embedded_redis: bool
    own_localstack: bool
    github_repos: Path | None  # with GITHUB=local, the folder the stand-ins serve


def make_plan(environ: Mapping[str, str], state: Path) -> Plan:
    database_url = reuse_if_answers(environ, "DATABASE_URL", endpoints.postgres_answers, "Postgres")
    redis_url = reuse_if_answers(environ, "REDIS_URL", endpoints.redis_answers, "Redis")
    if database_url is None:
        require_free_port(servers.POSTGRES_PORT, "embedded Postgres", state / "postgres" / "postmaster.pid")
    if redis_url is None:
        require_free_port(servers.REDIS_PORT, "embedded Redis", None)
    aws_endpoint_url = environ.get("AWS_ENDPOINT_URL", "").strip()
    if aws_endpoint_url:
        if not endpoints.http_answers(aws_endpoint_url):
            # Not replaced by our own: an endpoint the caller chose holds state they may want.
            raise StartupError(f"AWS_ENDPOINT_URL ({aws_endpoint_url}) does not answer")
        say(f"AWS: using AWS_ENDPOINT_URL {aws_endpoint_url}")
    else:
        try:
            host.python()
        except host.Unavailable as error:
            raise StartupError(str(error)) from None
        require_free_port(host.PORT, "LocalStack", None)
    return Plan(
        database_url=database_url or servers.POSTGRES_URL,
        redis_url=redis_url or servers.REDIS_URL,
        aws_endpoint_url=aws_endpoint_url or host.endpoint(),
        embedded_postgres=database_url is None,
        embedded_redis=redis_url is None,
        own_localstack=not aws_endpoint_url,
        github_repos=github_repos(environ, state),
    )


def github_repos(environ: Mapping[str, str], state: Path) -> Path | None:
    mode = environ.get("GITHUB", "").strip().lower()
    if mode not in ("", "local"):
        raise StartupError(f"GITHUB must be `local` or unset, not {mode!r}")
    if not mode:
        return None
    for port, what in ((GITHUB_API_PORT, "the GitHub REST stand-in"), (GIT_HTTP_PORT, "the git smart-HTTP stand-in")):
        require_free_port(port, what, None)
    return Path(environ.get("GITHUB_REPOS", "").strip() or state / "repos").expanduser().resolve()


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
        raise StartupError(f"{LOOPBACK}:{port}, reserved for {what}, is already taken{leftover}")


def child_environment(environ: Mapping[str, str], plan: Plan, state: Path) -> dict[str, str]:
    """The caller's whole environment, plus only what Docora needs and the caller did not set."""
    env = dict(environ)
    env["DATABASE_URL"] = plan.database_url
    env["REDIS_URL"] = plan.redis_url
    env["ENCRYPTION_KEY"] = local_secret(environ, state, "ENCRYPTION_KEY", lambda: secrets.token_hex(32))
    env["ADMIN_API_KEY"] = local_secret(environ, state, "ADMIN_API_KEY", lambda: secrets.token_hex(32))
    if not env.get("ALLOW_PRIVATE_WEBHOOK_TARGETS", "").strip():
        # Local receivers listen on loopback; the SSRF guard stays on everywhere but `make run`.
        env["ALLOW_PRIVATE_WEBHOOK_TARGETS"] = "true"
    if plan.github_repos is not None:
        env["GITHUB_API_URL"] = f"http://{LOOPBACK}:{GITHUB_API_PORT}"
        env["GIT_BASE_URL"] = f"http://{LOOPBACK}:{GIT_HTTP_PORT}"
    env["AWS_ENDPOINT_URL"] = plan.aws_endpoint_url
    if plan.own_localstack:
        # Dummy credentials win with our own LocalStack: a call that misses the endpoint then fails
        # instead of reaching whatever real AWS account the shell is logged in to.
        env.update(host.CREDENTIALS)
    for name, value in {**host.CREDENTIALS, "AWS_DEFAULT_REGION": host.REGION}.items():
        if not env.get(name, "").strip():
            env[name] = value
    return env


def local_secret(environ: Mapping[str, str], state: Path, name: str, generate: Callable[[], str]) -> str:
    """The caller's value if set; else the one kept in the state folder, made on first use."""
    given = environ.get(name, "").strip()
    if given:
        return given
    path = state / name.lower()
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
