"""Delivery throughput: 5,000 small text files to one receiver on loopback, against a bare requests loop, in one run.

Baseline: one `requests.Session` POSTing the same bodies, built and signed beforehand, to the same receiver, one
after another. Docora: `delivering.deliver_watch` over the real stack (Postgres, Redis; S3 and SQS in processes of
their own, see below) sending the snapshot of a watch whose ledger is empty. Its contents were stored by
S3Contents.put_many, as a scan stores them: the small ones in bundles, in path order. The job reads them with a few
ranged GETs on a small thread pool, takes rate-limit tokens from Redis in blocks, builds and signs each payload,
POSTs it (with urllib3), and sends the statements that log the attempt and write the ledger row before the next
POST, reading their answer after it. DELIVERY_RATE_LIMIT_PER_MINUTE is set to 10^9 so the limiter never paces the
run (the default would). The ledger rows are counted after each run.

S3 is bench/bare_s3.py, a loopback server whose side of a request costs next to nothing (moto's server does much
more work per request and would bound the run at moto's speed); SQS is moto's server. Docora runs twice: with its
contents in that S3, and with them in memory, which shows what reading them from S3 costs it. Then 50 binary files
of 5 MB each go out chunked (default threshold 1 MiB, slices of 524,288 base64 characters): throughput and the peak
RSS of the delivering process (a child process; its peak is reset with /proc/self/clear_refs before each run).

The receiver is a minimal asyncio HTTP/1.1 server in its own process (keep-alive, reads each body, answers 200
with no body) and serves both sides.

Receivers are rarely on loopback: the last line sends the same 5,000 files to a receiver that answers each request
after 50 ms (another region, TLS, a database write), to an app with the default 8 requests in flight. Its ideal is
8 / 50 ms = 160 files/s; the baseline is 8 threads, each with a `requests.Session`, POSTing the same prepared
bodies. Docora's job gives way after its 30-second time slice, as deployed, and the next job carries on: the
figure covers every job until the app holds all 5,000 files.

Needs Postgres and Redis: BENCH_DATABASE_URL (an admin URL; a scratch database is created and dropped) and
BENCH_REDIS_URL, defaulting to the local services. Run: .venv/bin/python bench/deliver.py (`--profile FILE` writes
a cProfile of Docora's text delivery from S3).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import cProfile
import ctypes
import dataclasses
import gc
import hashlib
import json
import multiprocessing
import os
import random
import re
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "localstack"))  # docora_local, the shared tooling

from bench.bare_s3 import bare_s3
from bench.scratch_database import scratch_database
from chalicelib import __version__
from chalicelib.adapters.aes_cipher import AesGcmCipher
from chalicelib.adapters.s3_contents import S3Contents
from chalicelib.domain import tokens, webhooks
from chalicelib.domain.apps import NewApp
from chalicelib.domain.bundles import NewContent
from chalicelib.domain.repositories import NewRepository, NewWatch
from docora_local.standins import loopback_http as loopback
from docora_local.standins.moto_server import AWS_ENV, moto_server

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
KEY = bytes.fromhex("11" * 32)
CLIENT_AUTH_KEY = "bench-receiver-signing-key-0123456789"
BUCKET = "docora-contents"
TEXT_FILES, BINARY_FILES, BINARY_BYTES = 5000, 50, 5_000_000
COMMIT = "0123456789abcdef0123456789abcdef01234567"
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
GOAL = 0.70
LATENCY_SECONDS, IN_FLIGHT = 0.05, 8
LATENCY_GOAL = 120  # files per second: 75% of the ideal for 8 in flight


@dataclasses.dataclass(frozen=True)
class Seeded:
    app_id: str
    text_repository: str
    binary_repository: str
    distant_app_id: str  # watches the text repository through the receiver that answers after 50 ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", help="write a cProfile of Docora's text delivery (contents in S3) here")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    with moto_server(spawn) as sqs_url, bare_s3(spawn, fill=dict) as s3_url:
        _bench(spawn, {**AWS_ENV, "AWS_ENDPOINT_URL": sqs_url, "AWS_ENDPOINT_URL_S3": s3_url}, args.profile)


def _bench(spawn: Any, aws_env: dict[str, str], profile: str | None) -> None:
    pipes = [spawn.Pipe(), spawn.Pipe()]
    receivers = [
        spawn.Process(target=serve, args=(there,), daemon=True)
        for serve, (there, _) in zip((_receive, _receive_after_50_ms), pipes, strict=True)
    ]
    for receiver in receivers:
        receiver.start()
    receiver_url, distant_url = (f"http://127.0.0.1:{here.recv()}" for _, here in pipes)
    try:
        with scratch_database("docora_bench_deliver") as url:
            seeded = _seed(url, receiver_url, distant_url, aws_env)
            results = _run(spawn, url, (receiver_url, distant_url), seeded, profile, aws_env)
    finally:
        for receiver in receivers:
            receiver.terminate()
    _print(results)


def _run(
    spawn: Any, url: str, receivers: tuple[str, str], seeded: Seeded, profile: str | None, aws_env: dict[str, str]
) -> dict[str, Any]:
    receiver_url, distant_url = receivers
    prepared = _baseline_requests(receiver_url, seeded.app_id, seeded)
    results: dict[str, Any] = {"baseline": [_baseline(prepared, receiver_url)]}
    for source in ("s3", "memory"):
        _forget_ledger(url, seeded)
        where = (url, receiver_url, aws_env)
        results[source] = _in_child(spawn, where, seeded, source, profile if source == "s3" else None)
        results["baseline"].append(_baseline(prepared, receiver_url))
    distant = _baseline_requests(distant_url, seeded.distant_app_id, seeded)
    results["distant_baseline"] = _baseline(distant, distant_url, threads=IN_FLIGHT)
    results["distant"] = _in_child(spawn, (url, distant_url, aws_env), seeded, "distant", None)
    return results


def _print(results: dict[str, Any]) -> None:
    baseline = max(results["baseline"])
    rates = ", ".join(f"{rate:,.0f}" for rate in results["baseline"])
    print(f"{TEXT_FILES:,} small text files to one receiver on loopback (rate limit set to 10^9/min, so no pacing)")
    print(f"  baseline, bare requests.Session loop:   {baseline:8,.0f} files/s   {1000 / baseline:5.2f} ms/file   "
          f"(best of {len(results['baseline'])}: {rates})")  # fmt: skip
    for source, label in (("s3", "Docora, contents in S3:        "), ("memory", "Docora, contents in memory:    ")):
        run = results[source]
        rate = TEXT_FILES / run["text_seconds"]
        verdict = "meets" if rate / baseline >= GOAL else "misses"
        print(f"  {label}          {rate:8,.0f} files/s   {1000 / rate:5.2f} ms/file   ratio {rate / baseline:4.0%} "
              f"({verdict} the {GOAL:.0%} goal)   [{run['text_outcome']}, "
              f"{run['received_text']:,} POSTs received, {run['ledger_text']:,} ledger rows, "
              f"{run['gets_text']:,} S3 GETs]")  # fmt: skip
    run = results["s3"]
    megabytes = BINARY_FILES * BINARY_BYTES / 1e6
    print(f"{BINARY_FILES} binary files of {BINARY_BYTES / 1e6:g} MB, chunked (default threshold and slice size)")
    print(f"  Docora, contents in S3:        {megabytes / run['binary_seconds']:8.1f} MB/s of file content "
          f"({megabytes:.0f} MB in {run['binary_seconds']:.1f} s, {run['received_binary']:,} slices)   "
          f"[{run['binary_outcome']}]")  # fmt: skip
    print(f"  peak RSS of the delivering process: {run['binary_peak_mb']:.0f} MB during the binary files "
          f"(from {run['binary_base_mb']:.0f} MB before them), {run['text_peak_mb']:.0f} MB during the text files "
          f"(from {run['text_base_mb']:.0f} MB)")  # fmt: skip
    ideal, baseline, run = IN_FLIGHT / LATENCY_SECONDS, results["distant_baseline"], results["distant"]
    rate = TEXT_FILES / run["text_seconds"]
    print(f"{TEXT_FILES:,} small text files to a receiver that answers after {LATENCY_SECONDS * 1000:.0f} ms, "
          f"{IN_FLIGHT} requests in flight (ideal {ideal:.0f} files/s)")  # fmt: skip
    print(f"  baseline, {IN_FLIGHT} threads of requests.Session:   {baseline:8,.0f} files/s   ratio to the ideal "
          f"{baseline / ideal:4.0%}")  # fmt: skip
    print(f"  Docora:                                 {rate:8,.0f} files/s   ratio to the ideal {rate / ideal:4.0%}, "
          f"to the baseline {rate / baseline:4.0%} ({'meets' if rate >= LATENCY_GOAL else 'misses'} the "
          f"{LATENCY_GOAL} files/s goal)   [{run['text_outcome']} in {run['jobs']} jobs, {run['received_text']:,} "
          f"POSTs received, {run['ledger_text']:,} ledger rows]")  # fmt: skip
    print(f"latency 50ms: {rate:.0f} files/s")


def _baseline_requests(receiver_url: str, app_id: str, seeded: Seeded) -> list[tuple[str, bytes, dict[str, str]]]:
    """What Docora sends `app_id` for the text files, signed once, in the order it starts them."""
    ref = webhooks.RepositoryRef(seeded.text_repository, "https://github.com/acme/docs", "acme", "docs")
    moment = int(T0.timestamp())
    prepared = []
    for path, content in sorted(_text_files(), key=lambda item: item[0].encode()):
        sha = hashlib.sha256(content).hexdigest()
        body = webhooks.create_body(ref, path, sha, len(content), content.decode(), None, COMMIT, T0)
        delivery_id = webhooks.delivery_id(app_id, seeded.text_repository, path, sha, "create")
        headers = webhooks.headers(app_id, CLIENT_AUTH_KEY, body, "create", delivery_id, moment, __version__)
        prepared.append((webhooks.event_url(receiver_url + "/hooks", "create"), body, headers))
    return prepared


def _baseline(prepared: list[tuple[str, bytes, dict[str, str]]], receiver_url: str, *, threads: int = 1) -> float:
    """Files per second of `threads` requests.Session loops sharing the requests out, each POST after the last."""
    shares = [prepared[n::threads] for n in range(threads)]
    sessions = [requests.Session() for _ in range(threads)]
    for session in sessions:
        session.get(receiver_url + "/stats").raise_for_status()  # connect before the clock starts, as Docora's

    def post_all(session: requests.Session, share: list[tuple[str, bytes, dict[str, str]]]) -> None:
        for url, body, headers in share:
            session.post(url, data=body, headers=headers).raise_for_status()

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(post_all, sessions, shares))
    seconds = time.perf_counter() - started
    for session in sessions:
        session.close()
    return len(prepared) / seconds


def _in_child(
    spawn: Any, where: tuple[str, str, dict[str, str]], seeded: Seeded, source: str, profile: str | None
) -> Any:
    parent, child = spawn.Pipe()
    process = spawn.Process(target=_deliver_in_child, args=(child, where, seeded, source, profile))
    process.start()
    result = parent.recv()
    process.join()
    if isinstance(result, str):
        raise SystemExit(f"the delivering process failed:\n{result}")
    return result


def _deliver_in_child(
    pipe: Any, where: tuple[str, str, dict[str, str]], seeded: Seeded, source: str, profile: str | None
) -> None:
    url, receiver_url, aws_env = where
    os.environ.update(aws_env)
    import traceback

    try:
        pipe.send(_deliver(url, receiver_url, seeded, source, profile))
    except BaseException:
        pipe.send(traceback.format_exc())
        raise


def _deliver(url: str, receiver_url: str, seeded: Seeded, source: str, profile: str | None) -> dict[str, Any]:
    import boto3

    from chalicelib import wiring
    from chalicelib.config import Settings
    from chalicelib.services import delivering

    settings = Settings(
        database_url=url,
        redis_url=REDIS_URL,
        encryption_key=KEY,
        allow_private_webhook_targets=True,  # the receiver is on loopback
        delivery_rate_limit_per_minute=10**9,
    )
    sqs = boto3.client("sqs")
    for queue in (settings.scan_queue_name, settings.delivery_queue_name):
        sqs.create_queue(QueueName=queue)
    deps = wiring.build(settings)
    gets: list[str] = []  # S3 GETs of the text files' run
    app_id = seeded.distant_app_id if source == "distant" else seeded.app_id
    if source == "memory":
        deps = dataclasses.replace(deps, contents=_MemoryContents(dict(_stored(_text_files()))))
    else:
        s3 = boto3.client("s3")
        s3.meta.events.register("before-call.s3.GetObject", lambda **_: gets.append("GetObject"))
        deps = dataclasses.replace(deps, contents=S3Contents(s3, settings.content_bucket))

    def deliver(repository_id: str) -> tuple[str, float, float, float]:
        """Jobs until the app holds the snapshot, each taking over where the last gave way, as queued ones would."""
        _settle_memory()
        before = _rss_mb("VmRSS")
        profiler = cProfile.Profile() if profile and repository_id == seeded.text_repository else None
        started, sent, jobs = time.perf_counter(), 0, 0
        if profiler:
            profiler.enable()
        while True:
            result = delivering.deliver_watch(
                app_id,
                repository_id,
                clock=lambda: datetime.now(UTC),
                sleep=time.sleep,
                time_left_ms=lambda: 300_000,
                random=lambda: 0.5,
                config=wiring.configs_from(settings).delivering,
                deps=deps,
            )
            sent, jobs = sent + result.sent, jobs + 1
            if result.outcome != delivering.Outcome.CONTINUED:
                break
        seconds = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        result_jobs.append(jobs)
        return f"{result.outcome}, {sent:,} sent", seconds, before, _rss_mb("VmHWM")

    result_jobs: list[int] = []

    result: dict[str, Any] = {}
    counted = _receiver_stats(receiver_url)["requests"]
    outcome = deliver(seeded.text_repository)
    result["text_outcome"], result["text_seconds"], result["text_base_mb"], result["text_peak_mb"] = outcome
    result["received_text"] = _receiver_stats(receiver_url)["requests"] - counted
    result["ledger_text"] = _ledger_rows(url, app_id, seeded.text_repository)
    result["gets_text"] = len(gets)
    result["jobs"] = result_jobs[0]
    if source == "s3":
        counted = _receiver_stats(receiver_url)["requests"]
        outcome = deliver(seeded.binary_repository)
        result["binary_outcome"], result["binary_seconds"], result["binary_base_mb"], result["binary_peak_mb"] = outcome
        result["received_binary"] = _receiver_stats(receiver_url)["requests"] - counted
    deps.store.close()
    return result


class _MemoryContents:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self._objects = objects

    def open(self, content: Any) -> Any:
        import io

        return io.BytesIO(self._objects[content.sha256])

    @contextlib.contextmanager
    def read_each(self, contents: Any) -> Any:
        yield (self._objects[content.sha256] for content in contents)

    def put_many(self, blobs: Any) -> int:
        raise NotImplementedError

    def ping(self) -> None:
        pass


def _seed(url: str, receiver_url: str, distant_url: str, aws_env: dict[str, str]) -> Seeded:
    """One app watching two repositories whose snapshots it has never received: text files, and binaries; another
    watching the text files through the distant receiver.

    Their contents go into the bucket through S3Contents.put_many, as a scan puts them (small ones in bundles).
    """
    cipher = AesGcmCipher(KEY)
    s3 = boto3.client(
        "s3",
        endpoint_url=aws_env["AWS_ENDPOINT_URL_S3"],
        region_name=aws_env["AWS_DEFAULT_REGION"],
        aws_access_key_id=aws_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws_env["AWS_SECRET_ACCESS_KEY"],
    )
    contents = S3Contents(s3, BUCKET)
    app_id, distant_app_id = tokens.new_app_id(), tokens.new_app_id()
    with psycopg.connect(url, autocommit=True) as connection, connection.transaction():
        from chalicelib.adapters.postgres_apps import PostgresApps
        from chalicelib.adapters.postgres_repositories import PostgresRepositories
        from chalicelib.adapters.postgres_watches import PostgresWatches

        for each, base_url in ((app_id, receiver_url), (distant_app_id, distant_url)):
            PostgresApps(connection).add(
                NewApp(each, "bench", "ops@example.com", None, None, base_url + "/hooks",
                       tokens.new_bearer_token().encode()[:32], "$2b$04$unused", cipher.encrypt(CLIENT_AUTH_KEY))
            )  # fmt: skip
        ids = []
        for name, files in (("docs", _text_files()), ("assets", _binary_files())):
            repository = PostgresRepositories(connection).add(
                NewRepository(
                    tokens.new_repository_id(), f"https://github.com/acme/{name}", "acme", name, "main", False
                )
            )
            PostgresWatches(connection).add(NewWatch(app_id, repository.id, None))
            if name == "docs":
                PostgresWatches(connection).add(NewWatch(distant_app_id, repository.id, None))
            placed = contents.put_many(
                NewContent(hashlib.sha256(content).hexdigest(), content, path) for path, content in files
            )
            _snapshot(connection, repository.id, files, placed)
            ids.append(repository.id)
    return Seeded(app_id, *ids, distant_app_id)


def _snapshot(connection: psycopg.Connection, repository_id: str, files: Any, placed: dict[str, Any]) -> None:
    count = 0
    connection.execute(
        "INSERT INTO snapshots (repository_id, commit_sha, file_count, taken_at) VALUES (%s, %s, 0, %s)",
        (repository_id, COMMIT, T0),
    )
    with connection.cursor() as cursor:
        copy_rows = """
            COPY snapshot_files (repository_id, path, blob_id, sha256, size, is_binary, bundle, bundle_offset)
            FROM STDIN
        """
        with cursor.copy(copy_rows) as copy:
            for path, content in files:
                blob_id = hashlib.sha1(b"blob %d\0" % len(content) + content).digest()  # noqa: S324 - git's id
                sha256 = hashlib.sha256(content)
                slot = placed[sha256.hexdigest()]
                bundle, offset = (bytes.fromhex(slot.bundle), slot.offset) if slot else (None, None)
                row = (repository_id, path, blob_id, sha256.digest(), len(content), path.endswith(".bin"))
                copy.write_row((*row, bundle, offset))
                count += 1
    connection.execute("UPDATE snapshots SET file_count = %s WHERE repository_id = %s", (count, repository_id))


def _forget_ledger(url: str, seeded: Seeded) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DELETE FROM delivered_files")
        connection.execute("DELETE FROM delivery_attempts")
        connection.execute("UPDATE watches SET status = 'pending', last_commit_sha = NULL, last_synced_at = NULL")
        connection.execute("VACUUM ANALYZE delivered_files")


def _text_files() -> list[tuple[str, bytes]]:
    """5,000 Markdown files of 0.2 to 2 KB, some with accents and CJK, the same in every process."""
    rng = random.Random(5000)
    words = ["docora", "webhook", "snapshot", "ledger", "café", "naïve", "東京", "commit", "delivery", "tree"]
    files = []
    for index in range(TEXT_FILES):
        target = rng.randint(200, 2000)
        text = f"# File {index}\n\n"
        while len(text) < target:
            text += " ".join(rng.choice(words) for _ in range(12)) + "\n"
        files.append((f"docs/section-{index // 100:02d}/page-{index:04d}.md", text.encode()))
    return files


def _binary_files() -> list[tuple[str, bytes]]:
    rng = random.Random(50)
    return [(f"assets/blob-{index:02d}.bin", rng.randbytes(BINARY_BYTES)) for index in range(BINARY_FILES)]


def _stored(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    return [(hashlib.sha256(content).hexdigest(), content) for _, content in files]


def _receive(pipe: Any) -> None:
    """Answer every POST with 200 and no body; GET /stats gives what was received so far."""
    stats = {"requests": 0, "bytes": 0}

    def respond(head: bytes, body: bytes) -> bytes:
        if head.startswith(b"GET /stats"):
            answer = json.dumps(stats).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
                len(answer),
                answer,
            )
        stats["requests"] += 1
        stats["bytes"] += len(body)
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    loopback.serve(pipe, respond)


def _receive_after_50_ms(pipe: Any) -> None:
    """Answer every POST with 200 after 50 ms, without holding up the other connections meanwhile."""
    stats = {"requests": 0}

    async def respond(head: bytes, body: bytes) -> bytes:
        if head.startswith(b"GET /stats"):
            answer = json.dumps(stats).encode()
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
        stats["requests"] += 1
        await asyncio.sleep(LATENCY_SECONDS)
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    loopback.serve_async(pipe, respond)


def _ledger_rows(url: str, app_id: str, repository_id: str) -> int:
    """Rows the delivery acknowledged into the app's ledger: every file sent should have one."""
    with psycopg.connect(url) as connection:
        query = "SELECT count(*) FROM delivered_files WHERE app_id = %s AND repository_id = %s"
        return connection.execute(query, (app_id, repository_id)).fetchone()[0]


def _receiver_stats(receiver_url: str) -> dict[str, int]:
    with urllib.request.urlopen(receiver_url + "/stats", timeout=10) as response:
        return json.loads(response.read())


def _settle_memory() -> None:
    """Give freed memory back to the OS (building contents leaves a lot), then restart the peak from here."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with contextlib.suppress(OSError):  # not Linux, or not allowed: the peak then covers the whole process life
        Path("/proc/self/clear_refs").write_text("5")


def _rss_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else float("nan")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(benchmark wall time {time.perf_counter() - started:.0f} s)")
