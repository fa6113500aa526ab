"""`make run`: the whole of Docora on one machine, deployed on LocalStack as on AWS, stopped cleanly by Ctrl-C.

It starts what is missing (plan.py decides, before anything starts): LocalStack in host mode,
Postgres and Redis, and with GITHUB=local the GitHub stand-ins. It applies the migrations, packages the app
with `chalice package` while the servers start, deploys the stack (deploy.py), writes
.docora/local.env, prints how to use the API and then follows the functions' logs. Every Docora variable
in the caller's environment reaches every function; ENCRYPTION_KEY and ADMIN_API_KEY, when unset, are
generated once and kept in .docora/ so that stored tokens stay readable across runs.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

from chalicelib.config import ConfigurationError, Settings
from docora_local import REPO, deploy, host, plan, servers
from docora_local.lambda_logs import LambdaLogTail
from docora_local.processes import Child, Interrupted, StartupError, Supervisor, say

STATE = REPO / ".docora"
RECEIVER = REPO / "examples" / "receiver" / "receiver.py"


def main() -> int:
    supervisor = Supervisor()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, supervisor.request_stop)
    try:
        deployment, stack = start(supervisor, os.environ)
        tail = LambdaLogTail(host.lambda_logs(servers.localstack_state(STATE)), deployment.functions)
        return supervisor.watch(every=tail.print_new if stack.own_localstack else lambda: None)
    except (StartupError, ConfigurationError, deploy.DeployError) as error:
        say(f"cannot start: {error}")
        return 1
    except Interrupted:
        return 0
    finally:
        supervisor.stop_all()


def start(supervisor: Supervisor, environ: Mapping[str, str]) -> tuple[deploy.Deployment, plan.Plan]:
    began = time.monotonic()
    STATE.mkdir(mode=0o700, exist_ok=True)
    stack = plan.make_plan(environ, STATE)
    env = plan.child_environment(environ, stack, STATE)
    settings = Settings.from_env(env)  # the functions would refuse a bad variable; say so before starting
    package_dir = STATE / "package"
    shutil.rmtree(package_dir, ignore_errors=True)
    packaging = supervisor.begin(
        "chalice package", deploy.package_command(package_dir, stage="local"), cwd=REPO, env=env
    )
    localstack = start_servers(supervisor, environ, stack)
    migrations = supervisor.begin("migrations", [sys.executable, "-m", "chalicelib.migrate"], cwd=REPO, env=env)
    if localstack:
        servers.await_localstack(supervisor, localstack)
    say("migrations: " + supervisor.finish(migrations).strip().removeprefix("migrate: "))
    supervisor.finish(packaging)
    deployment = deploy_stack(package_dir, env, stack)
    plan.write_private(
        STATE / "local.env", f"DOCORA_API_URL={deployment.api_url}\nDOCORA_ADMIN_API_KEY={settings.admin_api_key}\n"
    )
    say(f"API on {deployment.api_url}; GET /health: {health(deployment.api_url)}")
    say(f"ready in {time.monotonic() - began:.1f} s")
    print_usage(deployment, stack)
    return deployment, stack


def start_servers(supervisor: Supervisor, environ: Mapping[str, str], stack: plan.Plan) -> Child | None:
    """Start them all; wait for Postgres and Redis, and return LocalStack (ours, if any) to be awaited later."""
    server_env = servers.server_environment(environ)
    localstack = servers.start_localstack(supervisor, environ, STATE) if stack.own_localstack else None
    redis = servers.start_redis(supervisor, server_env, STATE) if stack.embedded_redis else None
    postgres = servers.start_postgres(supervisor, server_env, STATE) if stack.embedded_postgres else None
    if stack.github_repos is not None:
        ports = (plan.GITHUB_API_PORT, plan.GIT_HTTP_PORT)
        servers.start_github_standins(supervisor, server_env, STATE, stack.github_repos, ports)
        say(f"GitHub stand-ins on 127.0.0.1:{ports[0]} (REST) and :{ports[1]} (git), serving {stack.github_repos}")
    if redis:
        servers.await_redis(supervisor, redis)
    if postgres:
        servers.await_postgres(supervisor, postgres)
    return localstack


def deploy_stack(package_dir: Path, env: Mapping[str, str], stack: plan.Plan) -> deploy.Deployment:
    # Imported here: boto3 costs half a second, and only this step needs it.
    import boto3

    began = time.monotonic()
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    deployment = deploy.deploy(package_dir, session=session, endpoint=stack.aws_endpoint_url, env=env)
    say(f"deployed stack {deployment.stack_name} in {time.monotonic() - began:.1f} s")
    return deployment


def health(api_url: str) -> str:
    try:
        response = requests.get(f"{api_url}/health", timeout=30)
    except requests.RequestException as error:
        return f"no answer ({error})"
    return f"{response.status_code} {response.text[:300]}"


def print_usage(deployment: deploy.Deployment, stack: plan.Plan) -> None:
    local_env = os.path.relpath(STATE / "local.env")
    json_type = "-H 'Content-Type: application/json'"
    onboard = (
        f'curl -s -X POST "$DOCORA_API_URL/api/apps/onboard" -H "Authorization: Bearer $DOCORA_ADMIN_API_KEY" '
        f"""{json_type} -d '{{"base_url":"http://127.0.0.1:9000","app_name":"demo","email":"dev@example.com"}}'"""
    )
    receiver = (
        f"{os.path.relpath(sys.executable)} {os.path.relpath(RECEIVER)} --key <client_auth_key> --dir .docora/mirror"
    )
    example = "https://github.com/<owner>/<name>" if stack.github_repos else "https://github.com/octocat/Hello-World"
    register = (
        f'curl -s -X POST "$DOCORA_API_URL/api/repositories" -H "Authorization: Bearer <token>" '
        f"""{json_type} -d '{{"github_url":"{example}"}}'"""
    )
    served = f"   (served from {stack.github_repos}/<owner>/<name>)\n" if stack.github_repos else ""
    logs = "The functions' logs follow." if stack.own_localstack else "Functions log to the endpoint's CloudWatch Logs."
    print(
        f"\nDocora API: {deployment.api_url}   (URL and operator key in {local_env})\n\n"
        f"  set -a; . {local_env}; set +a\n\n"
        f"1. Onboard an app whose receiver listens on 127.0.0.1:9000:\n   {onboard}\n"
        f'2. Run the reference receiver with the "client_auth_key" that returned:\n   {receiver}\n'
        f'3. Register a repository with the "token" it returned:\n   {register}\n{served}\n'
        f"{logs} Ctrl-C stops everything this started.\n",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
