"""The store's side of head checks (claims, batch records, how far behind), one spec for the fake and Postgres."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.domain.apps import NewApp
from chalicelib.domain.circuit_breaker import CLOSED, Circuit
from chalicelib.domain.head_checks import CheckRecord
from chalicelib.domain.repositories import NewWatch
from tests.fakes import InMemoryStore
from tests.integration.test_store_contract import NOW, new_app, new_repository

LEASE = timedelta(minutes=2)


@pytest.fixture(params=["in_memory", "postgres"])
def store(request):
    if request.param == "in_memory":
        return InMemoryStore()
    return request.getfixturevalue("postgres_store")


def watched(store, *names: str, token: str | None = None) -> list[str]:
    with store.transaction() as tx:
        app = tx.apps.add(new_app())
        ids = []
        for name in names:
            repository = tx.repositories.add(new_repository(f"https://github.com/acme/{name}"))
            tx.watches.add(NewWatch(app.id, repository.id, token))
            ids.append(repository.id)
    return ids


def record(repository_id: str, *, next_at=NOW + timedelta(minutes=5), circuit=CLOSED, error=None) -> CheckRecord:
    return CheckRecord(repository_id, next_at, circuit, error, scan_owed=False, circuit_opened=False)


def test_due_repositories_are_claimed_oldest_first_and_a_claim_keeps_others_off_until_it_lapses(store):
    first, second, third = watched(store, "a", "b", "c")
    with store.transaction() as tx:
        tx.repositories.record_checks([record(third, next_at=NOW - timedelta(minutes=1))], checked_at=NOW)

    with store.transaction() as tx:
        taken = tx.repositories.claim_due_checks(now=NOW, until=NOW + LEASE, limit=2)
    with store.transaction() as tx:
        rest = tx.repositories.claim_due_checks(now=NOW, until=NOW + LEASE, limit=10)
    with store.transaction() as tx:
        while_held = tx.repositories.claim_due_checks(now=NOW + timedelta(minutes=1), until=NOW + LEASE, limit=10)
        lapsed = tx.repositories.claim_due_checks(now=NOW + LEASE, until=NOW + 2 * LEASE, limit=10)

    assert {target.repository_id for target in taken} == {first, second}  # never checked: first
    assert [target.repository_id for target in rest] == [third]
    assert while_held == []
    assert {target.repository_id for target in lapsed} == {first, second, third}


def test_a_recorded_check_ends_its_claim_and_schedules_the_next(store):
    (repository_id,) = watched(store, "a")
    with store.transaction() as tx:
        tx.repositories.claim_due_checks(now=NOW, until=NOW + LEASE, limit=10)
        tx.repositories.record_checks([record(repository_id)], checked_at=NOW)

    with store.transaction() as tx:
        before_due = tx.repositories.claim_due_checks(now=NOW + timedelta(minutes=4), until=NOW + LEASE, limit=10)
        when_due = tx.repositories.claim_due_checks(now=NOW + timedelta(minutes=5), until=NOW + LEASE, limit=10)
        repository = tx.repositories.get(repository_id)

    assert before_due == []
    assert [target.repository_id for target in when_due] == [repository_id]
    assert (repository.last_checked_at, repository.next_check_at) == (NOW, NOW + timedelta(minutes=5))


def test_a_failed_check_records_its_circuit_and_error_and_a_good_one_clears_them(store):
    (repository_id,) = watched(store, "a")
    opened = Circuit(5, NOW + timedelta(minutes=30))
    with store.transaction() as tx:
        tx.repositories.record_checks(
            [record(repository_id, circuit=opened, error="repository not found")], checked_at=NOW
        )
        failed = tx.repositories.get(repository_id)
        moved = record(repository_id, circuit=opened)  # a moved head keeps the circuit until its scan succeeds
        tx.repositories.record_checks([moved], checked_at=NOW)
        kept = tx.repositories.get(repository_id)
        tx.repositories.record_checks([record(repository_id)], checked_at=NOW)
        cleared = tx.repositories.get(repository_id)

    assert (failed.consecutive_failures, failed.circuit_open_until, failed.last_error) == (
        5,
        opened.open_until,
        "repository not found",
    )
    assert kept.last_error == "repository not found"
    assert (cleared.consecutive_failures, cleared.circuit_open_until, cleared.last_error) == (0, None, None)


def test_an_open_circuit_is_not_claimed_until_its_cooldown_is_over(store):
    (repository_id,) = watched(store, "a")
    with store.transaction() as tx:
        tx.repositories.record_failure(repository_id, circuit=Circuit(5, NOW + timedelta(minutes=30)), error="down")

    with store.transaction() as tx:
        during = tx.repositories.claim_due_checks(now=NOW, until=NOW + LEASE, limit=10)
        after = tx.repositories.claim_due_checks(now=NOW + timedelta(minutes=30), until=NOW + LEASE, limit=10)

    assert during == []
    assert [target.circuit.consecutive_failures for target in after] == [5]


def test_a_claim_carries_the_newest_watchs_token_and_the_last_push(store):
    (repository_id,) = watched(store, "a", token="aa:bb:cc")
    with store.transaction() as tx:
        tx.repositories.record_push(repository_id, at=NOW)
        (target,) = tx.repositories.claim_due_checks(now=NOW, until=NOW + LEASE, limit=10)

    assert (target.token_encrypted, target.last_push_at, target.last_head) == ("aa:bb:cc", NOW, None)


def test_the_oldest_due_check_says_how_far_behind_the_checks_are(store):
    first, second = watched(store, "a", "b")
    with store.transaction() as tx:
        tx.repositories.record_checks(
            [record(first, next_at=NOW - timedelta(minutes=3)), record(second, next_at=NOW + timedelta(minutes=3))],
            checked_at=NOW,
        )

    with store.transaction() as tx:
        oldest = tx.repositories.oldest_due_check(now=NOW)
        tx.repositories.record_checks([record(first)], checked_at=NOW)
        none_due = tx.repositories.oldest_due_check(now=NOW)

    assert oldest == NOW - timedelta(minutes=3)
    assert none_due is None


def test_an_unwatched_repository_is_never_claimed(store):
    with store.transaction() as tx:
        tx.repositories.add(new_repository("https://github.com/acme/orphan"))
        tx.apps.add(NewApp(**{**vars(new_app()), "token_lookup": b"M" * 32}))
        claimed = tx.repositories.claim_due_checks(now=NOW, until=NOW + LEASE, limit=10)

    assert claimed == []
