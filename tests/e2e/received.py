"""What a receiver got, checked the way a receiver must check it: signature, app id, freshness, chunk reassembly."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from docora_local.harness.receivers import Received
from tests.e2e.deployed import Onboarded

MAX_CLOCK_SKEW_SECONDS = 300  # docs/protocol.md §1.2


@dataclass(frozen=True)
class Event:
    """One change as the receiver ends up with it; `slices` counts the requests that carried it."""

    kind: str
    path: str
    sha: str
    content: bytes | None
    slices: int = 1

    @property
    def change(self) -> tuple[str, str]:
        return self.kind, self.path


def events(requests: Iterable[Received], app: Onboarded) -> list[Event]:
    """Every complete change, in the order its last request arrived; each request's signature checked."""
    complete: list[Event] = []
    slices: dict[str, list[dict[str, object]]] = {}
    for request in requests:
        payload = verified(request, app)
        kind, file = request.path.rsplit("/", 1)[-1], payload["file"]
        chunk = file.get("chunk")
        if chunk is None:
            complete.append(Event(kind, file["path"], file["sha"], _content(file)))
            continue
        parts = slices.setdefault(chunk["id"], [])
        parts.append(file)
        if len(parts) == chunk["total"]:
            ordered = sorted(parts, key=lambda part: part["chunk"]["index"])  # type: ignore[index]
            content = base64.b64decode("".join(str(part["content"]) for part in ordered))
            complete.append(Event(kind, file["path"], file["sha"], content, slices=len(parts)))
    return complete


def verified(request: Received, app: Onboarded) -> dict:
    """The request's JSON body, after checking it came from Docora for this app, recently."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["x-docora-app-id"] == app.app_id
    timestamp = headers["x-docora-timestamp"]
    assert abs(time.time() - int(timestamp)) < MAX_CLOCK_SKEW_SECONDS
    signed = timestamp.encode() + b"." + request.body
    expected = "sha256=" + hmac.new(app.key.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-docora-signature"], expected), f"bad signature on {request.path}"
    return json.loads(request.body)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _content(file: dict) -> bytes | None:
    if "content" not in file:
        return None  # a delete
    if file.get("content_encoding") == "base64":
        return base64.b64decode(file["content"])
    return file["content"].encode()
