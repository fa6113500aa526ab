"""Locks, slots and contents: the in-memory fakes and the Redis and S3 adapters held to one behaviour."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from chalicelib import errors
from chalicelib.adapters.redis_locks import RedisLocks
from chalicelib.adapters.redis_slots import RedisSlots
from chalicelib.adapters.s3_contents import S3Contents
from chalicelib.domain.bundles import BundleSlot, NewContent, StoredContent, StoredObjects
from chalicelib.ports import SlotLease, SlotRequest
from tests.fakes import InMemoryContents, InMemoryLocks, InMemorySlots

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["in_memory", "redis"])
def locks(request):
    if request.param == "in_memory":
        return InMemoryLocks()
    return RedisLocks(request.getfixturevalue("redis_client"))


def test_a_lock_is_held_by_one_at_a_time_and_free_after(locks):
    with locks.hold("scan:r1") as first, locks.hold("scan:r1") as second, locks.hold("scan:r2") as other:
        assert (first, second, other) == (True, False, True)
    with locks.hold("scan:r1") as again:
        assert again is True


def test_locks_held_together_are_each_released_on_their_own_or_at_the_end(locks):
    names = ["deliver:a1:r1", "deliver:a2:r1", "deliver:a3:r1"]
    with locks.hold("deliver:a1:r1"), locks.hold_each(names) as each:
        assert each.held == {"deliver:a2:r1", "deliver:a3:r1"}
        each.release("deliver:a2:r1")
        with locks.hold("deliver:a2:r1") as freed, locks.hold("deliver:a3:r1") as still_held:
            assert (freed, still_held) == (True, False)
        assert each.held == {"deliver:a3:r1"}
    with locks.hold("deliver:a3:r1") as after:
        assert after is True


@pytest.fixture(params=["in_memory", "redis"])
def slots(request):
    if request.param == "in_memory":
        return InMemorySlots()
    return RedisSlots(request.getfixturevalue("redis_client"))


def take(slots, name: str, want: int, limit: int, now: datetime) -> SlotLease:
    (lease,) = slots.take([SlotRequest(name, want, limit)], now=now, seconds=15)
    return lease


def test_slots_are_shared_out_up_to_the_limit_and_given_back(slots):
    first = take(slots, "app:a1", 5, 8, T0)
    second = take(slots, "app:a1", 5, 8, T0)
    none_left = take(slots, "app:a1", 1, 8, T0)
    other_app = take(slots, "app:a2", 8, 8, T0)
    slots.give_back(first)
    again = take(slots, "app:a1", 8, 8, T0)

    assert [lease.granted for lease in (first, second, none_left, other_app, again)] == [5, 3, 0, 8, 5]


def test_requests_taken_together_are_served_in_turn(slots):
    leases = slots.take(
        [SlotRequest("app:a1", 5, 8), SlotRequest("app:a2", 2, 2), SlotRequest("app:a1", 5, 8)], now=T0, seconds=15
    )

    assert [lease.granted for lease in leases] == [5, 2, 3]


def test_a_lease_lapses_unless_renewed_and_a_lapsed_one_stays_lapsed(slots):
    kept = take(slots, "app:a1", 4, 8, T0)
    dropped = take(slots, "app:a1", 4, 8, T0)
    slots.renew([kept], now=T0 + timedelta(seconds=10), seconds=15)

    at_20s = take(slots, "app:a1", 8, 8, T0 + timedelta(seconds=20))
    slots.renew([dropped], now=T0 + timedelta(seconds=21), seconds=15)
    at_26s = take(slots, "app:a1", 8, 8, T0 + timedelta(seconds=26))

    # At 20 s only the renewed lease is out; at 26 s it has lapsed too, and the late renewal did not bring one back.
    assert (at_20s.granted, at_26s.granted) == (4, 4)


def test_word_left_is_read_once_and_only_when_newer(locks):
    locks.ask_again("scan:r1", T0 + timedelta(seconds=5))
    locks.ask_again("scan:r1", T0 + timedelta(seconds=3))

    assert locks.asked_again_since("scan:r1", T0) == T0 + timedelta(seconds=5)
    assert locks.asked_again_since("scan:r1", T0) is None
    locks.ask_again("scan:r1", T0)
    assert locks.asked_again_since("scan:r1", T0) is None


def test_a_redis_lock_outlives_its_ttl_while_held_and_expires_when_its_holder_dies(redis_client):
    # A TTL of 1 s renewed every third of a second, held for 2.5 s: several renewals must have happened.
    locks = RedisLocks(redis_client, ttl_seconds=1.0)

    with locks.hold("scan:slow") as held:
        time.sleep(2.5)
        still_held = redis_client.exists("docora:lock:scan:slow")
    redis_client.set("docora:lock:scan:dead", "someone-else", px=300)
    time.sleep(0.4)

    assert held and still_held
    assert not redis_client.exists("docora:lock:scan:slow")
    assert not redis_client.exists("docora:lock:scan:dead")


def test_a_redis_lock_is_released_only_by_its_owner(redis_client):
    locks = RedisLocks(redis_client, ttl_seconds=0.3)

    with locks.hold("scan:taken") as held:
        redis_client.set("docora:lock:scan:taken", "new-owner")  # ours expired and someone else took it
    owner = redis_client.get("docora:lock:scan:taken")

    assert held and owner == b"new-owner"


BIG = 1024 * 1024 + 1  # over what S3Contents bundles (and the fake's 1 KiB)


@pytest.fixture(params=["in_memory", "s3"])
def contents(request, tmp_path):
    if request.param == "in_memory":
        yield InMemoryContents()
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="docora-contents")
        yield S3Contents(client, "docora-contents", spool_dir=str(tmp_path / "spool"), workers=2)


@pytest.fixture
def s3(tmp_path):
    """A bucket, its client, and the list of S3 operations called so far."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="docora-contents")
        sent: list[str] = []
        client.meta.events.register("before-call.s3", lambda model, **_: sent.append(model.name))
        yield client, S3Contents(client, "docora-contents", spool_dir=str(tmp_path / "spool")), sent


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def new(content: bytes, path: str) -> NewContent:
    return NewContent(digest(content), content, path)


def stored(content: bytes, placed: dict[str, BundleSlot | None]) -> StoredContent:
    return StoredContent(digest(content), len(content), placed[digest(content)])


def test_small_contents_share_a_bundle_in_path_order_and_big_ones_stand_alone(contents):
    big = b"b" * BIG
    placed = contents.put_many(
        iter([new(b"two", "docs/b.md"), new(big, "big.bin"), new(b"", "empty"), new(b"one", "docs/a.md")])
    )

    slots = [placed[digest(content)] for content in (b"", b"one", b"two")]
    assert placed[digest(big)] is None
    assert len({slot.bundle for slot in slots}) == 1
    assert [slot.offset for slot in slots] == [6, 0, 3]  # docs/a.md, docs/b.md, then empty
    for content in (b"one", b"two", b"", big):
        assert contents.open(stored(content, placed)).read() == content
    with contents.read_each(stored(content, placed) for content in (b"one", big, b"two", b"", b"one")) as read:
        assert list(read) == [b"one", big, b"two", b"", b"one"]
    contents.ping()


def test_missing_content_is_not_found(contents):
    placed = contents.put_many(iter([new(b"kept", "a")]))
    elsewhere = BundleSlot(digest(b"no such bundle"), 0)

    with pytest.raises(errors.NotFound):
        contents.open(StoredContent(digest(b"never stored"), 12, None))
    with pytest.raises(errors.NotFound):
        contents.open(StoredContent(digest(b"kept"), 4, elsewhere))
    assert contents.open(stored(b"kept", placed)).read() == b"kept"


def test_contents_are_read_ahead_in_order_up_to_the_first_missing_one(contents):
    files = [f"file {index}".encode() for index in range(9)]
    placed = contents.put_many(new(content, f"f{index}") for index, content in enumerate(files))
    wanted = [stored(content, placed) for content in files]
    wanted += [StoredContent(digest(b"never stored"), 12, None), stored(files[0], placed)]

    with contents.read_each(wanted) as read:
        got = [next(read) for _ in files]
        with pytest.raises(errors.NotFound):
            next(read)

    assert got == files


def test_deleted_objects_are_gone(contents):
    big = b"b" * BIG
    placed = contents.put_many(iter([new(b"small", "a"), new(big, "b")]))

    contents.delete_many(StoredObjects([digest(big)], [placed[digest(b"small")].bundle]))

    for content in (b"small", big):
        with pytest.raises(errors.NotFound):
            contents.open(stored(content, placed))


def test_neighbours_in_a_bundle_are_read_with_one_ranged_get(s3):
    client, store, sent = s3
    files = [f"page {index}\n".encode() * (index + 1) for index in range(200)]
    placed = store.put_many(new(content, f"docs/{index:03d}.md") for index, content in enumerate(files))
    del sent[:]

    # An app that lacks every other file still gets them from one read: the gaps are cheaper than round trips.
    with store.read_each(stored(content, placed) for content in files[::2]) as read:
        got = list(read)

    assert got == files[::2]
    assert sent == ["GetObject"]
    assert [key["Key"].split("/")[0] for key in client.list_objects_v2(Bucket="docora-contents")["Contents"]] == [
        "bundles"
    ]


def test_a_content_that_does_not_match_its_sha256_is_not_sent(s3):
    _, store, _ = s3
    placed = store.put_many(iter([new(b"first", "a"), new(b"second", "b")]))
    shifted = BundleSlot(placed[digest(b"second")].bundle, 1)  # a wrong offset: the wrong bytes

    with store.read_each([stored(b"first", placed), StoredContent(digest(b"second"), 6, shifted)]) as read:
        assert next(read) == b"first"
        with pytest.raises(errors.NotFound):
            next(read)


def test_many_contents_go_up_in_few_requests(s3):
    client, store, sent = s3
    big = [bytes([index]) * BIG for index in range(3)]
    small = [f"file {index}".encode() for index in range(500)]

    store.put_many(new(content, f"f{index}") for index, content in enumerate([*small, *big]))

    assert sorted(sent) == ["HeadObject"] * 3 + ["PutObject"] * 4  # the big ones asked about first, one bundle
    assert client.list_objects_v2(Bucket="docora-contents")["KeyCount"] == 4


@pytest.mark.parametrize(("size", "requests"), [(1024, ["PutObject"]), (BIG, ["HeadObject", "PutObject"])])
def test_content_already_stored_is_not_uploaded_again(s3, size, requests):
    client, store, sent = s3
    content = b"x" * size

    first = store.put_many(iter([new(content, "a")]))
    del sent[:]
    again = store.put_many(iter([new(content, "a")]))

    # A bundle (or a small content) goes up as a conditional PUT that S3 refuses when the key exists; a big
    # content is asked about first.
    assert again == first
    assert sent == requests[:1]
    assert client.list_objects_v2(Bucket="docora-contents")["KeyCount"] == 1


def test_a_missing_bucket_is_unavailable():
    with mock_aws():
        store = S3Contents(boto3.client("s3", region_name="us-east-1"), "no-such-bucket")

        with pytest.raises(errors.Unavailable):
            store.put_many(iter([new(b"x", "x")]))
        with pytest.raises(errors.Unavailable):
            store.ping()
