"""A receiver that keeps, per app and repository, the files it acknowledged, as a careful mirror would.

It answers each request by script, then by `policy` (seeded faults), then with 200; applies a change only when
it answered 2xx; reassembles chunks by id; and checks every signature and every SHA-256, noting what is wrong in
`problems` rather than raising inside the server thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from docora_local.harness.receivers import PythonReceiver, Received, Reply
from docora_local.harness.scan_stack import CLIENT_AUTH_KEY

Files = dict[str, str]  # path -> SHA-256 hex


@dataclass(frozen=True)
class Sent:
    """One webhook as the receiver saw it, and whether it acknowledged it."""

    app_id: str
    repository_id: str
    event: str
    path: str | None
    sha: str | None
    delivery_id: str
    chunk_index: int | None
    acknowledged: bool
    at: float  # time.time() when it arrived

    @property
    def change_id(self) -> str:
        """The delivery id of the whole change: a chunk's slices carry `<id>.<index>`."""
        return self.delivery_id.split(".")[0]


@dataclass
class Hold:
    """Keeps one request unanswered until `release` is set; `entered` tells that it arrived."""

    reply: Reply
    entered: threading.Event
    release: threading.Event


class MirrorReceiver(PythonReceiver):
    def __init__(
        self, *, key: str = CLIENT_AUTH_KEY, policy: Callable[[], Reply] | None = None, keep_requests: bool = True
    ) -> None:
        """`keep_requests=False` keeps what was sent and held, not every request's body (for long runs)."""
        super().__init__()
        # Senders that give up (timeouts, trickled answers) leave broken pipes behind; they are expected here.
        self._server.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self.key = key
        self.policy = policy
        self.keep_requests = keep_requests
        self.sent: list[Sent] = []
        self.problems: list[str] = []
        self._files: dict[tuple[str, str], Files] = {}
        self._slices: dict[str, dict[int, str]] = {}
        self._holds: dict[int, Hold] = {}
        self._answered = 0
        self._state = threading.Lock()
        self._reply = threading.local()

    def hold(self, later: int, reply: Reply | None = None) -> Hold:
        """Keep the `later`-th request from now (1 is the next) waiting until released, then answer `reply`."""
        held = Hold(reply or Reply(), threading.Event(), threading.Event())
        with self._state:
            self._holds[self._answered + later] = held
        return held

    def files(self, app_id: str, repository_id: str) -> Files:
        with self._state:
            return dict(self._files.get((app_id, repository_id), {}))

    def held(self) -> dict[tuple[str, str], Files]:
        with self._state:
            return {key: dict(files) for key, files in self._files.items()}

    def starts(self, app_id: str) -> Counter[str]:
        """How many times each change began to go out to this app (a chunked one counts once per first slice)."""
        with self._state:
            return Counter(s.change_id for s in self.sent if s.app_id == app_id and not s.chunk_index)

    def forget_log(self) -> None:
        """Drop what was sent so far and keep the files: a fresh count for the next act of a test."""
        with self._state:
            self.sent.clear()
        with self._lock:
            self.requests.clear()

    def _next_reply(self) -> Reply:
        with self._state:
            self._answered += 1
            held = self._holds.pop(self._answered, None)
        if held is not None:
            held.entered.set()
            held.release.wait(60)
            reply = held.reply
        elif self._script or self.policy is None:
            reply = super()._next_reply()
        else:
            reply = self.policy()
        self._reply.value = reply
        return reply

    def _record(self, received: Received) -> None:
        if self.keep_requests:
            super()._record(received)
        reply: Reply = self._reply.value
        acknowledged = received.complete and reply.action in (None, "slow-body") and 200 <= reply.status < 300
        try:
            self._apply(received, acknowledged)
        except (KeyError, ValueError, TypeError) as error:
            with self._state:
                self.problems.append(f"unreadable request to {received.path}: {error!r}")

    def _apply(self, received: Received, acknowledged: bool) -> None:
        headers, body = received.headers, received.body
        if not received.complete:
            return
        mac = hmac.new(self.key.encode(), headers["X-Docora-Timestamp"].encode() + b"." + body, hashlib.sha256)
        problems = (
            [] if hmac.compare_digest("sha256=" + mac.hexdigest(), headers["X-Docora-Signature"]) else ["bad signature"]
        )
        payload = json.loads(body)
        event, app_id = headers["X-Docora-Event"], headers["X-Docora-App-Id"]
        repository_id = payload["repository"]["repository_id"]
        file = payload.get("file") or {}
        chunk = file.get("chunk")
        sent = Sent(
            app_id,
            repository_id,
            event,
            file.get("path"),
            file.get("sha"),
            headers["X-Docora-Delivery"],
            chunk["index"] if chunk else None,
            acknowledged,
            time.time(),
        )
        with self._state:
            self.sent.append(sent)
            self.problems.extend(f"{p} on {sent.delivery_id}" for p in problems)
            if acknowledged and event in ("create", "update", "delete"):
                self._keep(app_id, repository_id, event, file)

    def _keep(self, app_id: str, repository_id: str, event: str, file: dict) -> None:
        files = self._files.setdefault((app_id, repository_id), {})
        if event == "delete":
            files.pop(file["path"], None)
            return
        content: str = file["content"]
        chunk = file.get("chunk")
        if chunk is not None:
            slices = self._slices.setdefault(chunk["id"], {})
            slices[chunk["index"]] = content
            if len(slices) < chunk["total"]:
                return
            content = "".join(slices[index] for index in range(chunk["total"]))
            del self._slices[chunk["id"]]
        data = base64.b64decode(content) if file.get("content_encoding") == "base64" else content.encode("utf-8")
        if hashlib.sha256(data).hexdigest() != file["sha"] or len(data) != file["size"]:
            self.problems.append(f"{file['path']}: content does not match its sha or size")
            return
        files[file["path"]] = file["sha"]
