"""Head checks against servers: many at once over pooled connections, and a quiet repository costing one request
and one row's update, with no query of its snapshot or ledger."""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest

from chalicelib import errors
from chalicelib.adapters.git_http import ConcurrentHeads
from chalicelib.domain.head_checks import HeadProbe
from docora_local.harness.scan_stack import T0, scan_stack
from docora_local.standins.ls_refs import ls_refs_server

TOKEN = "ghp_" + "t" * 36


@pytest.fixture(scope="module")
def server():
    with ls_refs_server(latency=0.05) as standin:
        yield standin


def probe(server, name: str, token: str | None = None) -> HeadProbe:
    return HeadProbe(name, f"{server.url}/{name}.git", "main", token)


def test_many_heads_come_back_at_once_each_for_one_request(server):
    names = [f"acme/many{n}" for n in range(200)]
    server.set_heads({name: f"{n:040x}" for n, name in enumerate(names)})
    server.take_stats()
    checker = ConcurrentHeads(concurrency=32, timeout=5)

    started = time.monotonic()
    answers = {answer.key: answer.head for answer in checker.heads(probe(server, name) for name in names)}
    elapsed = time.monotonic() - started

    assert answers == {name: f"{n:040x}" for n, name in enumerate(names)}
    assert server.take_stats() == dict.fromkeys(names, 1)
    assert elapsed < 200 * 0.05 / 4  # far less than one at a time (10 s); 32 at a time would take about 0.3 s
    checker.close()


def test_a_hanging_repository_holds_up_no_other(server):
    names = [f"acme/quick{n}" for n in range(20)]
    server.set_heads({name: "a" * 40 for name in [*names, "acme/stuck"]})
    server.set_faults({"acme/stuck": "hang"})
    checker = ConcurrentHeads(concurrency=8, timeout=1.5)

    started, seen = time.monotonic(), []
    for answer in checker.heads(probe(server, name) for name in ["acme/stuck", *names]):
        seen.append((answer.key, answer.error, time.monotonic() - started))

    assert seen[-1][:2] == ("acme/stuck", "git server did not answer")
    assert all(elapsed < 1.0 for key, _, elapsed in seen if key != "acme/stuck")
    server.set_faults({"acme/stuck": None})
    checker.close()


def test_each_repository_is_read_with_its_own_credentials(server):
    server.set_heads({"acme/private": "b" * 40, "acme/gone": "c" * 40})
    server.require_tokens({"acme/private": TOKEN})
    server.set_faults({"acme/gone": 404})
    checker = ConcurrentHeads(concurrency=4, timeout=5)

    answers = {
        (answer.key, answer.head, answer.error)
        for answer in checker.heads(
            [
                HeadProbe("with", f"{server.url}/acme/private.git", "main", TOKEN),
                HeadProbe("wrong", f"{server.url}/acme/private.git", "main", "ghp_" + "w" * 36),
                HeadProbe("none", f"{server.url}/acme/private.git", "main", None),
                HeadProbe("gone", f"{server.url}/acme/gone.git", "main", None),
            ]
        )
    }

    assert answers == {
        ("with", "b" * 40, None),
        ("wrong", None, "GitHub rejected the token"),
        ("none", None, "repository not found"),
        ("gone", None, "repository not found"),
    }
    checker.close()


def test_a_missing_branch_is_an_answer_not_an_error(server):
    server.set_heads({"acme/other-branch": "d" * 40})
    checker = ConcurrentHeads(concurrency=2, timeout=5)

    (answer,) = checker.heads([HeadProbe("x", f"{server.url}/acme/other-branch.git", "trunk", None)])

    assert (answer.head, answer.error) == (None, None)
    checker.close()


def test_an_unchanged_repository_costs_one_request_and_no_query_of_its_snapshot_or_ledger(
    tmp_path, database_url, redis_url, monkeypatch
):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch) as stack:
        repo = stack.make_repo()
        repo.commit({"a.md": b"a\n", "b.md": b"b\n"})
        repository_id = stack.add_repository(apps=3)
        stack.scan(repository_id, at=T0)
        for app_id, _ in stack.deliveries_requested():
            stack.deliver(app_id, repository_id)
        stack.sweep(at=T0)  # the first check, right after the scan
        stack.git_server.clear_log()
        before = _table_reads(database_url, stack)

        report = stack.sweep(at=T0 + timedelta(minutes=5))

        after = _table_reads(database_url, stack)

        assert (report.checks.checked, report.checks.unchanged) == (1, 1)
        assert len(stack.git_server.requests) == 1
        for table in ("snapshot_files", "snapshots", "delivered_files"):
            assert after[table] == before[table], table
        assert after["repositories"][2] - before["repositories"][2] == 2  # its claim, then its check: nothing else
        assert stack.scans_requested() == [] and stack.deliveries_requested() == []


def _table_reads(database_url: str, stack) -> dict[str, tuple[int, int, int]]:
    """Scans and rows updated per table, as Postgres counts them once the store's session has reported its own.

    A session reports its counts at most once a second while it lives, and all of them when it ends: so the store's
    connection is closed (the next unit of work opens another), and the counts read until they stop moving.
    """
    stack.deps.store.close()
    previous: dict[str, tuple[int, int, int]] = {}
    for _ in range(30):
        with psycopg.connect(database_url) as connection:
            rows = connection.execute(
                "SELECT relname, coalesce(seq_scan, 0), coalesce(idx_scan, 0), n_tup_upd FROM pg_stat_user_tables"
            ).fetchall()
        counts = {name: (seq, idx, updated) for name, seq, idx, updated in rows}
        if counts == previous:
            return counts
        previous = counts
        time.sleep(0.2)
    raise AssertionError("Postgres's table statistics did not settle")


def test_a_refused_probe_is_never_retried_by_the_adapter(server):
    server.set_heads({"acme/flaky": "e" * 40})
    server.set_faults({"acme/flaky": 500})
    server.take_stats()
    checker = ConcurrentHeads(concurrency=2, timeout=5)

    (answer,) = checker.heads([probe(server, "acme/flaky")])

    assert answer.error == "git server did not answer"
    assert errors.Unavailable("git server did not answer").args[0] == answer.error
    server.set_faults({"acme/flaky": None})
    checker.close()


def test_the_stand_in_serves_its_own_commits_to_a_real_scan_fetch(server, tmp_path):
    from chalicelib.adapters.git_dulwich import DulwichGit

    (head,) = server.commit({"acme/fetched": "version 1\n"}).values()
    git = DulwichGit(str(tmp_path / "cache"), timeout=5)

    tree = git.fetch_tree(f"{server.url}/acme/fetched.git", "main", None)
    blobs = dict(git.read_blobs(f"{server.url}/acme/fetched.git", None, [entry.blob_id for entry in tree.entries]))

    assert tree.commit == head and [entry.path for entry in tree.entries] == [b"README.md"]
    assert list(blobs.values()) == [b"version 1\n"]
    git.close()


@pytest.fixture(params=["static", "concurrent"])
def checker_and_heads(request, server):
    """A head checker and a way to give it heads (and failures), the fake's and the real one's."""
    if request.param == "static":
        from tests.fakes import StaticHeads

        fake = StaticHeads()

        def give(heads: dict[str, str], failures: dict[str, str]) -> None:
            fake.table.update({f"{server.url}/{name}.git": {"main": head} for name, head in heads.items()})
            fake.failures.update({f"{server.url}/{name}.git": message for name, message in failures.items()})

        yield fake, give
        return
    real = ConcurrentHeads(concurrency=4, timeout=5)

    def give(heads: dict[str, str], failures: dict[str, str]) -> None:
        server.set_heads(heads)
        server.set_faults({name: 404 for name in failures})

    yield real, give
    real.close()


def test_the_fake_and_the_real_checker_answer_alike(checker_and_heads, server):
    checker, give = checker_and_heads
    give({"contract/found": "f" * 40}, {"contract/missing": "repository not found"})

    answers = {
        (answer.key, answer.head, answer.error)
        for answer in checker.heads(
            [
                HeadProbe("found", f"{server.url}/contract/found.git", "main", None),
                HeadProbe("branch", f"{server.url}/contract/found.git", "trunk", None),
                HeadProbe("missing", f"{server.url}/contract/missing.git", "main", None),
            ]
        )
    }

    assert answers == {("found", "f" * 40, None), ("branch", None, None), ("missing", None, "repository not found")}
