"""The reference receiver against the real pipeline: after every commit its folder is the repository's tree.

Docora runs in-process over the scan stack (git smart-HTTP on loopback, Postgres, Redis, moto S3 and SQS) and
sends real signed webhooks to examples/receiver/receiver.py running as a subprocess, exactly as documented.
Chunking is shrunk (64 KiB threshold, 16 KiB slices) so that a chunked binary stays cheap.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.adapters.webhook_http import WebhookSender
from chalicelib.ports import WebhookResult
from docora_local.harness.scan_stack import CLIENT_AUTH_KEY, T0, later, scan_stack
from tests.e2e.mirror_receiver import ReceiverProcess, commit, folder_tree, repository_tree

THRESHOLD = 64 * 1024
SLICE_CHARS = 16 * 1024
BIG = b"\x00" + os.urandom(200_000)  # 267 KiB of base64: 17 slices
BIGGER = b"\x00" + os.urandom(150_000)
AT_THRESHOLD = b"\x00" + os.urandom(THRESHOLD - 1)  # exactly the threshold: sent whole

# Each step is one commit: adds, edits, deletes, renames (a rename is a delete plus a create), a binary over
# the chunk threshold that is added, edited, renamed and deleted, and non-ASCII paths and contents.
COMMITS: list[dict[str, bytes | None]] = [
    {
        "README.md": b"# Widgets\n",
        "docs/guide.md": b"How to use the widgets.\n",
        "données/été.txt": "Ça a été déjà vu à Zürich — naïve façade\n".encode(),
        "漢字/テスト.md": "漢字とかなカナ、한국어 텍스트, 中文内容\n".encode(),
        "emoji 🚀/party 🎉.txt": "rocket 🚀 family 👨‍👩‍👧 flag 🇫🇷 \u2028 end\n".encode(),
        "src/app.py": b"print('hello')\n",
        "bin/run.sh": b"#!/bin/sh\nexec python src/app.py\n",
        "empty.txt": b"",
        "assets/logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
        "assets/at-threshold.bin": AT_THRESHOLD,
        "assets/big.bin": BIG,
        "a/b.txt": b"a folder that later becomes a file\n",
    },
    {
        "README.md": b"# Widgets\n\nNow with more widgets.\n",
        "docs/guide.md": None,
        "src/app.py": None,
        "src/main.py": b"print('hello')\n",
        "données/été.txt": "Édition : ü ö ä ß — ça marche, señor\n".encode(),
        "assets/big.bin": BIGGER,
        "deep/er/and/deeper/file.txt": b"deep\n",
    },
    {
        "assets/big.bin": None,
        "assets/moved big 🚚.bin": BIGGER,
        "漢字/テスト.md": None,
        "かな/テスト.md": "漢字とかなカナ、한국어 텍스트, 中文内容\n".encode(),
        "a/b.txt": None,
        "a": b"a file where a folder was\n",
        "deep/er/and/deeper/file.txt": None,
    },
]


class TappedWebhooks:
    """The real sender, recording every request and answer, with a hook that runs after each answer."""

    def __init__(self, sender: WebhookSender) -> None:
        self.sender = sender
        self.sent: list[tuple[str, bytes, dict[str, str], int | None]] = []
        self.after: Callable[[bytes], None] = lambda body: None

    def send(self, url: str, body: bytes, headers: Any, *, timeout: float = 30.0) -> WebhookResult:
        result = self.sender.send(url, body, headers, timeout=timeout)
        self.sent.append((url, body, dict(headers), result.status_code))
        self.after(body)
        return result

    def close(self) -> None:
        self.sender.close()


@pytest.fixture
def stack(tmp_path, database_url, redis_url, monkeypatch):
    settings = {"binary_chunk_threshold_bytes": THRESHOLD, "binary_chunk_size_bytes": SLICE_CHARS}
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, **settings) as built:
        built.deps = dataclasses.replace(built.deps, webhooks=TappedWebhooks(built.deps.webhooks))
        yield built


@pytest.fixture
def receiver(tmp_path):
    process = ReceiverProcess(CLIENT_AUTH_KEY, tmp_path / "mirror")
    yield process
    process.stop()


def watch(stack, url: str) -> tuple[Any, str, str]:
    repo = stack.make_repo("acme/widgets")
    repository_id = stack.add_repository("acme/widgets", base_url=url)
    return repo, repository_id, stack.app_ids(repository_id)[0]


def sync(stack, repository_id: str, app_id: str, step: int) -> str:
    stack.scan(repository_id, at=later(T0, step))
    return stack.deliver(app_id, repository_id).outcome


def test_the_mirror_is_the_repository_tree_after_every_commit(stack, receiver, tmp_path):
    repo, repository_id, app_id = watch(stack, receiver.url)
    mirror = tmp_path / "mirror" / "acme" / "widgets"

    for step, files in enumerate(COMMITS):
        first = step == 0
        commit(
            repo,
            files,
            executable=("bin/run.sh",) if first else (),
            symlinks={"latest": "README.md"} if first else None,
        )

        assert sync(stack, repository_id, app_id, step) == "synced"
        assert folder_tree(mirror) == repository_tree(repo), f"after commit {step + 1}"

    tapped = stack.deps.webhooks
    sent_files = [json.loads(body)["file"] for _, body, _, _ in tapped.sent]
    chunked = {(file["path"], file["chunk"]["total"]) for file in sent_files if "chunk" in file}
    assert chunked == {("assets/big.bin", 17), ("assets/big.bin", 13), ("assets/moved big 🚚.bin", 13)}
    assert all(status == 200 for *_, status in tapped.sent)
    lines = receiver.wait_for_lines(len(tapped.sent))
    assert len(lines) == len(tapped.sent)
    assert not any(line.startswith(("refused", "failed")) for line in lines)
    assert set(folder_tree(mirror)) == {p.encode() for p in ("README.md", "données/été.txt", "かな/テスト.md",
        "emoji 🚀/party 🎉.txt", "src/main.py", "bin/run.sh", "empty.txt", "assets/logo.png",
        "assets/at-threshold.bin", "assets/moved big 🚚.bin", "a")}  # fmt: skip


def test_every_request_sent_twice_changes_nothing(stack, receiver, tmp_path):
    repo, repository_id, app_id = watch(stack, receiver.url)
    mirror = tmp_path / "mirror" / "acme" / "widgets"
    tapped = stack.deps.webhooks
    commit(repo, COMMITS[0])
    sync(stack, repository_id, app_id, 0)
    commit(repo, COMMITS[1])
    first_sync = len(tapped.sent)
    sync(stack, repository_id, app_id, 1)
    last_sync = tapped.sent[first_sync:]
    before = folder_tree(mirror)
    lines_before = len(receiver.wait_for_lines(len(tapped.sent)))

    # The same signed requests again, as when Docora's answer got lost: deletes, creates, updates, every slice.
    answers = [tapped.sender.send(url, body, headers).status_code for url, body, headers, _ in last_sync]

    assert answers == [200] * len(last_sync)
    assert folder_tree(mirror) == before == repository_tree(repo)
    again = receiver.wait_for_lines(lines_before + len(last_sync))[lines_before:]
    assert len(again) == len(last_sync)
    assert all("unchanged" in line or "already absent" in line for line in again), again


def test_a_request_whose_body_was_altered_is_refused(stack, receiver, tmp_path):
    repo, repository_id, app_id = watch(stack, receiver.url)
    commit(repo, {"a.md": b"a\n"})
    sync(stack, repository_id, app_id, 0)
    url, body, headers, _ = stack.deps.webhooks.sent[0]

    forged = body.replace(b'"a.md"', b'"b.md"')
    status = stack.deps.webhooks.sender.send(url, forged, headers).status_code

    assert status == 401
    assert folder_tree(tmp_path / "mirror" / "acme" / "widgets") == {b"a.md": b"a\n"}


def test_a_receiver_killed_between_two_slices_finishes_the_transfer_after_its_restart(stack, receiver, tmp_path):
    repo, repository_id, app_id = watch(stack, receiver.url)
    tapped = stack.deps.webhooks
    processes = [receiver]

    def crash_after_slice_five(body: bytes) -> None:
        chunk = json.loads(body)["file"].get("chunk")
        if chunk and chunk["index"] == 5 and len(processes) == 1:
            processes[-1].crash()
            processes.append(ReceiverProcess(CLIENT_AUTH_KEY, tmp_path / "mirror", port=receiver.port))

    tapped.after = crash_after_slice_five
    commit(repo, {"small.md": b"small\n", "big.bin": BIG})

    try:
        outcome = sync(stack, repository_id, app_id, 0)
    finally:
        processes[-1].stop()

    slices = [json.loads(body)["file"]["chunk"]["index"] for _, body, _, _ in tapped.sent if b'"chunk"' in body]
    assert outcome == "synced"
    assert slices == list(range(17))  # each slice once: nothing was resent from slice 0
    assert [line.split(": ")[1].split(" [")[0] for line in processes[0].lines][-1] == "slice 6/17 kept"
    assert processes[1].lines[0].startswith("create acme/widgets big.bin: slice 7/17 kept")
    assert any(line.startswith("create acme/widgets big.bin: written (200001 bytes") for line in processes[1].lines)
    assert folder_tree(tmp_path / "mirror" / "acme" / "widgets") == repository_tree(repo)
