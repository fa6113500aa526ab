"""Authenticated GET /api/repositories with 1 app and with 1,000 apps in the database, in one run.

Docora finds the caller's row by an indexed HMAC of the token and checks one bcrypt hash, so the
cost should not grow with the number of apps (the original checked bcrypt against every app).
Prints p50 and p99 per case and the ratio 1,000 apps / 1 app, for two regimes:
- warm: the container has verified this token before (bcrypt skipped, one indexed query);
- cold: every request pays one cost-12 bcrypt check.
The two databases are measured in alternation, request by request, so machine noise hits both alike.

Needs Postgres and Redis: BENCH_DATABASE_URL (an admin URL; scratch databases are created and dropped)
and BENCH_REDIS_URL, defaulting to the local services. Run: .venv/bin/python bench/auth.py
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalice.test import Client

from bench.scratch_database import scratch_database
from chalicelib import wiring
from chalicelib.adapters.bcrypt_tokens import BcryptTokenHasher
from chalicelib.config import Settings
from chalicelib.domain import tokens

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
KEY = bytes.fromhex("11" * 32)
CASES = (1, 1000)
WARM_ROUNDS, COLD_ROUNDS = 3000, 15


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the SQS client is built but not called
    with contextlib.ExitStack() as databases:
        urls = {apps: databases.enter_context(scratch_database(f"docora_bench_{apps}")) for apps in CASES}
        warm, cold = _measure({apps: _setup(url, apps) for apps, url in urls.items()})
    for regime, samples in (("warm", warm), ("cold", cold)):
        (p50_one, p99_one), (p50_many, p99_many) = (_percentiles(samples[apps]) for apps in CASES)
        print(f"{regime:4} | 1 app: p50 {p50_one:7.2f} ms, p99 {p99_one:7.2f} ms "
              f"| 1000 apps: p50 {p50_many:7.2f} ms, p99 {p99_many:7.2f} ms "
              f"| ratio p50 {p50_many / p50_one:.2f}, p99 {p99_many / p99_one:.2f}")  # fmt: skip


def _setup(url: str, app_count: int):  # type: ignore[no-untyped-def]
    token = _seed(url, app_count)
    settings = Settings(database_url=url, redis_url=REDIS_URL, encryption_key=KEY, app_rate_limit_per_minute=10**9)
    configs = wiring.configs_from(settings)
    wiring.configs = lambda: configs  # the same for every case: only the database differs
    return wiring.build(settings), {"Authorization": f"Bearer {token}"}


def _measure(setups):  # type: ignore[no-untyped-def]
    import app

    warm: dict[int, list[float]] = {apps: [] for apps in CASES}
    cold: dict[int, list[float]] = {apps: [] for apps in CASES}
    with Client(app.app) as client:
        for rounds, samples, forget in ((50, None, False), (WARM_ROUNDS, warm, False), (COLD_ROUNDS, cold, True)):
            for _ in range(rounds):
                for apps, (deps, headers) in setups.items():
                    if forget:  # a container that never verified this token: one cost-12 bcrypt check
                        object.__setattr__(deps, "token_hasher", BcryptTokenHasher(KEY))
                    wiring.deps = lambda deps=deps: deps  # the composition root, pointed at this case
                    elapsed = _timed_get(client, headers)
                    if samples is not None:
                        samples[apps].append(elapsed)
    for deps, _ in setups.values():
        deps.store.close()
    return warm, cold


def _seed(url: str, app_count: int) -> str:
    """`app_count` apps; the measured one has a cost-12 hash, the others cheap ones (never checked)."""
    measured = tokens.new_bearer_token()
    cheap, real = BcryptTokenHasher(KEY, rounds=4), BcryptTokenHasher(KEY)
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY apps (id, token_lookup, token_hash, app_name, email, base_url, "
                         "client_auth_key_encrypted) FROM STDIN") as copy:  # fmt: skip
            for index in range(app_count):
                token = measured if index == app_count // 2 else tokens.new_bearer_token()
                token_hash = (real if token == measured else cheap).hash(token)
                lookup = tokens.token_lookup_key(token, KEY)
                copy.write_row((tokens.new_app_id(), lookup, token_hash, "bench", "b@example.com", "https://x.example",
                                "a:b:c"))  # fmt: skip
        cursor.execute("ANALYZE apps")
    return measured


def _timed_get(client: Client, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    response = client.http.get("/api/repositories", headers=headers)
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise SystemExit(f"GET /api/repositories answered {response.status_code}: {response.body!r}")
    return elapsed


def _percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


if __name__ == "__main__":
    main()
