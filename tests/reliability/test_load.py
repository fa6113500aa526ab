"""Load: 50 apps x 20 repositories under random pushes for a while, then every file of every app checked.

Docora's consumers run in processes of their own and moto in another, as bench/load.py runs them. Slow (about
three minutes with the defaults): run with `make test-slow`, or size it with DOCORA_LOAD_APPS,
DOCORA_LOAD_REPOSITORIES, DOCORA_LOAD_SECONDS, DOCORA_LOAD_PUSHES_PER_SECOND, DOCORA_LOAD_DELIVERY_CONCURRENCY,
DOCORA_LOAD_SCAN_CONCURRENCY and DOCORA_LOAD_HANGING_APPS. The figures are printed; `bench/load.py` runs the same
scenario on its own, with and without hanging receivers, and writes them to bench/results/load.json (a test run
leaves the committed figures alone).
"""

from __future__ import annotations

import multiprocessing
import os

import pytest

from docora_local.harness.load import LoadConfig, run_load, summary
from docora_local.harness.scan_stack import scan_stack
from docora_local.standins.moto_server import moto_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def test_every_app_holds_every_repository_at_its_last_commit_after_a_load_of_pushes(
    tmp_path, database_url, redis_url, monkeypatch, capsys
):
    config = LoadConfig.from_env(os.environ)
    with (
        moto_server(multiprocessing.get_context("spawn")) as aws_endpoint_url,
        scan_stack(tmp_path, database_url, redis_url, monkeypatch, aws_endpoint_url=aws_endpoint_url) as stack,
    ):
        report = run_load(stack, config, aws_endpoint_url=aws_endpoint_url, scratch=tmp_path)
    with capsys.disabled():
        print("\n" + summary(report))

    assert report["mismatches"] == []
    assert report["problems"] == []
    assert report["verified"]["watches"] == (config.apps - config.hanging_apps) * config.repositories
    assert report["steady"]["unmatched"] == 0
