"""Bodies built by webhooks.py, sent by WebhookSender, verified by a Node.js receiver the way original ones verify."""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import __version__
from chalicelib.adapters.webhook_http import WebhookSender
from chalicelib.domain import chunks, webhooks
from chalicelib.domain.chunks import Chunk
from chalicelib.domain.webhooks import RepositoryRef
from tests.integration.node_receiver import NodeReceiver

APP_ID = "app_0123456789abcdef01234567"
KEY = "compat-key-κλειδί-鍵-🔑"
REPO = RepositoryRef("repo_0123456789abcdef01234567", "https://github.com/octo/hello", "octo", "hello")
COMMIT = "c" * 40
SLICE_CHARS = 524288
TEXTS = {
    "accents.txt": "Ça été déjà vu à Zürich, señor — naïve façade",
    "cjk.md": "漢字とかなカナ、한국어 텍스트, 中文内容",
    "emoji.txt": "😀 👍🏽 👨‍👩‍👧 🇫🇷 \U0001f9ea",
    "separators.js": "var a = '\u2028'; var b = '\u2029';\u2028\u2029",
    "controls.bin.txt": "".join(chr(code) for code in range(0x20)) + "\x7f",
    "quotes.json": '{"a": "b\\"c", "path": "C:\\\\dir\\\\file", "url": "http://x/y"}',
    "mixed/é 漢 😀.txt": 'line one\r\nline\ttwo\\n "quoted" </script> \u2028 end',
}


@pytest.fixture
def node() -> Iterator[NodeReceiver]:
    try:
        receiver = NodeReceiver(KEY)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield receiver
    receiver.stop()


@pytest.fixture
def sender() -> Iterator[WebhookSender]:
    client = WebhookSender(allow_private=True, user_agent=f"Docora/{__version__}")
    yield client
    client.close()


def post(sender: WebhookSender, node: NodeReceiver, event: str, body: bytes, delivery: str, key: str = KEY) -> int:
    timestamp = int(time.time())
    headers = webhooks.headers(APP_ID, key, body, event, delivery, timestamp, __version__)
    result = sender.send(webhooks.event_url(node.url + "/", event), body, headers)
    assert result.error is None
    return result.status_code


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_every_text_event_verifies_and_arrives_intact(node, sender):
    now = datetime.now(UTC)
    for path, text in TEXTS.items():
        raw = text.encode()
        delivery = webhooks.delivery_id(APP_ID, REPO.repository_id, path, sha256(raw), "create")
        body = webhooks.create_body(REPO, path, sha256(raw), len(raw), text, None, COMMIT, now)
        assert post(sender, node, "create", body, delivery) == 200
    update = webhooks.update_body(REPO, "cjk.md", "1" * 64, 3, "新", None, "2" * 64, COMMIT, now)
    delete = webhooks.delete_body(REPO, "emoji.txt", "3" * 64, COMMIT, now)
    failed = webhooks.sync_failed_body(REPO, "git: «timeout» \u2028", 5, 5, now + timedelta(minutes=30), 1, now)

    assert post(sender, node, "update", update, "dlv_u") == 200
    assert post(sender, node, "delete", delete, "dlv_d") == 200
    assert post(sender, node, "sync_failed", failed, "dlv_f") == 200
    got = node.received()
    assert got["failures"] == []
    assert all(event["byte_identical"] for event in got["events"])
    creates = [event for event in got["events"] if event["event"] == "create"]
    assert {event["path"]: event["content"] for event in creates} == TEXTS
    assert all(event["sha_ok"] for event in creates)
    assert [event["header_event"] for event in got["events"]][-3:] == ["update", "delete", "sync_failed"]
    assert got["events"][-1]["body"]["error"]["message"] == "git: «timeout» \u2028"
    assert {event["user_agent"] for event in got["events"]} == {f"Docora/{__version__}"}


def test_a_chunked_binary_reassembles_to_its_sha256(node, sender):
    data = random.Random(42).randbytes(3 * 1024 * 1024)  # noqa: S311 - reproducible, not secret
    sha = sha256(data)
    delivery = webhooks.delivery_id(APP_ID, REPO.repository_id, "assets/blob.bin", sha, "create")
    total = chunks.slice_count(len(data), SLICE_CHARS)
    stream = (data[start : start + 65536] for start in range(0, len(data), 65536))
    now = datetime.now(UTC)
    assert chunks.needs_chunks(True, len(data), 1048576)

    for index, piece in enumerate(chunks.base64_slices(stream, SLICE_CHARS)):
        chunk = Chunk(chunks.chunk_id(delivery), index, total)
        body = webhooks.create_body(REPO, "assets/blob.bin", sha, len(data), piece, "base64", COMMIT, now, chunk)
        assert post(sender, node, "create", body, chunks.slice_delivery_id(delivery, index)) == 200

    got = node.received()
    assert got["failures"] == []
    assert [event["chunk"]["index"] for event in got["events"]] == list(range(total))
    assert got["files"] == [
        {
            "event": "create",
            "id": chunks.chunk_id(delivery),
            "path": "assets/blob.bin",
            "size": len(data),
            "sha": sha,
            "ok": True,
        }
    ]


def test_a_lone_surrogate_is_escaped_so_javascript_still_verifies(node, sender):
    body = webhooks.create_body(REPO, "odd.txt", "0" * 64, 1, "a\udc80b\ud83d\ude00", None, COMMIT, datetime.now(UTC))

    assert post(sender, node, "create", body, "dlv_s") == 200
    assert node.received()["events"][0]["content"] == "a\udc80b😀"


def test_the_receiver_refuses_a_wrong_key(node, sender):
    body = webhooks.delete_body(REPO, "a.txt", "0" * 64, COMMIT, datetime.now(UTC))

    assert post(sender, node, "delete", body, "dlv_k", key="not-the-key-at-all") == 401
    assert node.received()["failures"][0]["reason"] == "signature mismatch"


def test_ascii_escaped_json_would_fail_original_receivers(node, sender):
    payload = {"repository": {"repository_id": REPO.repository_id}, "file": {"path": "é.txt", "sha": "0" * 64}}
    body = json.dumps(payload, separators=(",", ":")).encode()  # ensure_ascii=True: "\u00e9", not "é"

    assert post(sender, node, "delete", body, "dlv_a") == 401
    assert node.received()["failures"][0]["byteIdentical"] is False
