"""What the dashboard adds to the ports, on the fakes and on Postgres and Redis: the failed-deliveries filter, the
newest operations, and the operator's sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.adapters.redis_sessions import RedisSessions
from chalicelib.domain import tokens
from chalicelib.domain.operator_sessions import FailedFilter, OperatorSession
from tests.fakes import InMemorySessions
from tests.integration.test_operator_views_contract import NOW, T1, T2, T3, World, catalogue, world  # noqa: F401


def failed(found_in: World, matching: FailedFilter, *, limit: int = 50, offset: int = 0) -> tuple[list[str], int]:
    with found_in.store.transaction() as tx:
        found = tx.admin.failed_page(matching, limit=limit, offset=offset)
    return [item["app_name"] for item in found.items], found.total


@pytest.mark.parametrize(
    ("matching", "names"),
    [
        (FailedFilter(), ["Beta_Mirror", "Alpha Docs", "Gamma 100%"]),  # the newest failure first
        (FailedFilter(app="alpha"), ["Alpha Docs"]),
        (FailedFilter(app="100%"), ["Gamma 100%"]),
        (FailedFilter(repository="acme/a"), ["Beta_Mirror", "Gamma 100%"]),
        (FailedFilter(error="TIMED"), ["Gamma 100%"]),
        (FailedFilter(repository="acme/a", error="refused"), ["Beta_Mirror"]),
        (FailedFilter(app="nobody"), []),
    ],
)
def test_failed_watches_are_filtered_by_app_repository_and_error(catalogue, matching, names):  # noqa: F811
    assert failed(catalogue, matching) == (names, len(names))


def test_the_failed_filter_pages_and_its_keys_are_every_match(catalogue):  # noqa: F811
    ids = catalogue.ids

    second = failed(catalogue, FailedFilter(), limit=1, offset=1)
    with catalogue.store.transaction() as tx:
        keys = tx.admin.failed_matching(FailedFilter(repository="acme/a"))

    assert second == (["Alpha Docs"], 3)
    assert keys == sorted([(ids["beta"], ids["a_b"]), (ids["gamma"], ids["axb"])])


def test_recent_operations_are_the_newest_first(world):  # noqa: F811
    made = []
    for at in (T1, T3, T2):
        operation_id = tokens.new_operation_id()
        with world.store.transaction() as tx:
            tx.operations.create(operation_id, kind="resync", app_id=None, watches=[], now=at)
        made.append(operation_id)

    with world.store.transaction() as tx:
        recent = [operation.id for operation in tx.operations.recent(limit=2)]

    assert recent == [made[1], made[2]]


@pytest.fixture(params=["in_memory", "redis"])
def sessions(request):
    if request.param == "in_memory":
        return InMemorySessions()
    return RedisSessions(request.getfixturevalue("redis_client"))


def new_session() -> OperatorSession:
    return OperatorSession(tokens.new_session_id(), tokens.new_csrf_token(), NOW, NOW + timedelta(hours=8))


def test_a_session_is_found_by_its_id_until_it_is_ended(sessions):
    session, other = new_session(), new_session()
    sessions.put(session, now=NOW)
    sessions.put(other, now=NOW)

    found = sessions.get(session.id)
    sessions.end(session.id)

    assert found == session
    assert sessions.get(session.id) is None and sessions.get(other.id) == other
    assert sessions.get(tokens.new_session_id()) is None


def test_redis_keeps_a_session_only_as_long_as_it_lives_and_not_under_its_id(redis_client):
    session = new_session()

    RedisSessions(redis_client).put(session, now=NOW + timedelta(hours=7))

    (key,) = [key.decode() for key in redis_client.scan_iter("docora:session:*") if session.id not in key.decode()]
    assert 3590 <= redis_client.ttl(key) <= 3600
    redis_client.delete(key)
