"""Applies verified Docora events to a folder, so that DIR/<owner>/<name>/ holds each repository's tracked files.

Besides the mirrors, the receiver keeps only DIR/.docora-receiver/: the slices of chunked transfers, on disk so
that a restart between two slices loses nothing, and temporary files, which sit on the mirrors' file system so
that os.replace is atomic, and outside the mirrors so that a crash leaves no debris in them.

Idempotency comes from the content, not from a log of delivery ids: a file that already has the announced
SHA-256 is left alone, and deleting an absent file is a success. (A delivery id comes back legitimately when a
file returns to an earlier content, so a set of ids seen forever would drop a real change.)
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_DIR = ".docora-receiver"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MAX_SLICES = 1_000_000
# Docora restarts a failed transfer from slice 0 within minutes; slices untouched for a day are abandoned.
_ABANDONED_AFTER_SECONDS = 24 * 3600
_READ_BYTES = 1024 * 1024


class Refused(Exception):
    """The payload is malformed, unsafe or inconsistent; the receiver answers 400 and Docora sends it again."""


@dataclass(frozen=True)
class Outcome:
    event: str
    repository: str  # owner/name
    path: str
    note: str  # what happened, for the receiver's one line per event


def event_of(payload: dict[str, Any]) -> str:
    """The event a body describes; its shape is signed, unlike the URL path and the X-Docora-Event header."""
    if payload.get("event") == "sync_failed":
        return "sync_failed"
    file = payload.get("file")
    if not isinstance(file, dict):
        raise Refused("the body has no file object")
    if "content" not in file:
        return "delete"
    return "update" if "previous_sha" in payload else "create"


def checked_path(path: object) -> tuple[str, ...]:
    """The segments of a repository-relative POSIX path, or Refused for anything that could leave the mirror."""
    if not isinstance(path, str) or not path:
        raise Refused("file.path must be a non-empty string")
    if path.startswith("/") or "\\" in path or "\0" in path:
        raise Refused(f"unsafe path {path!r}: absolute, or with a backslash or NUL")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(f"unsafe path {path!r}: not valid Unicode") from None
    segments = tuple(path.split("/"))
    if any(segment in ("", ".", "..") for segment in segments):
        raise Refused(f"unsafe path {path!r}: empty, '.' or '..' segment")
    return segments


class Mirror:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._tmp = root / STATE_DIR / "tmp"
        self._transfers = root / STATE_DIR / "transfers"
        shutil.rmtree(self._tmp, ignore_errors=True)  # leftovers of writes a crash interrupted
        self._tmp.mkdir(parents=True)
        self._transfers.mkdir(parents=True, exist_ok=True)
        self._drop_abandoned_transfers()

    def apply(self, event: str, payload: object) -> Outcome:
        if not isinstance(payload, dict):
            raise Refused("the body is not a JSON object")
        if event_of(payload) != event:
            raise Refused(f"a {event_of(payload)} body was sent to /{event}")
        repository, base = self._repository(payload.get("repository"))
        if event == "sync_failed":
            error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
            breaker = payload.get("circuit_breaker") if isinstance(payload.get("circuit_breaker"), dict) else {}
            note = f"Docora cannot read the repository ({error.get('message')}); retrying after "
            return Outcome(event, repository, "", note + str(breaker.get("cooldown_until")))
        file = payload["file"]
        path = file.get("path")
        target = base.joinpath(*checked_path(path))
        if not _inside(base, target):
            raise Refused(f"unsafe path {path!r}: leads outside the mirror through a symbolic link")
        sha = _text(file, "sha")
        if not _SHA256.fullmatch(sha):
            raise Refused("file.sha must be 64 lowercase hex digits")
        if event == "delete":
            return Outcome(event, repository, path, self._delete(base, target))
        return Outcome(event, repository, path, self._write(target, file, sha))

    def _repository(self, repository: object) -> tuple[str, Path]:
        if not isinstance(repository, dict):
            raise Refused("the body has no repository object")
        owner, name = _text(repository, "owner"), _text(repository, "name")
        try:
            segments = (len(checked_path(owner)), len(checked_path(name)))
        except Refused:
            segments = (0, 0)
        # GitHub owners never start with a dot; refusing them keeps STATE_DIR out of reach.
        if segments != (1, 1) or owner.startswith("."):
            raise Refused(f"unsafe repository name {owner!r}/{name!r}")
        return f"{owner}/{name}", self.root / owner / name

    def _write(self, target: Path, file: dict[str, Any], sha: str) -> str:
        size, content, encoding = _int(file, "size"), _text(file, "content"), file.get("content_encoding")
        if encoding not in (None, "base64"):
            raise Refused(f"unknown content_encoding {encoding!r}")
        chunk = file.get("chunk")
        if chunk is not None:
            if encoding != "base64":
                raise Refused("a chunked file must be base64")
            return self._slice(target, chunk, content, sha, size)
        if _holds(target, sha):
            return "unchanged (already holds this content)"
        data = _base64(content) if encoding == "base64" else content.encode("utf-8")
        self._install(target, [data], sha, size)
        return f"written ({size} bytes)"

    def _slice(self, target: Path, chunk: object, content: str, sha: str, size: int) -> str:
        if not isinstance(chunk, dict):
            raise Refused("file.chunk must be an object")
        chunk_id, index, total = _text(chunk, "id"), _int(chunk, "index"), _int(chunk, "total")
        if not _CHUNK_ID.fullmatch(chunk_id) or not 0 <= index < total <= _MAX_SLICES:
            raise Refused(f"invalid chunk {chunk_id!r} {index}/{total}")
        if not content.isascii():
            raise Refused("a slice must be base64 text")
        folder = self._transfers / chunk_id
        # Hashing the mirrored file once per transfer, not once per slice: a duplicate after completion finds
        # no folder and is recognised here, and a transfer in progress has its folder.
        if not folder.exists() and _holds(target, sha):
            return "unchanged (already holds this content)"
        about = {"target": os.fsdecode(target), "sha": sha, "size": size, "total": total}
        if _read_json(folder / "transfer.json") != about:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            self._install(folder / "transfer.json", [json.dumps(about).encode()], None, None)
        self._install(folder / f"{index:07d}.b64", [content.encode("ascii")], None, None)
        if sum(1 for _ in folder.glob("*.b64")) < total:
            return f"slice {index + 1}/{total} kept"
        slices = (folder / f"{n:07d}.b64" for n in range(total))
        try:
            self._install(target, _decoded(p.read_text("ascii") for p in slices), sha, size)
        finally:
            # A complete transfer that does not match is useless: Docora resends it from slice 0.
            shutil.rmtree(folder, ignore_errors=True)
        return f"written ({size} bytes from {total} slices)"

    def _delete(self, base: Path, target: Path) -> str:
        if not target.exists() and not target.is_symlink():
            return "already absent"
        if target.is_dir() and not target.is_symlink():
            raise Refused("the path names a folder in the mirror, not a file")
        # Whatever its content: the delete's sha is the last one Docora recorded as acknowledged, which is older
        # than what the mirror holds when an answer got lost after a write.
        target.unlink()
        parent = target.parent
        while parent != base and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
        return "removed"

    def _install(self, target: Path, pieces: Iterable[bytes], sha: str | None, size: int | None) -> None:
        """Write `pieces` to `target` atomically, only if they add up to `sha` and `size` (when given)."""
        descriptor, temporary = tempfile.mkstemp(dir=self._tmp)
        try:
            digest, written = hashlib.sha256(), 0
            with os.fdopen(descriptor, "wb") as out:
                for piece in pieces:
                    digest.update(piece)
                    written += len(piece)
                    out.write(piece)
                out.flush()
                os.fsync(out.fileno())
            if (sha is not None and digest.hexdigest() != sha) or (size is not None and written != size):
                raise Refused(f"content does not match: got {written} bytes with sha256 {digest.hexdigest()}")
            os.chmod(temporary, 0o644)  # mkstemp's 0600 is right for a temporary file, not for a mirrored one
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def _drop_abandoned_transfers(self) -> None:
        cutoff = time.time() - _ABANDONED_AFTER_SECONDS
        for folder in self._transfers.iterdir():
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


def _inside(base: Path, target: Path) -> bool:
    return target.parent.resolve().is_relative_to(base.resolve())


def _holds(target: Path, sha: str) -> bool:
    if not target.is_file() or target.is_symlink():
        return False
    digest = hashlib.sha256()
    with target.open("rb") as existing:
        while block := existing.read(_READ_BYTES):
            digest.update(block)
    return digest.hexdigest() == sha


def _decoded(texts: Iterable[str]) -> Iterator[bytes]:
    """Base64 decoded slice by slice; a slice may end mid-quantum, so up to 3 characters wait for the next."""
    carry = ""
    for text in texts:
        text = carry + text
        whole = len(text) - len(text) % 4
        carry = text[whole:]
        yield _base64(text[:whole])
    if carry:
        raise Refused("the joined slices are not whole base64")


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused("file.content is not valid base64") from None


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _text(mapping: dict[str, Any], key: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str):
        raise Refused(f"{key} must be a string")
    return value


def _int(mapping: dict[str, Any], key: str) -> int:
    value = mapping.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise Refused(f"{key} must be a non-negative integer")
    return value
