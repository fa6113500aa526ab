"""The whole pipeline deployed on LocalStack: API Gateway, the SQS consumers, S3, the real handlers, real receivers.

Each test onboards its own app with a receiver on loopback and registers its own repository, served by the
git smart-HTTP server (REST calls go to the GitHub stand-in). Nothing is called in-process: requests go
through API Gateway, work through SQS, contents through S3, and webhooks over HTTP to the receiver.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from chalicelib.messages import ScanRequested
from docora_local.harness.receivers import PythonReceiver, Reply
from docora_local.standins.git_server import GitServer, TestRepo
from tests.e2e.deployed import Docora, Onboarded, wait_for
from tests.e2e.received import Event, events, sha256

pytestmark = pytest.mark.timeout(300)  # the first test also waits for LocalStack and the deployment

SYNC_SECONDS = 60
FILES = {
    "README.md": b"# Widgets\n",
    "src/app.py": b"print('hello')\n",
    "assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
}
BIG_BINARY = b"\x00" + os.urandom(3 * 1024 * 1024 - 1)  # 3 MiB, binary: 8 slices of 512 Ki base64 characters


@pytest.fixture
def receiver() -> Iterator[PythonReceiver]:
    receiver = PythonReceiver().start()
    yield receiver
    receiver.stop()


def unique_repository(git_server: GitServer, files: dict[str, bytes]) -> TestRepo:
    repo = git_server.make_repo(f"acme/widgets-{uuid.uuid4().hex[:8]}")
    repo.commit(dict(files), "first")
    return repo


def received(receiver: PythonReceiver, app: Onboarded, count: int) -> list[Event]:
    """Wait until `count` changes are complete at the receiver; return them."""

    def enough() -> list[Event] | None:
        found = events(list(receiver.requests), app)
        return found if len(found) >= count else None

    return wait_for(enough, SYNC_SECONDS, f"{count} changes to arrive")


def synced(
    docora: Docora, receiver: PythonReceiver, repo: TestRepo, *, one_at_a_time: bool = False
) -> tuple[Onboarded, str]:
    app = docora.onboard(receiver, f"app-{repo.name.rsplit('/', 1)[-1]}")
    if one_at_a_time:
        docora.one_at_a_time(app)
    repository_id = docora.register(app, repo.name)
    received(receiver, app, len(FILES))
    wait_for(lambda: docora.watch_status(app, repository_id)["status"] == "synced", SYNC_SECONDS, "the watch to sync")
    return app, repository_id


def test_every_file_of_a_registered_repository_arrives_signed(docora, git_server, receiver):
    repo = unique_repository(git_server, FILES)

    app, repository_id = synced(docora, receiver, repo)

    arrived = events(receiver.requests, app)
    assert sorted(event.change for event in arrived) == sorted(("create", path) for path in FILES)
    for event in arrived:
        assert event.content == FILES[event.path]
        assert event.sha == sha256(FILES[event.path])
    assert docora.watch_status(app, repository_id)["status"] == "synced"


def test_a_push_sends_exactly_its_changes_with_a_big_binary_in_chunks(docora, git_server, receiver):
    repo = unique_repository(git_server, FILES)
    app, repository_id = synced(docora, receiver, repo)
    receiver.requests.clear()
    changes = {"README.md": b"# Widgets\n\nMore.\n", "src/app.py": None, "NEW.md": b"new\n", "big.bin": BIG_BINARY}
    repo.commit(changes, "second")

    # As the sweep would, once the rescan interval passes.
    scan_queue = docora.client("sqs").get_queue_url(QueueName="docora-scan")["QueueUrl"]
    request = ScanRequested(repository_id, datetime.now(UTC))
    docora.client("sqs").send_message(QueueUrl=scan_queue, MessageBody=request.to_json())
    arrived = received(receiver, app, 4)

    # Up to 8 requests are in flight (max_in_flight), so the changes of different paths may finish in any order.
    assert sorted(event.change for event in arrived) == [
        ("create", "NEW.md"),
        ("create", "big.bin"),
        ("delete", "src/app.py"),
        ("update", "README.md"),
    ]
    big = next(event for event in arrived if event.path == "big.bin")
    assert (big.content, big.sha, big.slices) == (BIG_BINARY, sha256(BIG_BINARY), 8)
    assert next(event for event in arrived if event.path == "src/app.py").sha == sha256(FILES["src/app.py"])


def test_a_failing_receiver_gets_every_file_once_it_recovers(docora, git_server, receiver):
    repo = unique_repository(git_server, FILES)
    receiver.script(Reply(status=503), Reply(status=500))

    app, repository_id = synced(docora, receiver, repo, one_at_a_time=True)

    first, second, *retried = receiver.requests
    assert first.path == second.path  # the same change, tried again after the failure
    assert sorted(event.change for event in events(retried, app)) == sorted(("create", path) for path in FILES)
    attempts = docora.get(f"/api/repositories/{repository_id}/deliveries", token=app.token).json()
    statuses = [attempt["status_code"] for attempt in reversed(attempts["deliveries"])]
    assert statuses[:3] == [503, 500, 200]


def test_a_push_webhook_starts_a_sync_without_the_schedule(docora, git_server, receiver):
    repo = unique_repository(git_server, FILES)
    app, _ = synced(docora, receiver, repo)
    receiver.requests.clear()
    repo.commit({"README.md": b"# Widgets, pushed\n"}, "pushed")

    response = docora.push_webhook(repo.name)

    assert response.status_code == 202, response.text
    arrived = received(receiver, app, 1)
    assert [event.change for event in arrived] == [("update", "README.md")]


def test_a_record_that_keeps_failing_moves_to_the_dead_letter_queue(docora):
    sqs, lambda_ = docora.client("sqs"), docora.client("lambda")
    queue = sqs.get_queue_url(QueueName="docora-scan")["QueueUrl"]
    dead_letters = sqs.get_queue_url(QueueName="docora-scan-dlq")["QueueUrl"]
    mapping = _mapping_of(lambda_, docora.deployment.functions["ScanRepositories"])
    good = [ScanRequested(f"repo_{uuid.uuid4().hex[:24]}", datetime.now(UTC)).to_json() for _ in range(2)]
    poison = json.dumps({"type": "not_a_scan_request", "id": uuid.uuid4().hex})

    # Paused while sending, so that one batch holds good and poison records: a partial batch failure.
    _set_enabled(lambda_, mapping, False)
    entries = [{"Id": str(index), "MessageBody": body} for index, body in enumerate([*good, poison])]
    sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    _set_enabled(lambda_, mapping, True)

    dead = wait_for(lambda: sqs.receive_message(QueueUrl=dead_letters).get("Messages"), 90, "the dead-letter queue")
    assert [message["Body"] for message in dead] == [poison]
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_every_queue_consumer_reports_partial_batch_failures(docora):
    lambda_ = docora.client("lambda")

    mappings = lambda_.list_event_source_mappings()["EventSourceMappings"]

    consumers = {docora.deployment.functions[name] for name in ("ScanRepositories", "DeliverChanges")}
    assert {mapping["FunctionArn"].rsplit(":", 1)[-1] for mapping in mappings} == consumers
    assert all(mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"] for mapping in mappings)


def test_unknown_paths_answer_the_protocols_404_through_api_gateway(docora):
    response = docora.get("/api/nothing/here")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_a_known_path_with_another_method_answers_405_with_allow_through_api_gateway(docora):
    response = requests.put(docora.url("/api/repositories"), json={}, timeout=30)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


def test_health_checks_every_dependency_from_inside_the_deployment(docora):
    response = docora.get("/health")

    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "queues": "ok"}


def _mapping_of(lambda_, function_name: str) -> str:
    mappings = lambda_.list_event_source_mappings(FunctionName=function_name)["EventSourceMappings"]
    return mappings[0]["UUID"]


def _set_enabled(lambda_, mapping: str, enabled: bool) -> None:
    lambda_.update_event_source_mapping(UUID=mapping, Enabled=enabled)
    state = "Enabled" if enabled else "Disabled"
    wait_for(lambda: lambda_.get_event_source_mapping(UUID=mapping)["State"] == state, 30, f"the mapping {state}")
