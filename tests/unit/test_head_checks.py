"""Head checks on the fakes: only moved heads get a scan, failures count toward the circuit, nothing is lost."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import tokens
from chalicelib.domain.apps import NewApp
from chalicelib.domain.head_checks import CheckPolicy
from chalicelib.domain.repositories import NewRepository, NewWatch
from chalicelib.services import head_checks
from chalicelib.services.head_checks import HeadCheckConfig
from tests.unit.conftest import fake_deps

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
GIT = "https://git.example"
POLICY = CheckPolicy(
    poll_interval=timedelta(minutes=5),
    push_fallback_interval=timedelta(hours=1),
    jitter=0.1,
    circuit_breaker_threshold=2,
    circuit_breaker_cooldown=timedelta(minutes=30),
)
CONFIG = HeadCheckConfig(git_base_url=GIT, policy=POLICY, batch_size=3, record_every=2)


@pytest.fixture
def deps():
    return fake_deps()


def add(deps, name: str, *, head: str | None = "c1", private: bool = False, token: str | None = None) -> str:
    with deps.store.transaction() as tx:
        app = tx.apps.add(_app())
        repository = tx.repositories.add(
            NewRepository(tokens.new_repository_id(), f"https://github.com/acme/{name}", "acme", name, "main", private)
        )
        tx.watches.add(NewWatch(app.id, repository.id, deps.cipher.encrypt(token) if token else None))
        if head is not None:
            tx.repositories.record_success(repository.id, head=head)
    deps.heads.table[url(name)] = {"main": head or "c1"}
    return repository.id


def url(name: str) -> str:
    return f"{GIT}/acme/{name}.git"


def check(deps, *, at: datetime = NOW, random: float = 0.0, time_left_ms: int = 60_000):
    return head_checks.check_due_heads(
        clock=lambda: at, time_left_ms=lambda: time_left_ms, random=lambda: random, config=CONFIG, deps=deps
    )


def repository(deps, repository_id: str):
    with deps.store.transaction() as tx:
        return tx.repositories.get(repository_id)


def test_an_unchanged_head_writes_the_check_and_the_next_one_and_asks_for_nothing(deps):
    repository_id = add(deps, "quiet")

    report = check(deps)

    checked = repository(deps, repository_id)
    assert (report.checked, report.unchanged) == (1, 1)
    assert (checked.last_checked_at, checked.next_check_at) == (NOW, NOW + timedelta(minutes=5))
    assert deps.scan_queue.requested == [] and deps.delivery_queue.requested == []
    assert checked.last_scanned_at is None  # a check is no scan: a scan requested now still runs


def test_only_a_moved_head_and_a_repository_never_snapshotted_are_sent_to_the_scan_queue(deps):
    quiet, moved, new = add(deps, "quiet"), add(deps, "moved"), add(deps, "new", head=None)
    deps.heads.table[url("moved")] = {"main": "c2"}

    report = check(deps)

    assert sorted(deps.scan_queue.requested) == sorted([moved, new])
    assert deps.scan_queue.requested_at == [NOW, NOW]
    assert (report.checked, report.moved, report.unchanged) == (3, 2, 1)
    assert quiet not in deps.scan_queue.requested


def test_each_due_repository_is_checked_once_however_many_batches_it_takes(deps):
    ids = [add(deps, f"r{n}") for n in range(7)]

    report = check(deps)
    again = check(deps, at=NOW + timedelta(seconds=30))

    assert report.checked == 7 and again.checked == 0
    assert sorted(probe.key for probe in deps.heads.probes) == sorted(ids)


def test_a_failing_repository_is_recorded_with_the_others_and_counts_toward_its_circuit(deps):
    good, broken = add(deps, "good"), add(deps, "broken")
    deps.heads.failures[url("broken")] = "git server did not answer"

    first = check(deps)
    good_after_first = repository(deps, good)
    second = check(deps, at=NOW + timedelta(minutes=5))

    assert (first.failed, good_after_first.last_checked_at) == (1, NOW)
    opened = repository(deps, broken)
    assert (opened.consecutive_failures, opened.last_error) == (2, "git server did not answer")
    assert opened.circuit_open_until == NOW + timedelta(minutes=35)  # the second failure reached the threshold
    assert second.failed == 1
    assert [(request[1], request[2]) for request in deps.delivery_queue.requested] == [(broken, 0)]  # sync_failed


def test_an_open_circuit_is_left_alone_until_its_cooldown_is_over_and_a_good_check_closes_it(deps):
    broken = add(deps, "broken")
    deps.heads.failures[url("broken")] = "git server did not answer"
    check(deps)
    check(deps, at=NOW + timedelta(minutes=5))
    del deps.heads.failures[url("broken")]

    during = check(deps, at=NOW + timedelta(minutes=20))
    after = check(deps, at=NOW + timedelta(minutes=36))

    closed = repository(deps, broken)
    assert (during.checked, after.checked) == (0, 1)
    assert (closed.consecutive_failures, closed.circuit_open_until, closed.last_error) == (0, None, None)


def test_a_public_repository_is_checked_without_any_token_and_a_private_one_with_its_watchs(deps):
    add(deps, "public", token="ghp_" + "p" * 36)
    add(deps, "private", private=True, token="ghp_" + "s" * 36)

    check(deps)

    tokens_by_url = {probe.url: probe.token for probe in deps.heads.probes}
    assert tokens_by_url == {url("public"): None, url("private"): "ghp_" + "s" * 36}


def test_a_repository_with_recent_pushes_is_polled_only_as_a_fallback(deps):
    pushed, polled = add(deps, "pushed"), add(deps, "polled")
    with deps.store.transaction() as tx:
        tx.repositories.record_push(pushed, at=NOW - timedelta(hours=2))

    check(deps, random=0.5)

    assert repository(deps, pushed).next_check_at == NOW + timedelta(hours=1) * 0.95
    assert repository(deps, polled).next_check_at == NOW + timedelta(minutes=5) * 0.95


def test_pushes_older_than_a_day_no_longer_stretch_the_interval(deps):
    repository_id = add(deps, "stale")
    with deps.store.transaction() as tx:
        tx.repositories.record_push(repository_id, at=NOW - timedelta(hours=25))

    check(deps)

    assert repository(deps, repository_id).next_check_at == NOW + timedelta(minutes=5)


def test_a_check_killed_midway_loses_nothing_and_repeats_only_what_it_had_not_recorded(deps):
    ids = [add(deps, f"r{n}") for n in range(3)]
    working = deps.heads

    class DiesAfterTwo:
        def heads(self, probes):
            answers = working.heads(probes)
            yield next(answers)
            yield next(answers)
            raise RuntimeError("the function was killed")

    with pytest.raises(RuntimeError):
        check(dataclasses.replace(deps, heads=DiesAfterTwo()))
    probes_before = len(working.probes)
    while_claimed = check(deps, at=NOW + timedelta(minutes=1))
    after_the_lease = check(deps, at=NOW + timedelta(minutes=3))

    assert while_claimed.checked == 0
    assert after_the_lease.checked == 1  # the third, claimed by the killed check and never recorded
    assert len(working.probes) - probes_before == 1
    assert all(repository(deps, rid).last_checked_at is not None for rid in ids)


def test_the_report_says_how_far_behind_the_oldest_due_check_is(deps):
    add(deps, "a")
    check(deps)
    late = NOW + timedelta(minutes=12)

    behind = check(deps, at=late, time_left_ms=0)  # no time to check anything
    caught_up = check(deps, at=late)

    assert (behind.checked, behind.oldest_overdue) == (0, timedelta(minutes=7))  # due at +5 min
    assert caught_up.oldest_overdue == timedelta(0)


def _app() -> NewApp:
    return NewApp(
        id=tokens.new_app_id(),
        app_name="app",
        email="ops@example.com",
        website=None,
        description=None,
        base_url="https://receiver.example.com",
        token_lookup=tokens.new_bearer_token().encode()[:32],
        token_hash="$2b$04$unused",
        client_auth_key_encrypted="aa:bb:cc",
    )
