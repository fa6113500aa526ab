"""The load scenario of tests/reliability/test_load.py on its own: 50 apps x 20 repositories under random pushes,
run twice: with every receiver answering, then with 5 apps' receivers hanging.

Docora runs as deployed: its consumers in processes of their own (20 delivering, 5 scanning, one sweeping, as
their concurrency in Lambda), SQS and S3 in a moto server of its own. Prints throughput (files delivered per second:
during the first sync, and while pushes arrive) and lag (push -> acknowledged, p50/p95/p99) for each run, and how
much the hanging receivers changed the other apps' p99; checks every healthy app's files against its repositories
at their last commit; writes the figures to bench/results/load.json. Exits 1 if any file is not as it should be.

`--profile` also profiles the delivery consumers of the first run and prints where their time went (this slows
them, so its figures are not the ones to quote).

Needs Postgres and Redis: BENCH_DATABASE_URL (an admin URL; a scratch database is created and dropped) and
BENCH_REDIS_URL (a database that is flushed), defaulting to the local services. Size it with DOCORA_LOAD_APPS,
DOCORA_LOAD_REPOSITORIES, DOCORA_LOAD_SECONDS, DOCORA_LOAD_PUSHES_PER_SECOND, DOCORA_LOAD_DELIVERY_CONCURRENCY,
DOCORA_LOAD_SCAN_CONCURRENCY and DOCORA_LOAD_HANGING_APPS (5).
Run: .venv/bin/python bench/load.py
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import pstats
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# localstack/ holds docora_local, the tooling this shares with the tests.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "localstack"))

from bench.scratch_database import scratch_database
from docora_local.harness.load import LoadConfig, run_load, summary, write_results
from docora_local.harness.scan_stack import scan_stack
from docora_local.standins.moto_server import moto_server

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
FIRST_SYNC_GOAL = 250  # files per second
LAG_P99_GOAL_MS = 1000
HANGING_GOAL = 0.20  # the most the others' p99 lag may change with receivers hanging


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", action="store_true", help="profile the first run's delivery consumers")
    args = parser.parse_args()
    config = LoadConfig.from_env(os.environ)
    hanging = int(os.environ.get("DOCORA_LOAD_HANGING_APPS", "5"))
    reports = {}
    with tempfile.TemporaryDirectory() as profiles:
        profile_dir = Path(profiles) if args.profile else None
        # The same apps' lag is compared: those that still answer in the second run.
        answering = dataclasses.replace(config, hanging_apps=0, compared_from=hanging)
        reports["answering"] = _run(answering, profile_dir)
        if profile_dir is not None:
            _print_profile(profile_dir)
    reports["hanging"] = _run(dataclasses.replace(config, hanging_apps=hanging, compared_from=hanging), None)
    write_results(reports)
    for name, report in reports.items():
        print(f"-- {name}")
        print(summary(report))
        for line in report["mismatches"] + report["problems"]:
            print(line)
    _print_goals(reports)
    broken = any(report["mismatches"] or report["problems"] for report in reports.values())
    return 1 if broken else 0


def _run(config: LoadConfig, profile_dir: Path | None) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    with scratch_database("docora_bench_load") as database_url:
        with redis.Redis.from_url(REDIS_URL) as client:
            client.flushdb()
        with (
            tempfile.TemporaryDirectory() as scratch,
            pytest.MonkeyPatch.context() as monkeypatch,
            moto_server(spawn) as aws_endpoint_url,
            scan_stack(Path(scratch), database_url, REDIS_URL, monkeypatch, aws_endpoint_url=aws_endpoint_url) as stack,
        ):
            return run_load(
                stack, config, aws_endpoint_url=aws_endpoint_url, scratch=Path(scratch), profile_dir=profile_dir
            )


def _print_goals(reports: dict[str, dict[str, Any]]) -> None:
    answering, hanging = reports["answering"], reports["hanging"]
    first_sync = answering["first_sync"]["files_per_second"]
    p99 = answering["steady"]["lag_ms"]["p99"]
    others_before = answering["steady"]["lag_ms_compared"]["p99"]
    others_after = hanging["steady"]["lag_ms_compared"]["p99"]
    change = others_after / others_before - 1
    print(f"goals: first sync >= {FIRST_SYNC_GOAL} files/s: {_verdict(first_sync >= FIRST_SYNC_GOAL)}; "
          f"lag p99 <= {LAG_P99_GOAL_MS} ms: {_verdict(p99 <= LAG_P99_GOAL_MS)}; "
          f"with {hanging['config']['hanging_apps']} receivers hanging, the other apps' lag p99 "
          f"{others_before:.0f} -> {others_after:.0f} ms ({change:+.0%}; goal within {HANGING_GOAL:.0%}): "
          f"{_verdict(abs(change) <= HANGING_GOAL)}")  # fmt: skip
    print(f"first sync: {first_sync:.1f} files/s")
    print(f"lag p99: {p99:.0f} ms")


def _print_profile(profile_dir: Path) -> None:
    files = sorted(str(path) for path in profile_dir.glob("deliver_changes-*.prof"))
    if not files:
        return
    print("-- where the delivery consumers' time went (cProfile over every delivery process, cumulative)")
    stats = pstats.Stats(*files, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(r"chalicelib|botocore/client|psycopg|redis/client|urllib3", 25)


def _verdict(met: bool) -> str:
    return "met" if met else "missed"


if __name__ == "__main__":
    sys.exit(main())
