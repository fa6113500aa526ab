"""Load: 50 apps x 20 repositories under random pushes for a while, then every file of every app checked.

Slow (about five minutes with the defaults): run with `make test-slow`, or size it with DOCORA_LOAD_APPS,
DOCORA_LOAD_REPOSITORIES, DOCORA_LOAD_SECONDS, DOCORA_LOAD_PUSHES_PER_SECOND and DOCORA_LOAD_WORKERS. The figures
are printed; `bench/load.py` runs the same scenario on its own and writes them to bench/results/load.json (a test
run leaves the committed figures alone).
"""

from __future__ import annotations

import os

import pytest

from docora_local.harness.consumers import Clock
from docora_local.harness.load import LoadConfig, run_load, summary
from docora_local.harness.scan_stack import scan_stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def test_every_app_holds_every_repository_at_its_last_commit_after_a_load_of_pushes(
    tmp_path, database_url, redis_url, monkeypatch, capsys
):
    config = LoadConfig.from_env(os.environ)
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch) as stack:
        clock = Clock(redis_url)
        try:
            report = run_load(stack, clock, config, scratch=tmp_path)
        finally:
            clock.close()
    with capsys.disabled():
        print("\n" + summary(report))

    assert report["mismatches"] == []
    assert report["problems"] == []
    assert report["verified"]["watches"] == config.apps * config.repositories
    assert report["steady"]["unmatched"] == 0
