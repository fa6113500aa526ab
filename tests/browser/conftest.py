"""The browser tier: Debian's headless Chromium, driven by Selenium through chromium-driver, against the API served
on loopback by Chalice's local server over real Postgres and Redis, with moto for SQS.

`make chromium` installs the browser when it is missing; without it these tests are skipped with that advice.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import redis
from chalice.config import Config
from chalice.local import HTTPServerThread, LocalChalice, LocalDevServer, create_local_server
from moto import mock_aws

from chalicelib import wiring
from chalicelib.ports import Deps
from docora_local.harness.settings import make_settings

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-dev-shm-usage", "--window-size=1280,900")  # fmt: skip


@dataclass
class Served:
    url: str
    deps: Deps
    configs: wiring.Configs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def browser_redis_url(redis_url: str) -> str:
    """TEST_BROWSER_REDIS_URL, when set: a database of its own, where the sessions of a test that takes seconds are
    safe from the FLUSHDB of other test runs sharing TEST_REDIS_URL's database on one machine."""
    own = os.environ.get("TEST_BROWSER_REDIS_URL")
    if own:
        redis.Redis.from_url(own).flushdb()
    return own or redis_url


@pytest.fixture
def served(monkeypatch, database_url, browser_redis_url) -> Iterator[Served]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        sqs = boto3.client("sqs")
        for name in ("docora-scan", "docora-delivery"):
            sqs.create_queue(QueueName=name)
        settings = make_settings(database_url=database_url, redis_url=browser_redis_url, sweep_batch_size=1,
                                 allow_private_webhook_targets=True)  # fmt: skip
        deps, configs = wiring.build(settings), wiring.configs_from(settings)
        monkeypatch.setattr(wiring, "deps", lambda: deps)
        monkeypatch.setattr(wiring, "configs", lambda: configs)
        import app

        port = _free_port()
        thread = HTTPServerThread(lambda: _local_server(app.app, port))
        thread.start()
        _wait_for(port)
        yield Served(f"http://127.0.0.1:{port}", deps, configs)
        thread.shutdown()
        deps.store.close()


def _local_server(app: object, port: int) -> LocalDevServer:
    """create_local_server gives each server thread its own current_request, as `chalice local` does; it changes the
    app's class, so only the first server of the session makes it."""
    if isinstance(app, LocalChalice):
        return LocalDevServer(app, Config(), "127.0.0.1", port)
    return create_local_server(app, Config(), "127.0.0.1", port)


def _wait_for(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the local server did not start")


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no Debian chromium and chromium-driver: run `make chromium`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="docora-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
        driver.implicitly_wait(0)
        yield driver
        driver.quit()


@pytest.fixture
def browser(chromium, served) -> Iterator[object]:
    chromium.delete_all_cookies()
    chromium.get_log("browser")  # what an earlier test left
    yield chromium
    problems = [entry for entry in chromium.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert [entry for entry in problems if not _refused_on_purpose(entry)] == []


def _refused_on_purpose(entry: dict[str, str]) -> bool:
    """A page the test asked to be refused (a wrong key, a rate limit) is logged as a failed load; nothing else is."""
    message = entry["message"]
    return entry.get("source") == "network" and any(f"status of {code}" in message for code in (401, 403, 429))
