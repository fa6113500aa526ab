"""The load scenario: many apps watching many repositories, random commits for a while, then every file checked.

Docora runs as deployed: the scan and delivery consumers and the minute's sweep in processes of their own (one per
Lambda container, as many as each function's concurrency, harness/lambdas.py), SQS and S3 in a moto server of its
own. This process plays GitHub and the receivers: each repository gets pushes at random (an update, a new file, a
delete), each followed by a scan request as GitHub's push webhook would send, and one receiver takes every app's
webhooks. After the pushes stop and the work is done, every app's received files are compared, file by file, with
its repositories at their last commit (an events-verify check), and the ledger with both.

Measured: throughput (files delivered per second, for the first sync and while pushes arrive) and lag, from a
push to each app's acknowledgement of each file it changed (p50, p95, p99). With `hanging_apps`, that many apps'
receivers take every request and never answer; the others are measured and checked as before. Used by
test_load.py (slow) and by bench/load.py, which prints the figures and writes them to bench/results/load.json.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import platform
import random
import statistics
import time
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from docora_local import REPO
from docora_local.harness import lambdas
from docora_local.harness.consumers import DELIVERY_QUEUE, SCAN_QUEUE
from docora_local.harness.end_state import repository_files
from docora_local.harness.lambdas import Consumer
from docora_local.harness.mirror import MirrorReceiver, Sent
from docora_local.harness.receivers import PythonReceiver, Reply
from docora_local.harness.scan_stack import ScanStack
from docora_local.harness.scenario import add_app, add_repository
from docora_local.standins.git_server import TestRepo
from docora_local.standins.moto_server import AWS_ENV

RESULTS = REPO / "bench" / "results" / "load.json"
_QUEUE_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


@dataclass(frozen=True)
class LoadConfig:
    apps: int = 50
    repositories: int = 20
    seconds: float = 120.0  # how long pushes keep coming
    pushes_per_second: float = 0.1  # over all repositories; each push reaches every app (about 100 files)
    files_per_repository: int = 5
    # Processes per function, as its maximum_concurrency in app.py (delivery) and SCAN_CONCURRENCY's default.
    delivery_concurrency: int = 20
    scan_concurrency: int = 5
    hanging_apps: int = 0  # apps whose receivers never answer: the first ones
    compared_from: int = 0  # lag_ms_compared: the lag of the apps from this one on (the same apps in every run)
    seed: int = 20261127

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LoadConfig:
        """DOCORA_LOAD_APPS, _REPOSITORIES, _SECONDS, _PUSHES_PER_SECOND, _FILES, _DELIVERY_CONCURRENCY,
        _SCAN_CONCURRENCY, _HANGING_APPS and _SEED override."""
        default = cls()
        return cls(
            apps=int(environ.get("DOCORA_LOAD_APPS", default.apps)),
            repositories=int(environ.get("DOCORA_LOAD_REPOSITORIES", default.repositories)),
            seconds=float(environ.get("DOCORA_LOAD_SECONDS", default.seconds)),
            pushes_per_second=float(environ.get("DOCORA_LOAD_PUSHES_PER_SECOND", default.pushes_per_second)),
            files_per_repository=int(environ.get("DOCORA_LOAD_FILES", default.files_per_repository)),
            delivery_concurrency=int(environ.get("DOCORA_LOAD_DELIVERY_CONCURRENCY", default.delivery_concurrency)),
            scan_concurrency=int(environ.get("DOCORA_LOAD_SCAN_CONCURRENCY", default.scan_concurrency)),
            hanging_apps=int(environ.get("DOCORA_LOAD_HANGING_APPS", default.hanging_apps)),
            seed=int(environ.get("DOCORA_LOAD_SEED", default.seed)),
        )


@dataclass(frozen=True)
class Push:
    repository_id: str
    at: float  # time.time() once the push was in
    changes: dict[str, str | None]  # path -> SHA-256 hex of the new content, None for a delete


def run_load(
    stack: ScanStack, config: LoadConfig, *, aws_endpoint_url: str, scratch: Path, profile_dir: Path | None = None
) -> dict[str, Any]:
    """Run the scenario on `stack` (its SQS and S3 at `aws_endpoint_url`) and return the report; `mismatches` lists
    every file not as it should be."""
    rng = random.Random(config.seed)  # noqa: S311 - reproducible, not secret
    load_before = os.getloadavg()[0]
    spawn = multiprocessing.get_context("spawn")
    receiver = MirrorReceiver(keep_requests=False).start()
    hanging = PythonReceiver(default=Reply(action="hang")).start()
    pushes: list[Push] = []
    try:
        repos = _repositories(stack, config, rng)
        healthy = [add_app(stack, f"{receiver.url}/app{n}", *repos) for n in range(config.hanging_apps, config.apps)]
        for n in range(config.hanging_apps):
            add_app(stack, f"{hanging.url}/app{n}", *repos)
        consumers = [
            Consumer("scan_repositories", SCAN_QUEUE, 5, config.scan_concurrency),
            Consumer("deliver_changes", DELIVERY_QUEUE, 1, config.delivery_concurrency),
        ]
        environment = _environment(stack, aws_endpoint_url)
        with lambdas.running(spawn, environment, consumers, scratch=scratch, profile_dir=profile_dir):
            started = time.time()
            stack.deps.scan_queue.request_scans(list(repos), datetime.now(UTC))
            done = _Done(stack, repos, healthy, queues_drain=config.hanging_apps == 0)
            done.wait(timeout=600 + 0.5 * config.apps * config.repositories)
            first_sync = time.time() - started

            pushes = _push_for(config, repos, stack, rng)
            pushing_ended = time.time()
            done.wait(timeout=600 + 2 * config.seconds)
            steady = time.time() - pushes[0].at if pushes else 0.0
            drain = time.time() - pushing_ended
    finally:
        receiver.stop()
        hanging.stop()
    report = _report(config, stack, repos, healthy, receiver, pushes, first_sync=first_sync, steady=steady, drain=drain)
    # Other work on the machine slows everything here; the 1-minute load average says how much there was.
    report["machine"]["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    return report


def write_results(report: dict[str, Any], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def summary(report: dict[str, Any]) -> str:
    first, steady, lag = report["first_sync"], report["steady"], report["steady"]["lag_ms"]
    config, machine = report["config"], report["machine"]
    hanging = f", {config['hanging_apps']} of them hanging" if config["hanging_apps"] else ""
    return "\n".join(
        [
            f"{config['apps']} apps{hanging} x {config['repositories']} repositories, consumers in processes "
            f"({config['delivery_concurrency']} delivering, {config['scan_concurrency']} scanning), "
            f"{steady['pushes']} pushes in {config['seconds']:g} s; {machine['cpus']} CPUs, load average "
            f"{machine['load_average']['before']:.1f} before, {machine['load_average']['after']:.1f} after",
            f"first sync (as fast as it goes): {first['files']} files in {first['seconds']:.1f} s = "
            f"{first['files_per_second']:.1f} files/s",
            f"under pushes (paced by them): {steady['files']} files in {steady['seconds']:.1f} s = "
            f"{steady['files_per_second']:.1f} files/s, done {steady['drain_seconds']:.1f} s after the last push",
            f"lag push -> acknowledged: p50 {lag['p50']:.0f} ms, p95 {lag['p95']:.0f} ms, p99 {lag['p99']:.0f} ms, "
            f"max {lag['max']:.0f} ms",
            f"verified: {report['verified']['files']} files in {report['verified']['watches']} watches, "
            f"{len(report['mismatches'])} mismatches",
        ]
    )


def _repositories(stack: ScanStack, config: LoadConfig, rng: random.Random) -> dict[str, TestRepo]:
    repos = {}
    for index in range(config.repositories):
        repo, repository_id = add_repository(stack, f"load/repo{index}")
        repo.commit({f"f{n}.md": _text(rng) for n in range(config.files_per_repository)}, "first")
        repos[repository_id] = repo
    return repos


def _push_for(config: LoadConfig, repos: dict[str, TestRepo], stack: ScanStack, rng: random.Random) -> list[Push]:
    """Push at random moments (a Poisson process) for `config.seconds`; each push requests a scan, as GitHub would."""
    pushes: list[Push] = []
    ends, next_at = time.monotonic() + config.seconds, time.monotonic()
    created = 0
    while (now := time.monotonic()) < ends:
        if now < next_at:
            time.sleep(min(next_at, ends) - now)
            continue
        next_at += rng.expovariate(config.pushes_per_second)
        repository_id = rng.choice(sorted(repos))
        repo = repos[repository_id]
        files = sorted(path.decode() for path in repo.ls_tree())
        changes: dict[str, bytes | None] = {}
        for _ in range(rng.randint(1, 3)):
            roll = rng.random()
            if roll < 0.2 and len(files) > 2:
                changes[rng.choice(files)] = None
            elif roll < 0.4:
                created += 1
                changes[f"new{created}.md"] = _text(rng)
            else:
                changes[rng.choice(files)] = _text(rng)
        repo.commit(changes, "push")
        at = time.time()
        stack.deps.scan_queue.request_scan(repository_id, datetime.now(UTC))
        shas = {
            path: hashlib.sha256(content).hexdigest() if content is not None else None
            for path, content in changes.items()
        }
        pushes.append(Push(repository_id, at, shas))
    return pushes


def _environment(stack: ScanStack, aws_endpoint_url: str) -> dict[str, str]:
    """What the deployed functions would be given: this stack's services, and the defaults for the rest."""
    settings = stack.settings
    return {
        "DATABASE_URL": _as_url(settings.database_url),
        "REDIS_URL": settings.redis_url,
        "ENCRYPTION_KEY": settings.encryption_key.hex(),
        "ADMIN_API_KEY": settings.admin_api_key or "",
        "GIT_BASE_URL": settings.git_base_url,
        "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",  # the receivers are on loopback
        "AWS_ENDPOINT_URL": aws_endpoint_url,
        **AWS_ENV,
        "LOG_LEVEL": "warning",
    }


def _as_url(conninfo: str) -> str:
    """DATABASE_URL as the functions want it, from the key=value form the test databases are named in."""
    if conninfo.startswith(("postgres://", "postgresql://")):
        return conninfo
    parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    user, host, port = parts.get("user", "postgres"), parts.get("host", "127.0.0.1"), parts.get("port", 5432)
    return f"postgresql://{user}@{host}:{port}/{parts['dbname']}"


class _Done:
    """The work is done when every repository's snapshot is at its head, nothing waits to be scanned, and every
    healthy app's watches are synced; with `queues_drain`, also when no delivery is waiting or in flight."""

    def __init__(self, stack: ScanStack, repos: dict[str, TestRepo], healthy: list[str], *, queues_drain: bool):
        self.stack, self.repos, self.healthy, self.queues_drain = stack, repos, healthy, queues_drain

    def wait(self, *, timeout: float) -> None:
        deadline, quiet = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            quiet = quiet + 1 if self._done() else 0
            if quiet == 2:  # seen twice in a row
                return
            time.sleep(0.5)
        raise AssertionError(f"the work was not done within {timeout:.0f} s")

    def _done(self) -> bool:
        queues = (SCAN_QUEUE, DELIVERY_QUEUE) if self.queues_drain else (SCAN_QUEUE,)
        if not all(_queue_empty(self.stack, queue) for queue in queues):
            return False
        snapshots = dict(self.stack.rows("SELECT repository_id, commit_sha FROM snapshots"))
        if any(snapshots.get(repository_id) != repo.head() for repository_id, repo in self.repos.items()):
            return False
        behind = self.stack.rows(
            "SELECT count(*) FROM watches WHERE status <> 'synced' AND app_id = ANY(%s)", self.healthy
        )
        return behind == [(0,)]


def _queue_empty(stack: ScanStack, queue: str) -> bool:
    url = stack.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    counts = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(_QUEUE_COUNTS))["Attributes"]
    return not any(int(counts[name]) for name in _QUEUE_COUNTS)


def _report(
    config: LoadConfig,
    stack: ScanStack,
    repos: dict[str, TestRepo],
    healthy: list[str],
    receiver: MirrorReceiver,
    pushes: list[Push],
    *,
    first_sync: float,
    steady: float,
    drain: float,
) -> dict[str, Any]:
    first_files = len(healthy) * config.repositories * config.files_per_repository
    steady_start = pushes[0].at if pushes else float("inf")
    lags, unmatched = _lags(receiver.sent, pushes, since=steady_start)
    compared = set(healthy[max(0, config.compared_from - config.hanging_apps) :])
    compared_lags, _ = _lags([s for s in receiver.sent if s.app_id in compared], pushes, since=steady_start)
    verified, mismatches = _verify(stack, repos, healthy, receiver)
    return {
        "config": asdict(config),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "first_sync": {"files": first_files, "seconds": first_sync, "files_per_second": first_files / first_sync},
        "steady": {
            "pushes": len(pushes),
            "files": len(lags),
            "seconds": steady,
            "drain_seconds": drain,
            "files_per_second": len(lags) / steady if steady else 0.0,
            "lag_ms": _percentiles(lags),
            "lag_ms_compared": _percentiles(compared_lags),
            "unmatched": unmatched,
        },
        "verified": verified,
        "mismatches": mismatches[:50],
        "problems": receiver.problems[:50],
    }


def _lags(sent: list[Sent], pushes: list[Push], *, since: float) -> tuple[list[float], int]:
    """Milliseconds from the push that made each file what it became to the app's first acknowledgement of it."""
    history: dict[tuple[str, str], list[tuple[float, str | None]]] = {}
    for push in pushes:
        for path, sha in push.changes.items():
            history.setdefault((push.repository_id, path), []).append((push.at, sha))
    lags, seen, unmatched = [], set(), 0
    for item in sent:
        if not item.acknowledged or item.at < since or item.event not in ("create", "update", "delete"):
            continue
        wanted = None if item.event == "delete" else item.sha
        key = (item.app_id, item.repository_id, item.path, wanted)
        if key in seen:
            continue  # a duplicate: the first acknowledgement is the one that counts
        seen.add(key)
        entries = history.get((item.repository_id, item.path or ""), [])
        position = bisect_right([at for at, _ in entries], item.at)
        made = next((at for at, sha in reversed(entries[:position]) if sha == wanted), None)
        if made is None:
            unmatched += 1
            continue
        lags.append((item.at - made) * 1000)
    return lags, unmatched


def _percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": max(values, default=0.0)}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": max(values)}


def _verify(
    stack: ScanStack, repos: dict[str, TestRepo], healthy: list[str], receiver: MirrorReceiver
) -> tuple[dict[str, int], list[str]]:
    """Every healthy app's files, its ledger and each snapshot against the repository at its last commit."""
    expected = {repository_id: repository_files(repo) for repository_id, repo in repos.items()}
    heads = {repository_id: repo.head() for repository_id, repo in repos.items()}
    held = receiver.held()
    ledgers: dict[tuple[str, str], dict[str, str]] = {}
    for app_id, repository_id, path, sha in stack.rows(
        "SELECT app_id, repository_id, path, encode(sha256, 'hex') FROM delivered_files"
    ):
        ledgers.setdefault((app_id, repository_id), {})[path] = sha
    snapshots = dict(stack.rows("SELECT repository_id, commit_sha FROM snapshots"))
    mismatches = [
        f"{r}: snapshot at {snapshots.get(r)}, head at {head}" for r, head in heads.items() if snapshots.get(r) != head
    ]
    watches = stack.rows("SELECT app_id, repository_id, status FROM watches WHERE app_id = ANY(%s)", healthy)
    files = 0
    for app_id, repository_id, status in watches:
        want = expected[repository_id]
        files += len(want)
        got, ledger = held.get((app_id, repository_id), {}), ledgers.get((app_id, repository_id), {})
        if status != "synced":
            mismatches.append(f"{app_id} {repository_id}: {status}")
        for path in sorted(set(want) | set(got) | set(ledger)):
            if not want.get(path) == got.get(path) == ledger.get(path):
                mismatches.append(
                    f"{app_id} {repository_id} {path}: repository {want.get(path)}, app {got.get(path)}, "
                    f"ledger {ledger.get(path)}"
                )
    return {"watches": len(watches), "files": files}, mismatches


def _text(rng: random.Random) -> bytes:
    return f"{rng.getrandbits(64):016x}\n".encode() * rng.randint(1, 40)
