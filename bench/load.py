"""The load scenario of tests/reliability/test_load.py on its own: 50 apps x 20 repositories under random pushes.

Prints throughput (files delivered per second: during the first sync, and while pushes arrive) and lag (push ->
acknowledged, p50/p95/p99), checks every app's files against its repositories at their last commit, and writes the
figures to bench/results/load.json. Exits 1 if any file is not as it should be.

Needs Postgres and Redis: BENCH_DATABASE_URL (an admin URL; a scratch database is created and dropped) and
BENCH_REDIS_URL (a database that is flushed), defaulting to the local services. Size it with DOCORA_LOAD_APPS,
DOCORA_LOAD_REPOSITORIES, DOCORA_LOAD_SECONDS, DOCORA_LOAD_PUSHES_PER_SECOND and DOCORA_LOAD_WORKERS.
Run: .venv/bin/python bench/load.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# localstack/ holds docora_local, the tooling this shares with the tests.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "localstack"))

from bench.scratch_database import scratch_database
from docora_local.harness.consumers import Clock
from docora_local.harness.load import LoadConfig, run_load, summary, write_results
from docora_local.harness.scan_stack import scan_stack

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")


def main() -> int:
    config = LoadConfig.from_env(os.environ)
    with scratch_database("docora_bench_load") as database_url:
        with redis.Redis.from_url(REDIS_URL) as client:
            client.flushdb()
        report = _run(config, database_url)
    write_results(report)
    print(summary(report))
    for line in report["mismatches"] + report["problems"]:
        print(line)
    return 1 if report["mismatches"] or report["problems"] else 0


def _run(config: LoadConfig, database_url: str) -> dict:
    with (
        tempfile.TemporaryDirectory() as scratch,
        pytest.MonkeyPatch.context() as monkeypatch,
        scan_stack(Path(scratch), database_url, REDIS_URL, monkeypatch) as stack,
    ):
        clock = Clock(REDIS_URL)
        try:
            return run_load(stack, clock, config, scratch=Path(scratch))
        finally:
            clock.close()


if __name__ == "__main__":
    sys.exit(main())
