"""The rate limiter and the scan queue: fakes and real adapters held to one behaviour."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from chalicelib import errors
from chalicelib.adapters import redis_client
from chalicelib.adapters.redis_rate_limits import RedisRateLimiter
from chalicelib.adapters.sqs_queues import SqsScanQueue
from chalicelib.messages import ScanRequested
from tests.fakes import CountingRateLimiter, RecordingScanQueue

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["counting", "redis"])
def limiter(request):
    if request.param == "counting":
        return CountingRateLimiter()
    return request.getfixturevalue("redis_rate_limiter")


def test_a_bucket_allows_its_budget_then_says_how_long_to_wait(limiter):
    results = [limiter.acquire("ip:1.2.3.4", per_minute=3) for _ in range(4)]

    assert results[:3] == [None, None, None]
    assert results[3] >= 1


def test_buckets_are_per_key(limiter):
    limiter.acquire("app:a", per_minute=1)

    assert limiter.acquire("app:b", per_minute=1) is None


def test_a_block_takes_what_the_bucket_holds_and_no_more(limiter):
    first = limiter.acquire_many("app:block", per_minute=5, up_to=3)
    second = limiter.acquire_many("app:block", per_minute=5, up_to=3)
    third = limiter.acquire_many("app:block", per_minute=5, up_to=3)

    assert (first, second) == ((3, None), (2, None))
    assert third[0] == 0 and third[1] >= 1
    assert limiter.acquire("app:block", per_minute=5) is not None


def test_a_redis_bucket_refills_at_its_rate(redis_rate_limiter):
    # 120 a minute is one token every 0.5 s.
    for _ in range(120):
        redis_rate_limiter.acquire("ip:refill", per_minute=120)
    refused = redis_rate_limiter.acquire("ip:refill", per_minute=120)
    time.sleep(0.6)

    assert refused == 1
    assert redis_rate_limiter.acquire("ip:refill", per_minute=120) is None


def test_redis_buckets_expire(redis_rate_limiter, redis_client):
    redis_rate_limiter.acquire("ip:ttl", per_minute=60)

    assert 0 < redis_client.pttl("docora:rate:ip:ttl") <= 61_000


def test_a_dead_redis_is_unavailable():
    dead = RedisRateLimiter(redis_client.connect("redis://127.0.0.1:1/0"))

    with pytest.raises(errors.Unavailable):
        dead.acquire("ip:x", per_minute=1)
    with pytest.raises(errors.Unavailable):
        dead.ping()


@pytest.fixture
def sqs():
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        client.create_queue(QueueName="docora-scan")
        yield client


@pytest.fixture(params=["recording", "sqs"])
def scan_queue(request):
    if request.param == "recording":
        queue = RecordingScanQueue()
        return queue, lambda: list(queue.requested)
    client = request.getfixturevalue("sqs")
    url = client.get_queue_url(QueueName="docora-scan")["QueueUrl"]

    def received() -> list[str]:
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [ScanRequested.from_json(message["Body"]).repository_id for message in messages]

    return SqsScanQueue(client, "docora-scan"), received


def test_a_scan_request_reaches_the_queue(scan_queue):
    queue, received = scan_queue

    queue.request_scan("repo_0123456789abcdef01234567", NOW)
    queue.ping()

    assert received() == ["repo_0123456789abcdef01234567"]


def test_a_refreshing_scan_request_says_so_in_its_message(sqs):
    SqsScanQueue(sqs, "docora-scan").request_scan("repo_0123456789abcdef01234567", NOW, refresh=True)

    url = sqs.get_queue_url(QueueName="docora-scan")["QueueUrl"]
    (message,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert ScanRequested.from_json(message["Body"]) == ScanRequested("repo_0123456789abcdef01234567", NOW, True)


def test_a_missing_queue_is_unavailable(sqs):
    queue = SqsScanQueue(sqs, "no-such-queue")

    with pytest.raises(errors.Unavailable, match="no-such-queue"):
        queue.request_scan("repo_0123456789abcdef01234567", NOW)
    with pytest.raises(errors.Unavailable):
        queue.ping()


def test_scan_messages_carry_type_and_version():
    message = ScanRequested("repo_x", NOW)
    body = json.loads(message.to_json())

    assert body == {"type": "scan_requested", "version": 1, "repository_id": "repo_x", "requested_at": NOW.isoformat()}
    assert ScanRequested.from_json(message.to_json()) == message


@pytest.mark.parametrize(
    "body",
    ["not json", "[]", '{"type":"other","version":1}', '{"type":"scan_requested","version":2,"repository_id":"r"}',
     '{"type":"scan_requested","version":1}', '{"type":"scan_requested","version":1,"repository_id":"r"}',
     '{"type":"scan_requested","version":1,"repository_id":"r","requested_at":"2026-01-01T00:00:00"}'],
)  # fmt: skip
def test_malformed_scan_messages_are_invalid_input(body):
    with pytest.raises(errors.InvalidInput):
        ScanRequested.from_json(body)
