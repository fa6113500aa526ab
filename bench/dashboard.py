"""Server time of every dashboard page with 1,000 apps, 2,000 repositories and 10,000 watches in Postgres.

The pages are served in process through chalice.test.Client (no network between the browser and the function), over
real Postgres and Redis and SQS on moto, so the time is the function's: the session check in Redis, the SQL and the
template. Prints p50 and max of 20 requests per page and fails when a p50 is over 200 ms (issue 16).

Needs Postgres and Redis: BENCH_DATABASE_URL (an admin URL; a scratch database is created and dropped) and
BENCH_REDIS_URL, defaulting to the local services. Run: .venv/bin/python bench/dashboard.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import psycopg
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalice.test import Client

from bench.scratch_database import scratch_database
from chalicelib import wiring
from chalicelib.config import Settings
from chalicelib.domain import tokens
from chalicelib.domain.operator_sessions import SESSION_LIFETIME, OperatorSession
from chalicelib.services import admin

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
APPS, REPOSITORIES, WATCHES_PER_APP, ROUNDS, BUDGET_MS = 1000, 2000, 10, 20, 200.0

# 1,000 apps, each watching 10 of 2,000 repositories (10,000 watches, one in ten failed), and 20,000 attempts.
_SEED = [
    """
INSERT INTO apps (id, app_name, email, base_url, token_lookup, token_hash, client_auth_key_encrypted,
                  failing_since, last_success_at)
SELECT 'app_' || lpad(to_hex(n), 24, '0'), 'App ' || n, 'ops' || n || '@example.com',
       'https://r' || n || '.example.com',
       decode(md5(n::text), 'hex'), 'hash', 'a:b:c',
       CASE WHEN n %% 10 = 0 THEN now() - interval '2 hours' END, now() - (n || ' minutes')::interval
  FROM generate_series(1, %(apps)s) AS n""",
    """INSERT INTO repositories (id, github_url, owner, name, branch, is_private, last_head, last_checked_at,
                          next_check_at)
SELECT 'repo_' || lpad(to_hex(n), 24, '0'), 'https://github.com/acme/repo' || n, 'acme', 'repo' || n, 'main', false,
       md5(n::text) || 'abcdefgh', now() - interval '1 minute', now() + interval '4 minutes'
  FROM generate_series(1, %(repositories)s) AS n""",
    """INSERT INTO watches (app_id, repository_id, status, attempts, last_error)
SELECT 'app_' || lpad(to_hex(a), 24, '0'),
       'repo_' || lpad(to_hex(((a * 7 + w * 131) %% %(repositories)s) + 1), 24, '0'),
       CASE WHEN (a + w) %% 10 = 0 THEN 'failed' ELSE 'synced' END,
       CASE WHEN (a + w) %% 10 = 0 THEN 5 ELSE 0 END,
       CASE WHEN (a + w) %% 10 = 0 THEN 'the receiver answered 500' END
  FROM generate_series(1, %(apps)s) AS a, generate_series(1, %(per_app)s) AS w
ON CONFLICT DO NOTHING""",
    """INSERT INTO delivery_attempts (app_id, repository_id, path, event, delivery_id, attempt, status_code, error,
                               duration_ms, attempted_at)
SELECT w.app_id, w.repository_id, 'docs/file' || n || '.md', 'create', md5(w.app_id || w.repository_id || n), 1,
       CASE WHEN w.status = 'failed' THEN 500 ELSE 200 END, w.last_error, 40, now() - (n || ' minutes')::interval
  FROM watches w, generate_series(1, 2) AS n""",
    "ANALYZE",
]


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with scratch_database("docora_bench_dashboard") as url, mock_aws():
        sqs = boto3.client("sqs")
        for name in ("docora-scan", "docora-delivery"):
            sqs.create_queue(QueueName=name)
        with psycopg.connect(url) as connection:
            for statement in _SEED:
                connection.execute(statement, {"apps": APPS, "repositories": REPOSITORIES, "per_app": WATCHES_PER_APP})
        report = _measure(url)
    over = {page: p50 for page, (p50, _) in report.items() if p50 > BUDGET_MS}
    for page, (p50, worst) in report.items():
        print(f"{page:60} p50 {p50:7.1f} ms  max {worst:7.1f} ms")
    if over:
        raise SystemExit(f"over {BUDGET_MS:.0f} ms: {over}")


def _measure(url: str) -> dict[str, tuple[float, float]]:
    settings = Settings(database_url=url, redis_url=REDIS_URL, encryption_key=bytes(32), admin_api_key="k" * 32)
    deps, configs = wiring.build(settings), wiring.configs_from(settings)
    wiring.deps, wiring.configs = (lambda: deps), (lambda: configs)
    now = datetime.now(UTC)
    session = OperatorSession(tokens.new_session_id(), tokens.new_csrf_token(), now, now + SESSION_LIFETIME)
    deps.sessions.put(session, now=now)
    app_id = "app_" + "0" * 23 + "a"  # App 10, failing
    with deps.store.transaction() as tx:
        repository_id = tx.watches.statuses(app_id)[0].repository.id
    operation = admin.resync_app(app_id, now=now, batch_size=1, deps=deps)
    pages = ["/admin", "/admin/apps", "/admin/apps?search=App+99", "/admin/apps?sort=failing_since&offset=500",
             f"/admin/apps/{app_id}", f"/admin/apps/{app_id}/delete", f"/admin/apps/{app_id}/watches/{repository_id}",
             "/admin/failed", "/admin/failed?error=500&offset=900", "/admin/failed?repository=repo1",
             "/admin/repositories", "/admin/repositories?sort=last_checked_at&offset=1900", "/admin/operations",
             f"/admin/operations/{operation.id}", "/admin/onboard"]  # fmt: skip
    headers = {"Accept": "text/html", "Cookie": f"docora_session={session.id}"}
    import app

    report = {}
    with Client(app.app) as client:
        for page in pages:
            samples = []
            for _ in range(ROUNDS + 2):
                start = time.perf_counter()
                response = client.http.get(page, headers=headers)
                samples.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{page} answered {response.status_code}")
            report[page] = (statistics.median(samples[2:]), max(samples[2:]))
    deps.store.close()
    return report


if __name__ == "__main__":
    main()
