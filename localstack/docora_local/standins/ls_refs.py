"""A git server for many repositories, cheaply: heads are a table in memory, each answer waits a set latency
(GitHub's is about 30 ms), and any repository can be told to fail. It answers protocol-v2 `ls-refs` for any head
it is given, and `fetch` for the commits it made itself (one file each), which is enough for a real scan.

It measures Docora's head checks rather than `git http-backend`, which spends tens of milliseconds of CPU per request.
It runs in a process of its own (so its work is not charged to the process measured) and is steered over HTTP:

- `POST /_control/heads` `{"owner/name": "<commit id>", ...}` sets heads (a new repository, or a push);
- `POST /_control/commits` `{"owner/name": "<text>", ...}` pushes a commit holding README.md with that text, and
  answers each new head;
- `POST /_control/faults` `{"owner/name": 404 | 500 | "hang" | null}` makes a repository fail, or heals it;
- `POST /_control/tokens` `{"owner/name": "<token>"}` makes a repository private: only that token reads it;
- `GET /_control/stats` gives the number of ls-refs answered, by repository, and resets them.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import multiprocessing
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, Commit, ShaFile, Tree
from dulwich.pack import write_pack_objects

from docora_local.standins.loopback_http import serve_async

_AUTHORIZATION = re.compile(rb"(?im)^authorization:\s*basic\s+(\S+)")
_UPLOAD_PACK = re.compile(rb"^POST /(?P<repository>[^ ]+?)\.git/git-upload-pack ")
_REF_PREFIX = re.compile(rb"ref-prefix (\S+)\n")
_WANT = re.compile(rb"want ([0-9a-f]{40})\n")
_HANG_SECONDS = 3600


@dataclass
class _State:
    latency: float
    heads: dict[str, str] = field(default_factory=dict)
    faults: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    answered: Counter[str] = field(default_factory=Counter)
    objects: dict[bytes, ShaFile] = field(default_factory=dict)  # of the commits made here, by id


class LsRefsServer:
    """The stand-in in a child process; `url` is its base, as GIT_BASE_URL takes it."""

    def __init__(self, *, latency: float = 0.03) -> None:
        self._latency = latency
        self._process: multiprocessing.Process | None = None
        self.url = ""

    def __enter__(self) -> LsRefsServer:
        parent, child = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(child, self._latency), daemon=True
        )
        self._process.start()
        self.url = f"http://127.0.0.1:{parent.recv()}"
        self._control = requests.Session()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._control.close()
        if self._process is not None:
            self._process.kill()
            self._process.join()

    def set_heads(self, heads: dict[str, str]) -> None:
        self._post("heads", heads)

    def set_faults(self, faults: dict[str, Any]) -> None:
        self._post("faults", faults)

    def require_tokens(self, tokens: dict[str, str]) -> None:
        self._post("tokens", tokens)

    def commit(self, texts: dict[str, str]) -> dict[str, str]:
        return self._post("commits", texts)

    def take_stats(self) -> Counter[str]:
        """ls-refs answered by repository since the last call."""
        return Counter(self._control.get(f"{self.url}/_control/stats", timeout=30).json())

    def _post(self, what: str, body: dict[str, Any]) -> Any:
        answer = self._control.post(f"{self.url}/_control/{what}", json=body, timeout=60)
        answer.raise_for_status()
        return answer.json()


@contextmanager
def ls_refs_server(*, latency: float = 0.03) -> Iterator[LsRefsServer]:
    with LsRefsServer(latency=latency) as server:
        yield server


def _serve(pipe: Any, latency: float) -> None:
    state = _State(latency)

    async def answer(head: bytes, body: bytes) -> bytes:
        return await _answer(state, head, body)

    serve_async(pipe, answer)


async def _answer(state: _State, head: bytes, body: bytes) -> bytes:
    if head.startswith(b"POST /_control/") or head.startswith(b"GET /_control/"):
        return _control(state, head, body)
    match = _UPLOAD_PACK.match(head)
    if match is None:
        return _reply(404, b"not found", "text/plain")
    repository = match.group("repository").decode()
    await asyncio.sleep(state.latency)
    fault = state.faults.get(repository)
    if fault == "hang":
        await asyncio.sleep(_HANG_SECONDS)
    if isinstance(fault, int):
        return _reply(fault, b"failing on purpose", "text/plain")
    if repository not in state.heads or not _authorized(state, repository, head):
        return _reply(401 if repository in state.tokens else 404, b"not found", "text/plain")
    if b"command=fetch" in body:
        return _reply(200, _fetched(state, body), "application/x-git-upload-pack-result")
    state.answered[repository] += 1
    prefix = _REF_PREFIX.search(body)
    ref = b"refs/heads/main"
    lines = b"" if prefix is None or not ref.startswith(prefix.group(1)) else _pkt(state.heads[repository], ref)
    return _reply(200, lines + b"0000", "application/x-git-upload-pack-result")


def _authorized(state: _State, repository: str, head: bytes) -> bool:
    token = state.tokens.get(repository)
    if token is None:
        return True
    match = _AUTHORIZATION.search(head)
    return match is not None and base64.b64decode(match.group(1)) == f"x-access-token:{token}".encode()


def _control(state: _State, head: bytes, body: bytes) -> bytes:
    if head.startswith(b"GET /_control/stats"):
        answered, state.answered = dict(state.answered), Counter()
        return _reply(200, json.dumps(answered).encode(), "application/json")
    changes = json.loads(body)
    if head.startswith(b"POST /_control/heads"):
        state.heads.update(changes)
    elif head.startswith(b"POST /_control/faults"):
        for repository, fault in changes.items():
            if fault is None:
                state.faults.pop(repository, None)
            else:
                state.faults[repository] = fault
    elif head.startswith(b"POST /_control/tokens"):
        state.tokens.update(changes)
    elif head.startswith(b"POST /_control/commits"):
        made = {repository: _make_commit(state, text) for repository, text in changes.items()}
        state.heads.update(made)
        return _reply(200, json.dumps(made).encode(), "application/json")
    return _reply(200, b"{}", "application/json")


def _make_commit(state: _State, text: str) -> str:
    blob = Blob.from_string(text.encode())
    tree = Tree()
    tree.add(b"README.md", 0o100644, blob.id)
    commit = Commit()
    commit.tree, commit.message = tree.id, b"a commit of the stand-in\n"
    commit.author = commit.committer = b"Stand-in <standin@example.com>"
    commit.author_time = commit.commit_time = 1_764_000_000
    commit.author_timezone = commit.commit_timezone = 0
    state.objects.update({blob.id: blob, tree.id: tree, commit.id: commit})
    return commit.id.decode()


def _fetched(state: _State, body: bytes) -> bytes:
    """A pack of what was wanted: a commit with its tree (its blob too, unless blobs were filtered out), or blobs."""
    objects: list[ShaFile] = []
    for object_id in _WANT.findall(body):
        wanted = state.objects[object_id]
        objects.append(wanted)
        if isinstance(wanted, Commit):
            tree = state.objects[wanted.tree]
            objects.append(tree)
            if b"filter blob:none" not in body:
                objects.extend(state.objects[entry.sha] for entry in tree.iteritems())
    pack = io.BytesIO()
    write_pack_objects(pack.write, objects, DEFAULT_OBJECT_FORMAT)
    data, packets = pack.getvalue(), [_pkt_line(b"packfile\n")]
    packets += [_pkt_line(b"\x01" + data[start : start + 65000]) for start in range(0, len(data), 65000)]
    return b"".join(packets) + b"0000"


def _pkt_line(payload: bytes) -> bytes:
    return f"{len(payload) + 4:04x}".encode() + payload


def _pkt(commit_id: str, ref: bytes) -> bytes:
    return _pkt_line(commit_id.encode() + b" " + ref + b"\n")


def _reply(status: int, body: bytes, content_type: str) -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
