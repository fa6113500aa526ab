"""Scan cost of a 20,244-file repository against the git CLI on the same loopback git server, in one run.

The repository (440 folders of 46 small text files, plus 4 binaries of 0.25 and 1 MB) is written with
`git fast-import` and served by docora_local.standins.git_server (`git http-backend`, protocol v2). Baselines, over the
same server:
- initial: `git clone --depth 1 --no-checkout`, `git ls-tree -r`, then every blob read through one
  `git cat-file --batch` and hashed with SHA-256 in Python (no checkout); median of 3 clones;
- incremental (a commit changing 3 files): `git fetch --depth 1` into each of those shallow clones, then
  `git ls-tree -r`; median of 3;
- unchanged: `git ls-remote` of the branch, for scale only.
Docora: `scanning.scan_repository` over the real adapters (dulwich, Postgres, Redis, and S3 and SQS served by moto
in a process of its own) in a child process, so its peak RSS (VmHWM) is its own. The initial scan runs four times,
each time from an empty cache: three times with the S3 upload replaced by a sink that still reads and hashes every
blob (the part comparable with git; the median is reported), once uploading every content to moto's S3 (small ones
packed into bundles, as in production; git has no such step), counting the S3 requests. That last child then scans
the 3-file commit and rescans the unchanged head. Before each of those the app's ledger is made to match the
snapshot, as after a delivery, so fan-out finds nothing to do. Database writes of the unchanged rescan are the
pg_stat_user_tables deltas, read once the child's connection has closed (a backend flushes its counters when it
exits).

Needs Postgres and Redis: BENCH_DATABASE_URL (an admin URL; a scratch database is created and dropped) and
BENCH_REDIS_URL, defaulting to the local services; git on PATH. Files go to /dev/shm when it exists (tmpfs), so the
disk's noise stays out. Run: .venv/bin/python bench/scan.py (`--profile DIR` writes cProfiles of Docora's scans).
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import hashlib
import multiprocessing
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# localstack/ holds docora_local, the tooling this shares with the tests.
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "localstack"))

from bench.scratch_database import scratch_database
from chalicelib.adapters.aes_cipher import AesGcmCipher
from chalicelib.adapters.postgres_apps import PostgresApps
from chalicelib.adapters.postgres_repositories import PostgresRepositories
from chalicelib.adapters.postgres_watches import PostgresWatches
from chalicelib.domain import tokens
from chalicelib.domain.apps import NewApp
from chalicelib.domain.repositories import NewRepository, NewWatch
from docora_local.standins.git_server import GitServer
from docora_local.standins.moto_server import AWS_ENV, moto_server

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
KEY = bytes.fromhex("11" * 32)
FOLDERS, FILES_PER_FOLDER = 440, 46
BINARY_SIZES = (256_000, 256_000, 1_000_000, 1_000_000)
CHANGED = ("d000/f00.txt", "d220/f23.txt", "d439/f45.txt")
GIT_ROUNDS = 3
DOCORA_ROUNDS = 3
LAMBDA_MB = 512
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}


@dataclasses.dataclass
class Bench:
    root: Path
    server: GitServer
    url: str  # the repository on the git server
    database_url: str
    spawn: Any
    profile_dir: Path | None
    aws_endpoint_url: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", type=Path, help="write cProfiles of Docora's scans into this folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="docora-bench-scan-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    spawn = multiprocessing.get_context("spawn")
    try:
        with (
            scratch_database("docora_bench_scan") as database_url,
            GitServer(root / "git") as server,
            moto_server(spawn) as aws_endpoint_url,
        ):
            url = _make_repository(server)
            bench = Bench(root, server, url, database_url, spawn, args.profile, aws_endpoint_url)
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
            _print(_run(bench), root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(bench: Bench) -> dict[str, Any]:
    figures: dict[str, Any] = {"files": _file_count(bench), "content_mb": _content_mb(bench)}
    figures["profiled"] = bench.profile_dir is not None
    clones = [bench.root / f"clone-{index}" for index in range(GIT_ROUNDS)]
    figures["git_initial"] = [_git_initial(bench, clone) for clone in clones]
    sinks = []
    for run in range(DOCORA_ROUNDS):  # each from an empty cache, into a repository never scanned
        with _Worker(bench, upload=False, name=f"sink-{run}") as worker:
            sinks.append(_scan_counted(bench, worker, at=T0, profile="initial" if run == 0 else None))
    figures["sink_runs"] = sinks
    figures["sink"] = sorted(sinks, key=lambda run: run["seconds"])[len(sinks) // 2]  # the median run
    with _Worker(bench, upload=True, name="upload") as worker:
        figures["upload"] = _scan_counted(bench, worker, at=T0, profile=None)
        _mark_delivered(bench.database_url, worker.repository_id)
        _commit_changes(bench.server.repos_dir / "acme/widgets.git")
        figures["git_incremental"] = [_git_incremental(bench, clone) for clone in clones]
        figures["incremental"] = _scan_counted(bench, worker, at=T0 + timedelta(minutes=1), profile="incremental")
        _mark_delivered(bench.database_url, worker.repository_id)
        figures["git_unchanged"] = min(_git_ls_remote(bench) for _ in range(GIT_ROUNDS))
        worker.call("close_database")
        before = _table_writes(bench.database_url)
        figures["unchanged"] = _scan_counted(bench, worker, at=T0 + timedelta(minutes=2), profile=None)
        worker.call("close_database")
        figures["unchanged_writes"] = _delta(before, _table_writes(bench.database_url))
    return figures


def _print(figures: dict[str, Any], root: Path) -> None:
    git_initial = statistics.median(run["seconds"] for run in figures["git_initial"])
    git_rss = max(run["rss_mb"] for run in figures["git_initial"])
    sink, upload, incremental, unchanged = (figures[key] for key in ("sink", "upload", "incremental", "unchanged"))
    git_fetch = statistics.median(run["seconds"] for run in figures["git_incremental"])
    git_bytes = statistics.median(run["bytes"] for run in figures["git_incremental"])
    steps = sink["steps"]
    rows = [
        ("initial scan, S3 upload left out (median)", f"{git_initial:.2f} s", f"{sink['seconds']:.2f} s",
         f"{sink['seconds'] / git_initial:.1f}x", "<= 2x"),
        ("initial scan, moto S3 upload included", f"{git_initial:.2f} s", f"{upload['seconds']:.2f} s",
         f"{upload['seconds'] / git_initial:.1f}x", "(upload is Docora's alone)"),
        ("peak RSS of the initial scan", f"{git_rss:.0f} MB", f"{sink['peak_mb']:.0f} MB",
         f"{sink['peak_mb'] / git_rss:.1f}x", f"fits {LAMBDA_MB} MB: {_fits(sink['peak_mb'])}"),
        ("  the same, uploading to moto S3", "", f"{upload['peak_mb']:.0f} MB", "",
         f"fits {LAMBDA_MB} MB: {_fits(upload['peak_mb'])}"),
        ("incremental scan (3 files): bytes", f"{git_bytes / 1024:.1f} KB", f"{incremental['bytes'] / 1024:.1f} KB",
         f"{incremental['bytes'] / git_bytes:.2f}x", "<= 2x"),
        ("incremental scan (3 files): wall", f"{git_fetch:.3f} s", f"{incremental['seconds']:.3f} s",
         f"{incremental['seconds'] / git_fetch:.1f}x", "<= 3x"),
        ("unchanged rescan: requests to git", "", f"{unchanged['requests']}", "", "= 1"),
        ("unchanged rescan: rows written", "", _writes(figures["unchanged_writes"]), "", "only last_checked_at"),
        ("unchanged rescan: wall (git: ls-remote)", f"{figures['git_unchanged']:.3f} s",
         f"{unchanged['seconds']:.3f} s", f"{unchanged['seconds'] / figures['git_unchanged']:.1f}x", ""),
    ]  # fmt: skip
    print(f"Scan of {figures['files']:,} files ({FOLDERS} folders x {FILES_PER_FOLDER} text files + "
          f"{len(BINARY_SIZES)} binaries, {figures['content_mb']:.1f} MB) over loopback smart HTTP, "
          f"files in {root.parent}")  # fmt: skip
    if figures["profiled"]:
        print("PROFILED RUN: Docora's initial (no upload) and incremental times include cProfile's overhead")
    print(f"{'':42}{'git CLI':>12}{'Docora':>14}{'ratio':>9}   target")
    for label, git, docora, ratio, target in rows:
        print(f"{label:42}{git:>12}{docora:>14}{ratio:>9}   {target}")
    runs = sorted(run["seconds"] for run in figures["sink_runs"])
    git_runs = sorted(run["seconds"] for run in figures["git_initial"])
    print(f"initial scan, each of {len(runs)} runs: Docora " + ", ".join(f"{seconds:.2f}" for seconds in runs)
          + " s; git " + ", ".join(f"{seconds:.2f}" for seconds in git_runs) + " s")  # fmt: skip
    print(f"Docora's median initial scan, upload left out ({sink['requests']} requests, "
          f"{sink['bytes'] / 2**20:.1f} MiB): "
          f"fetch trees {steps.get('git.fetch_tree', 0):.2f} s, fetch and read blobs "
          f"{steps.get('git.read_blobs', 0):.2f} s, hash and sniff "
          f"{steps.get('hash', 0) - steps.get('git.read_blobs', 0):.2f} s, "
          f"the rest (Postgres, snapshot, fan-out) {sink['seconds'] - steps['accounted']:.2f} s")  # fmt: skip
    put_requests = upload["steps"].get("s3.requests", 0)
    print(f"moto S3 upload of {upload['blobs_read']:,} contents in {put_requests:.0f} requests "
          f"(small ones in bundles): about {upload['seconds'] - sink['seconds']:.1f} s "
          f"more than the scan without it; git's initial steps: "
          + ", ".join(f"{step} {statistics.median(run[step] for run in figures['git_initial']):.2f} s"
                      for step in ("clone", "ls-tree", "hash")))  # fmt: skip
    print(f"incremental: Docora {incremental['requests']} requests, {incremental['blobs_read']} blobs read; "
          f"git fetch {statistics.median(run['fetch'] for run in figures['git_incremental']):.3f} s + ls-tree "
          f"{statistics.median(run['ls-tree'] for run in figures['git_incremental']):.3f} s")  # fmt: skip


def _fits(megabytes: float) -> str:
    return f"yes ({megabytes / LAMBDA_MB:.0%})" if megabytes < LAMBDA_MB else "NO"


def _writes(delta: dict[str, Counter[str]]) -> str:
    return ", ".join(f"{table} {n} {kind}" for table, kinds in delta.items() for kind, n in kinds.items()) or "none"


# The repository ---------------------------------------------------------------------------------------------------


def _make_repository(server: GitServer) -> str:
    bare = server.make_repo("acme/widgets").bare
    rng = random.Random(20244)
    stream = [b"commit refs/heads/main\ncommitter Bench <bench@docora.invalid> 1700000000 +0000\ndata 7\ninitial\n"]
    for folder in range(FOLDERS):
        for index in range(FILES_PER_FOLDER):
            stream.append(_inline(f"d{folder:03d}/f{index:02d}.txt", _text(rng, folder, index)))
    for index, size in enumerate(BINARY_SIZES):
        stream.append(_inline(f"assets/blob{index}.bin", rng.randbytes(size)))
    _git("fast-import", "--quiet", "--done", cwd=bare, input=b"".join([*stream, b"done\n"]))
    # As GitHub serves: one pack with bitmaps, and a commit graph.
    _git("repack", "-a", "-d", "-b", "-q", cwd=bare)
    _git("commit-graph", "write", "--reachable", cwd=bare)
    return f"{server.url}/acme/widgets.git"


def _commit_changes(bare: Path) -> None:
    rng = random.Random(3)
    stream = [
        b"commit refs/heads/main\ncommitter Bench <bench@docora.invalid> 1700000100 +0000\ndata 9\n3 changes\n",
        b"from refs/heads/main^0\n",
        *(_inline(path, _text(rng, 0, 0) + b"changed\n") for path in CHANGED),
        b"done\n",
    ]
    _git("fast-import", "--quiet", "--done", cwd=bare, input=b"".join(stream))


def _text(rng: random.Random, folder: int, index: int) -> bytes:
    lines = rng.randint(4, 40)
    return "".join(f"line {n} of file {index} in folder {folder}: {rng.getrandbits(128):032x}\n"
                   for n in range(lines)).encode()  # fmt: skip


def _inline(path: str, content: bytes) -> bytes:
    return b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(content), content)


def _file_count(bench: Bench) -> int:
    return _git("ls-tree", "-r", "--name-only", "main", cwd=bench.server.repos_dir / "acme/widgets.git").count(b"\n")


def _content_mb(bench: Bench) -> float:
    listing = _git("ls-tree", "-r", "-l", "main", cwd=bench.server.repos_dir / "acme/widgets.git").decode()
    return sum(int(line.split()[3]) for line in listing.splitlines()) / 1e6


# The git CLI ------------------------------------------------------------------------------------------------------


def _git_initial(bench: Bench, clone: Path) -> dict[str, float]:
    started = time.perf_counter()
    rss_mb = _git_measured("clone", "-q", "--depth", "1", "--no-checkout", bench.url, clone)
    cloned = time.perf_counter()
    blob_ids = _blob_ids(_git("ls-tree", "-r", "-z", "HEAD", cwd=clone))
    listed = time.perf_counter()
    _hash_blobs(clone, blob_ids)
    hashed = time.perf_counter()
    return {"seconds": hashed - started, "clone": cloned - started, "ls-tree": listed - cloned,
            "hash": hashed - listed, "rss_mb": rss_mb}  # fmt: skip


def _git_incremental(bench: Bench, clone: Path) -> dict[str, float]:
    bench.server.clear_log()
    started = time.perf_counter()
    _git("fetch", "-q", "--depth", "1", "origin", cwd=clone)
    fetched = time.perf_counter()
    _blob_ids(_git("ls-tree", "-r", "-z", "origin/main", cwd=clone))
    listed = time.perf_counter()
    sent = sum(request.response_bytes for request in bench.server.requests)
    return {"seconds": listed - started, "fetch": fetched - started, "ls-tree": listed - fetched, "bytes": sent}


def _git_ls_remote(bench: Bench) -> float:
    started = time.perf_counter()
    _git("ls-remote", bench.url, "refs/heads/main")
    return time.perf_counter() - started


def _blob_ids(listing: bytes) -> list[bytes]:
    return [
        record.split(b"\t", 1)[0].split()[2]
        for record in listing.split(b"\0")
        if record.startswith((b"100644 blob", b"100755 blob"))
    ]


def _hash_blobs(clone: Path, blob_ids: list[bytes]) -> None:
    process = subprocess.Popen(
        ["git", "cat-file", "--batch"], cwd=clone, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert process.stdin is not None and process.stdout is not None

    def ask() -> None:
        assert process.stdin is not None
        process.stdin.write(b"\n".join(blob_ids) + b"\n")
        process.stdin.close()

    asking = threading.Thread(target=ask)
    asking.start()
    for _ in blob_ids:
        size = int(process.stdout.readline().split()[2])
        hashlib.sha256(process.stdout.read(size)).digest()
        process.stdout.read(1)
    asking.join()
    process.wait()


def _git_measured(*args: str | Path) -> float:
    """Run git and return the peak RSS of its largest process, in MB (wait4 reports it for the whole tree)."""
    process = subprocess.Popen(["git", *map(str, args)], env=_env(), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"git {args[0]} failed")
    return usage.ru_maxrss / 1024


def _git(*args: str | Path, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    result = subprocess.run(["git", *map(str, args)], cwd=cwd, env=_env(), input=input, capture_output=True)
    if result.returncode != 0:
        raise SystemExit(f"git {args[0]} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


def _env() -> dict[str, str]:
    return {**os.environ, **_GIT_ENV}


# Docora, in a child process ---------------------------------------------------------------------------------------


class _Worker:
    """A child process holding Docora's adapters, as a warm Lambda container would, scanning on request."""

    def __init__(self, bench: Bench, *, upload: bool, name: str) -> None:
        self.repository_id = _add_repository(bench.database_url)
        self._bench = bench
        self._pipe, child = bench.spawn.Pipe()
        config = {"database_url": bench.database_url, "git_base_url": bench.server.url, "upload": upload,
                  "ephemeral_dir": str(bench.root / f"ephemeral-{name}"), "aws_endpoint_url": bench.aws_endpoint_url,
                  "repository_id": self.repository_id}  # fmt: skip
        self._process = bench.spawn.Process(target=_serve, args=(child, config), daemon=True)
        self.name = name

    def __enter__(self) -> _Worker:
        self._process.start()
        self.call("ready")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._pipe.send(("stop",))
        self._process.join(timeout=30)
        _delete_repository(self._bench.database_url, self.repository_id)

    def call(self, *command: Any) -> Any:
        self._pipe.send(command)
        answer = self._pipe.recv()
        if isinstance(answer, str):
            raise SystemExit(f"the scanning process failed:\n{answer}")
        return answer


def _scan_counted(bench: Bench, worker: _Worker, *, at: datetime, profile: str | None) -> dict[str, Any]:
    path = str(bench.profile_dir / f"scan-{profile}-{worker.name}.prof") if profile and bench.profile_dir else None
    bench.server.clear_log()
    result = worker.call("scan", at, path)
    result["requests"] = len(bench.server.requests)
    result["bytes"] = sum(request.response_bytes for request in bench.server.requests)
    return result


def _serve(pipe: Any, config: dict[str, Any]) -> None:
    try:
        _serve_commands(pipe, config)
    except BaseException:
        pipe.send(traceback.format_exc())
        raise


def _serve_commands(pipe: Any, config: dict[str, Any]) -> None:
    os.environ.update(AWS_ENV, AWS_ENDPOINT_URL=config["aws_endpoint_url"])
    import boto3

    from chalicelib import wiring
    from chalicelib.adapters.git_dulwich import DulwichGit
    from chalicelib.adapters.s3_contents import S3Contents
    from chalicelib.config import Settings
    from chalicelib.services import scanning

    settings = Settings(database_url=config["database_url"], redis_url=REDIS_URL, encryption_key=KEY,
                        git_base_url=config["git_base_url"], ephemeral_dir=config["ephemeral_dir"])  # fmt: skip
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    for queue in (settings.scan_queue_name, settings.delivery_queue_name):
        sqs.create_queue(QueueName=queue)
    s3.create_bucket(Bucket=settings.content_bucket)
    deps = wiring.build(settings)
    steps: dict[str, float] = Counter()
    s3.meta.events.register("before-call.s3", lambda **_: steps.update({"s3.requests": 1}))  # Counter: adds 1
    uploaded = S3Contents(s3, settings.content_bucket, spool_dir=settings.ephemeral_dir)
    contents = uploaded if config["upload"] else _Sink()
    git = DulwichGit(settings.ephemeral_dir)
    deps = dataclasses.replace(deps, git=_Timed(git, steps), contents=_Timed(contents, steps))
    scan_config = wiring.configs_from(settings).scanning
    while (command := pipe.recv())[0] != "stop":
        if command[0] == "scan":
            steps.clear()
            pipe.send(_scan(scanning, config["repository_id"], command[1], command[2], deps, scan_config, steps))
        elif command[0] == "close_database":
            deps.store.close()  # type: ignore[attr-defined]
            pipe.send(None)
        else:
            pipe.send(None)
    deps.git.close()  # type: ignore[attr-defined]
    deps.store.close()  # type: ignore[attr-defined]


def _scan(
    scanning: Any, repository_id: str, at: datetime, profile: str | None, deps: Any, scan_config: Any, steps: Any
) -> Any:
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = scanning.scan_repository(repository_id, at, now=at, config=scan_config, deps=deps)
    seconds = time.perf_counter() - started
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    steps["accounted"] = sum(steps[key] for key in ("git.head", "git.fetch_tree", "hash"))
    return {"seconds": seconds, "outcome": result.outcome, "blobs_read": result.blobs_read,
            "peak_mb": _status_mb("VmHWM"), "steps": dict(steps)}  # fmt: skip


class _Timed:
    """Adds up the time spent in each method of an adapter, and in each step of an iterator one returns.

    put_many's time (reading blobs from git, hashing, uploading) is counted as hash; read_blobs' share of it, the
    time spent in its iterator, is counted under git.read_blobs as well.
    """

    def __init__(self, inner: Any, steps: dict[str, float]) -> None:
        self._inner = inner
        self._steps = steps
        self._prefix = "git." if hasattr(inner, "fetch_tree") else "contents."

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)
        key = "hash" if name == "put_many" else self._prefix + name

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            finally:
                self._steps[key] += time.perf_counter() - started
            return self._timed_steps(key, result) if isinstance(result, Iterator) else result

        return timed

    def _timed_steps(self, key: str, iterator: Iterator[Any]) -> Iterator[Any]:
        while True:
            started = time.perf_counter()
            try:
                item = next(iterator)
            except StopIteration:
                return
            finally:
                self._steps[key] += time.perf_counter() - started
            yield item


class _Sink:
    """Contents that are read and hashed by the scan, as always, and then dropped instead of uploaded."""

    def put_many(self, contents: Any) -> dict[str, None]:
        return {item.sha256: None for item in contents}  # stored nowhere: no bundle slot

    def open(self, content: Any) -> Any:
        raise NotImplementedError

    def ping(self) -> None:
        pass


def _status_mb(field: str) -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


# Postgres ---------------------------------------------------------------------------------------------------------


def _add_repository(database_url: str) -> str:
    cipher = AesGcmCipher(KEY)
    with psycopg.connect(database_url, autocommit=True) as connection, connection.transaction():
        app = PostgresApps(connection).add(
            NewApp(tokens.new_app_id(), "bench", "ops@example.com", None, None, "https://receiver.example.com",
                   tokens.new_bearer_token().encode()[:32], "$2b$04$unused", cipher.encrypt("k" * 32))
        )  # fmt: skip
        repository = PostgresRepositories(connection).add(
            NewRepository(tokens.new_repository_id(), "https://github.com/acme/widgets", "acme", "widgets", "main",
                          False)
        )  # fmt: skip
        PostgresWatches(connection).add(NewWatch(app.id, repository.id, None))
    return repository.id


def _delete_repository(database_url: str, repository_id: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DELETE FROM watches WHERE repository_id = %s", (repository_id,))
        connection.execute("DELETE FROM repositories WHERE id = %s", (repository_id,))
        connection.execute("DELETE FROM apps")


def _mark_delivered(database_url: str, repository_id: str) -> None:
    """Make every watch's ledger equal the snapshot, as a finished delivery would."""
    with psycopg.connect(database_url, autocommit=True) as connection, connection.transaction():
        connection.execute(
            """INSERT INTO delivered_files (app_id, repository_id, path, sha256, delivered_at)
               SELECT w.app_id, f.repository_id, f.path, f.sha256, now()
                 FROM snapshot_files f JOIN watches w ON w.repository_id = f.repository_id
                WHERE f.repository_id = %(id)s
               ON CONFLICT (app_id, repository_id, path) DO UPDATE SET sha256 = EXCLUDED.sha256""",
            {"id": repository_id},
        )
        connection.execute("UPDATE watches SET status = 'synced' WHERE repository_id = %(id)s", {"id": repository_id})
    # Autovacuum analyzes a table that grew this much within a minute. Without fresh statistics the planner takes
    # the 20,000-row ledger for one row, and fan-out's comparison of snapshot and ledger runs for 40 s, not 0.1 s.
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("ANALYZE delivered_files")


def _table_writes(database_url: str) -> dict[str, Counter[str]]:
    """Rows inserted, updated and deleted per table so far, once no other session is connected to the database."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        for _ in range(100):
            others = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            if others == (0,):
                break
            time.sleep(0.05)
        rows = connection.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables")
        return {table: Counter(inserted=ins, updated=upd, deleted=dele) for table, ins, upd, dele in rows}


def _delta(before: dict[str, Counter[str]], after: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    changed = {}
    for table, counts in after.items():
        difference = counts - before.get(table, Counter())
        if difference:
            changed[table] = difference
    return changed


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")
