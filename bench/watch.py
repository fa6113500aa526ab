"""The watch loop at scale: 10,000 repositories checked every 5 minutes, what one cycle costs, and what it would cost
a month at AWS list prices.

What runs: the real head-check service (`services.head_checks.check_due_heads`, as the sweep calls it) over the real
adapters: Postgres (a scratch database), Redis, SQS and S3 served by moto in a process of its own, and
`localstack/docora_local/standins/ls_refs.py` in place of GitHub, in a process of its own. The stand-in answers
`ls-refs` from a table after a set latency (30 ms by default, about GitHub's), so the run measures Docora's side
rather than `git http-backend`, which burns tens of milliseconds of CPU per request. It also serves fetches of the
commits it makes, so the repositories that moved are scanned for real.

A run:
1. seeds N repositories (default 10,000), each watched by one of N/100 apps, its head recorded as snapshotted;
2. checks them all once (cycle 1: every head unchanged), then moves 1% of the heads and, 5 minutes later by the
   service's clock, checks them all again (cycle 2);
3. scans what cycle 2 sent to the scan queue, with the real scan service, and counts its fan-out.
Checks run at the concurrency and the function memory the prod stage deploys (`.chalice/config.json`).

Counted: ls-refs answered per repository (the stand-in's count), messages on the scan queue (moto's count), Postgres
statements (every `execute` of the process's psycopg cursors), scan requests and delivery requests.

The cost line, at AWS list prices (us-east-1, December 2026): Lambda $0.0000166667 per GB-s and $0.20 per million
requests; SQS $0.40 per million requests. Assumed, and not measured here:
- the sweep runs once a minute (43,200 invocations a month) whether or not checks are due; its GB-s per month are
  this run's check time per cycle, times the cycles in 30 days (8,640 at 5 minutes), times its memory, plus an
  empty sweep's time (measured) for every invocation;
- a Lambda SQS event source long-polls each queue with 5 pollers, each one ReceiveMessage per 20 s when the queue is
  empty: 1.3 million requests a month for the two queues, whatever the number of repositories;
- Postgres (RDS) and Redis (ElastiCache) are fixed-size instances: not priced per request, so not in the line;
- Lambda's duration is this machine's wall time: a Lambda with this memory has a fraction of a vCPU, this machine two
  cores, so CPU-bound parts would take longer there; the checks wait on the network almost all the time;
- the line "with 1% moving" adds the scans this run made, at their measured time and the scan function's memory.

Run: .venv/bin/python bench/watch.py [--repositories 10000] [--latency 0.03]. Needs Postgres and Redis
(BENCH_DATABASE_URL, an admin URL; BENCH_REDIS_URL, default redis://127.0.0.1:6379/11).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "localstack")]

from bench.scratch_database import scratch_database  # noqa: E402
from docora_local.standins.ls_refs import ls_refs_server  # noqa: E402
from docora_local.standins.moto_server import AWS_ENV, moto_server  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
KEY = bytes(range(32))
T1 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GB_SECOND = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1e6
SQS_REQUEST = 0.40 / 1e6
MONTH_MINUTES = 30 * 24 * 60
IDLE_POLLS = 2 * 5 * 3 * MONTH_MINUTES  # two queues, five pollers, one receive per 20 s each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.03, help="seconds per ls-refs answer")
    parser.add_argument("--moved", type=float, default=0.01, help="share of heads that move before cycle 2")
    arguments = parser.parse_args()
    stage = json.loads((ROOT / ".chalice" / "config.json").read_text())["stages"]["prod"]
    concurrency = int(stage["environment_variables"]["HEAD_CHECK_CONCURRENCY"])
    interval = timedelta(milliseconds=int(stage["environment_variables"]["RESCAN_INTERVAL_MS"]))
    memory = {name: stage["lambda_functions"].get(name, {}).get("lambda_memory_size", stage["lambda_memory_size"])
              for name in ("sweep", "scan_repositories")}  # fmt: skip
    spawn = multiprocessing.get_context("spawn")
    with (
        scratch_database("docora_bench_watch") as url,
        moto_server(spawn) as aws,
        ls_refs_server(latency=arguments.latency) as git,
    ):
        os.environ.update(AWS_ENV, AWS_ENDPOINT_URL=aws)
        figures = _run(url, git, arguments, concurrency=concurrency, interval=interval)
    _print(figures, arguments, concurrency=concurrency, interval=interval, memory=memory)


def _run(url: str, git: Any, arguments: argparse.Namespace, *, concurrency: int, interval: timedelta) -> dict[str, Any]:
    import boto3

    from chalicelib import wiring
    from chalicelib.config import Settings
    from chalicelib.messages import DeliveryRequested, ScanRequested
    from chalicelib.services import head_checks, scanning

    settings = Settings(database_url=url, redis_url=REDIS_URL, encryption_key=KEY, git_base_url=git.url,
                        head_check_concurrency=concurrency, rescan_interval_ms=int(interval.total_seconds() * 1000),
                        ephemeral_dir=str(Path("/tmp") / f"docora-bench-watch-{os.getpid()}"))  # fmt: skip
    sqs = boto3.client("sqs")
    queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("docora-scan", "docora-delivery")}
    boto3.client("s3").create_bucket(Bucket=settings.content_bucket)
    names = _seed(url, git, arguments.repositories)
    deps, configs = wiring.build(settings), wiring.configs_from(settings)
    config = configs.sweeping.head_checks
    statements = _count_statements()

    def cycle(at: datetime) -> dict[str, Any]:
        git.take_stats()
        statements.clear()
        started = time.perf_counter()
        report = head_checks.check_due_heads(clock=lambda: at, time_left_ms=lambda: 10**9, random=random.random,
                                             config=config, deps=deps)  # fmt: skip
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "report": report, "ls_refs": git.take_stats(), "statements": statements["n"]}

    first = cycle(T1)
    moved = random.Random(7).sample(names, max(1, int(len(names) * arguments.moved)))
    git.commit({name: f"moved {name}\n" for name in moved})
    second = cycle(T1 + interval)
    idle = cycle(T1 + interval + timedelta(seconds=1))  # nothing due: an empty sweep's check step
    scans = _drain(sqs, queues["docora-scan"], ScanRequested.from_json)
    started = time.perf_counter()
    for request in scans:
        scanning.scan_repository(request.repository_id, request.requested_at, now=request.requested_at,
                                 config=configs.scanning, deps=deps)  # fmt: skip
    scan_seconds = time.perf_counter() - started
    fanned = _drain(sqs, queues["docora-delivery"], DeliveryRequested.from_json)
    ids = _ids_by_name(url)
    return {
        "first": first,
        "second": second,
        "idle": idle,
        "moved": {ids[name] for name in moved},
        "scans": Counter(request.repository_id for request in scans),
        "scan_seconds": scan_seconds,
        "fanned": Counter(request.repository_id for request in fanned),
    }


def _seed(url: str, git: Any, count: int) -> list[str]:
    """`count` repositories with snapshots of their heads, each watched by one of count/100 apps."""
    from chalicelib.domain import tokens

    rng = random.Random(3)
    names = [f"bench/repo{n:06d}" for n in range(count)]
    heads = {name: f"{rng.getrandbits(160):040x}" for name in names}
    git.set_heads(heads)
    apps = [tokens.new_app_id() for _ in range(max(1, count // 100))]
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY apps (id, token_lookup, token_hash, app_name, email, base_url, "
                         "client_auth_key_encrypted) FROM STDIN") as copy:  # fmt: skip
            for app_id in apps:
                copy.write_row((app_id, os.urandom(32), "$2b$04$x", "bench", "b@example.com", "https://x.example", "a"))
        with cursor.copy("COPY repositories (id, github_url, owner, name, branch, is_private, last_head) "
                         "FROM STDIN") as copy:  # fmt: skip
            for name in names:
                owner, repo = name.split("/")
                copy.write_row((_repository_id(name), f"https://github.com/{name}", owner, repo, "main", False,
                                heads[name]))  # fmt: skip
        with cursor.copy("COPY watches (app_id, repository_id, status) FROM STDIN") as copy:
            for n, name in enumerate(names):
                copy.write_row((apps[n % len(apps)], _repository_id(name), "synced"))
        cursor.execute("ANALYZE")
    return names


def _repository_id(name: str) -> str:
    return "repo_" + name.removeprefix("bench/repo").rjust(24, "0")


def _ids_by_name(url: str) -> dict[str, str]:
    with psycopg.connect(url) as connection:
        return {
            f"{owner}/{name}": rid
            for rid, owner, name in connection.execute("SELECT id, owner, name FROM repositories")
        }


def _count_statements() -> Counter[str]:
    """Every statement this process sends through psycopg: cursors run them, `Connection.execute` included."""
    counter: Counter[str] = Counter()
    execute = psycopg.Cursor.execute

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter["n"] += 1
        return execute(self, *args, **kwargs)

    psycopg.Cursor.execute = counted  # type: ignore[method-assign]
    return counter


def _drain(sqs: Any, url: str, parse: Any) -> list[Any]:
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            found.append(parse(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def _print(figures: dict[str, Any], arguments: argparse.Namespace, *, concurrency: int, interval: timedelta,
           memory: dict[str, int]) -> None:  # fmt: skip
    n = arguments.repositories
    first, second, idle = figures["first"], figures["second"], figures["idle"]
    moved, scans, fanned = figures["moved"], figures["scans"], figures["fanned"]
    quiet_requests = [count for name, count in second["ls_refs"].items() if _repository_id(name) not in moved]
    print(f"{n:,} repositories, ls-refs latency {arguments.latency * 1000:.0f} ms, {concurrency} checks at once "
          f"(HEAD_CHECK_CONCURRENCY of the prod stage), sweep memory {memory['sweep']} MB")  # fmt: skip
    print()
    print("| | cycle 1 (all unchanged) | cycle 2 (1% moved) | goal |")
    print("| --- | --- | --- | --- |")
    print(f"| wall time of {n:,} checks | {first['seconds']:.1f} s | {second['seconds']:.1f} s | ≤ 60 s |")
    print(f"| checks per second | {n / first['seconds']:,.0f} | {n / second['seconds']:,.0f} | |")
    print(f"| checked / unchanged / moved / failed | {_outcomes(first['report'])} | {_outcomes(second['report'])} | |")
    print(f"| Postgres statements per check (amortised) | {first['statements'] / n:.4f} | "
          f"{second['statements'] / n:.4f} | ≤ 0.05 |")  # fmt: skip
    print()
    print("Per quiet repository per check (cycle 2):")
    print(f"- git requests: {sum(quiet_requests) / max(1, len(quiet_requests)):.3f} "
          f"(min {min(quiet_requests)}, max {max(quiet_requests)}; goal 1)")  # fmt: skip
    quiet_scans = sum(count for rid, count in scans.items() if rid not in moved)
    print(f"- SQS messages: {quiet_scans / n:.4f} (goal 0); scan-function invocations: {quiet_scans / n:.4f} (goal 0)")
    print(f"For the {len(moved)} that moved: scanned {_once(scans, moved)}; fanned out {_once(fanned, moved)}; "
          f"scan time {figures['scan_seconds']:.1f} s in all")  # fmt: skip
    print()
    for count in (10_000, 100_000):
        quiet, with_moves = _cost(figures, count, n, interval=interval, memory=memory)
        print(f"cost at {count:,} quiet repositories every {interval.total_seconds() / 60:.0f} minutes: "
              f"${quiet:.2f}/month; with 1% of heads moving each cycle: ${with_moves:.2f}/month")  # fmt: skip
    print(f"(an empty sweep's check step took {idle['seconds'] * 1000:.0f} ms)")
    print()
    print(f"cycle {n}: {second['seconds']:.1f} s")
    print(f"cost {n}: ${_cost(figures, n, n, interval=interval, memory=memory)[0]:.2f}/month")


def _cost(figures: dict[str, Any], count: int, measured: int, *, interval: timedelta,
          memory: dict[str, int]) -> tuple[float, float]:  # fmt: skip
    """A month's Lambda and SQS cost of checking `count` quiet repositories, from this run's per-check figures."""
    cycles = MONTH_MINUTES / (interval.total_seconds() / 60)
    check_seconds = figures["second"]["seconds"] / measured * count
    sweep_gb = memory["sweep"] / 1024
    idle_seconds = figures["idle"]["seconds"] * MONTH_MINUTES
    lambda_ = (check_seconds * cycles + idle_seconds) * sweep_gb * GB_SECOND + MONTH_MINUTES * LAMBDA_REQUEST
    quiet = lambda_ + IDLE_POLLS * SQS_REQUEST
    moved = len(figures["moved"]) / measured * count * cycles
    scan_gb_seconds = figures["scan_seconds"] / max(1, len(figures["moved"])) * memory["scan_repositories"] / 1024
    # Per moved repository: a share of a batched send, a receive and a delete on each queue, and a scan invocation.
    moves = moved * (scan_gb_seconds * GB_SECOND + LAMBDA_REQUEST + 5 * SQS_REQUEST)
    return quiet, quiet + moves


def _outcomes(report: Any) -> str:
    return f"{report.checked:,} / {report.unchanged:,} / {report.moved:,} / {report.failed:,}"


def _once(counts: Counter[str], expected: set[str]) -> str:
    exact = set(counts) == expected and all(count == 1 for count in counts.values())
    return (
        "each exactly once"
        if exact
        else f"NOT once each: {len(counts)} of {len(expected)}, max {max(counts.values(), default=0)}"
    )


if __name__ == "__main__":
    main()
