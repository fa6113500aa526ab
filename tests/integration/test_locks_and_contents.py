"""Locks and contents: the in-memory fakes and the Redis and S3 adapters held to one behaviour."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from chalicelib import errors
from chalicelib.adapters.redis_locks import RedisLocks
from chalicelib.adapters.s3_contents import S3Contents
from tests.fakes import InMemoryContents, InMemoryLocks

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


@pytest.fixture(params=["in_memory", "s3"])
def contents(request):
    if request.param == "in_memory":
        yield InMemoryContents()
        return
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="docora-contents")
        yield S3Contents(client, "docora-contents", workers=2)


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_contents_are_stored_once_by_sha256_and_read_back(contents):
    blobs = [(digest(b"one"), b"one"), (digest(b"two"), b"two")]

    first = contents.put_many(iter(blobs))
    second = contents.put_many(iter([*blobs, (digest(b"three"), b"three")]))

    assert (first, second) == (2, 1)
    assert contents.open(digest(b"two")).read() == b"two"
    contents.ping()


def test_missing_content_is_not_found(contents):
    with pytest.raises(errors.NotFound):
        contents.open(digest(b"never stored"))


def test_contents_are_read_ahead_in_order_up_to_the_first_missing_one(contents):
    stored = [f"file {index}".encode() for index in range(9)]
    contents.put_many((digest(content), content) for content in stored)
    wanted = [digest(content) for content in stored] + [digest(b"never stored"), digest(stored[0])]

    with contents.read_each(wanted) as read:
        got = [next(read) for _ in stored]
        with pytest.raises(errors.NotFound):
            next(read)

    assert got == stored


def test_many_contents_stream_through_a_bounded_pool():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="docora-contents")
        store = S3Contents(client, "docora-contents", workers=4)
        produced = []

        def blobs():
            for index in range(50):
                content = f"file {index}".encode()
                produced.append(index)
                yield digest(content), content

        assert store.put_many(blobs()) == 50
        assert len(client.list_objects_v2(Bucket="docora-contents")["Contents"]) == 50


@pytest.mark.parametrize(
    ("size", "requests"), [(1024, ["PutObject", "PutObject"]), (300 * 1024, ["HeadObject", "PutObject", "HeadObject"])]
)
def test_content_already_stored_is_not_uploaded_again(size, requests):
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="docora-contents")
        sent = []
        client.meta.events.register("before-call.s3", lambda model, **_: sent.append(model.name))
        store = S3Contents(client, "docora-contents")
        content = b"x" * size

        uploads = [store.put_many(iter([(digest(content), content)])) for _ in range(2)]

        # Small contents go up as a conditional PUT that S3 refuses when the key exists; big ones are asked about.
        assert uploads == [1, 0]
        assert sent == requests


def test_a_missing_bucket_is_unavailable():
    with mock_aws():
        store = S3Contents(boto3.client("s3", region_name="us-east-1"), "no-such-bucket")

        with pytest.raises(errors.Unavailable):
            store.put_many(iter([(digest(b"x"), b"x")]))
        with pytest.raises(errors.Unavailable):
            store.ping()
