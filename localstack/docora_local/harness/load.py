"""The load scenario: many apps watching many repositories, random commits for a while, then every file checked.

Each repository gets pushes at random (an update, a new file, a delete), each push followed by a scan request as
GitHub's push webhook would send; a few worker threads, each a container of its own, run the scan and delivery
consumers from the queues. After the pushes stop and the queues drain, every app's received files are compared,
file by file, with its repositories at their last commit (an events-verify check), and the ledger with both.

Measured: throughput (files delivered per second, for the first sync and while pushes arrive) and lag, from a
push to each app's acknowledgement of each file it changed (p50, p95, p99). Used by test_load.py (slow) and by
bench/load.py, which prints the figures and writes them to bench/results/load.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import statistics
import threading
import time
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from docora_local import REPO
from docora_local.harness.consumers import DELIVERY_QUEUE, SCAN_QUEUE, Clock, Consumers
from docora_local.harness.end_state import repository_files
from docora_local.harness.mirror import MirrorReceiver, Sent
from docora_local.harness.scan_stack import ScanStack
from docora_local.harness.scenario import add_app, add_repository
from docora_local.standins.git_server import TestRepo

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
    workers: int = 4  # containers running the consumers at once
    files_per_repository: int = 5
    seed: int = 20261127

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LoadConfig:
        """DOCORA_LOAD_APPS, _REPOSITORIES, _SECONDS, _PUSHES_PER_SECOND, _WORKERS, _FILES, _SEED override."""
        default = cls()
        return cls(
            apps=int(environ.get("DOCORA_LOAD_APPS", default.apps)),
            repositories=int(environ.get("DOCORA_LOAD_REPOSITORIES", default.repositories)),
            seconds=float(environ.get("DOCORA_LOAD_SECONDS", default.seconds)),
            pushes_per_second=float(environ.get("DOCORA_LOAD_PUSHES_PER_SECOND", default.pushes_per_second)),
            workers=int(environ.get("DOCORA_LOAD_WORKERS", default.workers)),
            files_per_repository=int(environ.get("DOCORA_LOAD_FILES", default.files_per_repository)),
            seed=int(environ.get("DOCORA_LOAD_SEED", default.seed)),
        )


@dataclass(frozen=True)
class Push:
    repository_id: str
    at: float  # time.time() once the push was in
    changes: dict[str, str | None]  # path -> SHA-256 hex of the new content, None for a delete


def run_load(stack: ScanStack, clock: Clock, config: LoadConfig, *, scratch: Path) -> dict[str, Any]:
    """Run the scenario on `stack` and return the report; `mismatches` lists every file not as it should be."""
    rng = random.Random(config.seed)  # noqa: S311 - reproducible, not secret
    load_before = os.getloadavg()[0]
    receiver = MirrorReceiver(keep_requests=False).start()
    workers = [
        Consumers(stack, clock, ephemeral_dir=str(scratch / f"container{n}"), git_timeout=30.0)
        for n in range(config.workers + 1)
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=_work, args=(worker, stop), daemon=True) for worker in workers[1:]]
    threads.append(threading.Thread(target=_sweep_every_minute, args=(workers[0], stop), daemon=True))
    try:
        repos = _repositories(stack, config, rng)
        for index in range(config.apps):
            add_app(stack, f"{receiver.url}/app{index}", *repos)
        for thread in threads:
            thread.start()

        started = time.time()
        for repository_id in repos:
            workers[0].request_scan(repository_id)
        _wait_until_drained(stack, timeout=600 + 0.5 * config.apps * config.repositories)
        first_sync = time.time() - started

        pushes = _push_for(config, repos, workers[0], rng)
        pushing_ended = time.time()
        _wait_until_drained(stack, timeout=600 + 2 * config.seconds)
        steady = time.time() - pushes[0].at if pushes else 0.0
        drain = time.time() - pushing_ended
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        for worker in workers:
            worker.close()
        receiver.stop()
    report = _report(config, stack, repos, receiver, pushes, first_sync=first_sync, steady=steady, drain=drain)
    # Other work on the machine slows everything here; the 1-minute load average says how much there was.
    report["machine"]["load_average"] = {"before": load_before, "after": os.getloadavg()[0]}
    return report


def write_results(report: dict[str, Any], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def summary(report: dict[str, Any]) -> str:
    first, steady, lag = report["first_sync"], report["steady"], report["steady"]["lag_ms"]
    config, machine = report["config"], report["machine"]
    return "\n".join(
        [
            f"{config['apps']} apps x {config['repositories']} repositories, {config['workers']} workers, "
            f"{steady['pushes']} pushes in {config['seconds']:g} s; {machine['cpus']} CPUs, load average "
            f"{machine['load_average']['before']:.1f} before, {machine['load_average']['after']:.1f} after",
            f"first sync (as fast as it goes): {first['files']} files in {first['seconds']:.1f} s = "
            f"{first['files_per_second']:.1f} files/s",
            f"under pushes (paced by them): {steady['files']} files in {steady['seconds']:.1f} s = "
            f"{steady['files_per_second']:.1f} files/s, drained {steady['drain_seconds']:.1f} s after the last push",
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


def _push_for(config: LoadConfig, repos: dict[str, TestRepo], consumers: Consumers, rng: random.Random) -> list[Push]:
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
        consumers.request_scan(repository_id)
        shas = {
            path: hashlib.sha256(content).hexdigest() if content is not None else None
            for path, content in changes.items()
        }
        pushes.append(Push(repository_id, at, shas))
    return pushes


def _sweep_every_minute(sweeper: Consumers, stop: threading.Event) -> None:
    """The EventBridge schedule: a sweep a minute, at the present time."""
    while not stop.wait(60):
        sweeper.sweep(at=sweeper.clock.now())


def _work(consumers: Consumers, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            taken = consumers.run_once()
        except RuntimeError:
            # moto's in-process SQS is not thread-safe ("Set changed size during iteration" while another
            # thread sends); the failed call changed nothing, so the worker simply tries again.
            taken = 0
        if taken == 0:
            stop.wait(0.05)


def _wait_until_drained(stack: ScanStack, *, timeout: float) -> None:
    """Until no message waits, is in flight or is delayed, and every watch is synced (seen twice in a row)."""
    deadline, quiet = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        quiet = quiet + 1 if _queues_empty(stack) and _all_synced(stack) else 0
        if quiet == 2:
            return
        time.sleep(0.5)
    raise AssertionError(f"the queues did not drain within {timeout:.0f} s")


def _queues_empty(stack: ScanStack) -> bool:
    for queue in (SCAN_QUEUE, DELIVERY_QUEUE):
        url = stack.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        counts = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(_QUEUE_COUNTS))["Attributes"]
        if any(int(counts[name]) for name in _QUEUE_COUNTS):
            return False
    return True


def _all_synced(stack: ScanStack) -> bool:
    return stack.rows("SELECT count(*) FROM watches WHERE status <> 'synced'") == [(0,)]


def _report(
    config: LoadConfig,
    stack: ScanStack,
    repos: dict[str, TestRepo],
    receiver: MirrorReceiver,
    pushes: list[Push],
    *,
    first_sync: float,
    steady: float,
    drain: float,
) -> dict[str, Any]:
    first_files = config.apps * config.repositories * config.files_per_repository
    steady_start = pushes[0].at if pushes else float("inf")
    lags, unmatched = _lags(receiver.sent, pushes, since=steady_start)
    verified, mismatches = _verify(stack, repos, receiver)
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


def _verify(stack: ScanStack, repos: dict[str, TestRepo], receiver: MirrorReceiver) -> tuple[dict[str, int], list[str]]:
    """Every app's files, its ledger and each snapshot against the repository at its last commit."""
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
    watches = stack.rows("SELECT app_id, repository_id, status FROM watches")
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
