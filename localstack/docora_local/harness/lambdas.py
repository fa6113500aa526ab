"""The deployed functions as Lambda runs them, each consumer in processes of its own, for the load scenario.

A process is one warm Lambda container: it imports app.py once, then polls its queue (long polling, as the event
source mapping does), hands what it receives to the function as an SQS event with a Lambda context, and deletes
the messages the function did not report as failed; those come back after the queue's visibility timeout. The
sweep runs once a minute in a process of its own, as EventBridge would start it. Every process reads the same
environment variables the deployed functions get, so they build their adapters exactly as in Lambda.

With `profile_dir`, each consumer process writes a cProfile of its work there when it stops.
"""

from __future__ import annotations

import contextlib
import cProfile
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# What the delivery and scan functions are given in .chalice/config.json (prod stage).
_RUNTIME_MS = {"deliver_changes": 300_000, "scan_repositories": 300_000, "sweep": 60_000}
_SWEEP_EVERY_SECONDS = 60


@dataclass(frozen=True)
class Consumer:
    handler: str  # the function's name in app.app.handler_map
    queue: str
    batch_size: int
    processes: int  # its concurrency: Lambda's maximum_concurrency on the event source mapping


@contextlib.contextmanager
def running(
    spawn: Any,
    environment: dict[str, str],
    consumers: list[Consumer],
    *,
    scratch: Path,
    profile_dir: Path | None = None,
) -> Iterator[None]:
    """The consumers and the minute's sweep, in processes started with `environment`, until the block ends; each
    process has a folder of its own under `scratch` for EPHEMERAL_DIR, as each container has its own /tmp."""
    stop = spawn.Event()
    work = [
        (f"{consumer.handler}-{n}", _consume, (consumer, _profile(profile_dir, consumer, n)))
        for consumer in consumers
        for n in range(consumer.processes)
    ]
    work.append(("sweep", _sweep_every_minute, ()))
    ready = [spawn.Event() for _ in work]  # each set once its process is warm
    processes = [
        spawn.Process(
            target=target, args=(environment | {"EPHEMERAL_DIR": str(scratch / name)}, stop, warm, *args), name=name
        )
        for (name, target, args), warm in zip(work, ready, strict=True)
    ]
    for process in processes:
        process.start()
    try:
        for process, warm in zip(processes, ready, strict=True):
            while not warm.wait(0.5):
                if not process.is_alive():
                    raise RuntimeError(f"the {process.name} process ended before it was ready (its error is above)")
        yield
    finally:
        stop.set()
        for process in processes:
            process.join(60)
            if process.is_alive():
                process.terminate()


def _profile(profile_dir: Path | None, consumer: Consumer, index: int) -> str | None:
    return str(profile_dir / f"{consumer.handler}-{index}.prof") if profile_dir else None


def _consume(environment: dict[str, str], stop: Any, ready: Any, consumer: Consumer, profile: str | None) -> None:
    app, sqs = _warm(environment)
    from chalice.local import LambdaContext

    url = sqs.get_queue_url(QueueName=consumer.queue)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    handler = app.handler_map[consumer.handler]
    profiler = cProfile.Profile() if profile else None
    ready.set()
    while not stop.is_set():
        found = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=consumer.batch_size, WaitTimeSeconds=1, AttributeNames=["All"]
        ).get("Messages", [])
        if not found:
            continue
        event = {"Records": [_record(message, arn) for message in found]}
        context = LambdaContext(consumer.handler, memory_size=1024, max_runtime_ms=_RUNTIME_MS[consumer.handler])
        if profiler:
            profiler.enable()
        try:
            reply = handler(event, context) or {}
        finally:
            if profiler:
                profiler.disable()
        failed = {failure["itemIdentifier"] for failure in reply.get("batchItemFailures", [])}
        done = [
            {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]}
            for n, message in enumerate(found)
            if message["MessageId"] not in failed
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=done)
    if profiler and profile:
        profiler.dump_stats(profile)
    os._exit(0)  # as a container is frozen: no interpreter shutdown, whose finalizers only make noise here


def _sweep_every_minute(environment: dict[str, str], stop: Any, ready: Any) -> None:
    app, _ = _warm(environment)
    from chalice.local import LambdaContext

    ready.set()
    while not stop.wait(_SWEEP_EVERY_SECONDS):
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "000000000000",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": environment["AWS_DEFAULT_REGION"],
            "resources": [],
            "detail": {},
        }
        app.handler_map["sweep"](event, LambdaContext("sweep", memory_size=256, max_runtime_ms=_RUNTIME_MS["sweep"]))
    os._exit(0)


def _warm(environment: dict[str, str]) -> tuple[Any, Any]:
    """A container's start: the environment, app.py imported, and its output out of the way (EMF lines, logs)."""
    os.environ.update(environment)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    import boto3

    import app

    return app.app, boto3.client("sqs")


def _record(message: dict[str, Any], arn: str) -> dict[str, Any]:
    """One SQS message as Lambda's event source mapping hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": arn.split(":")[3],
    }
