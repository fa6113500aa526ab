"""Cache folders for blob-less clones in ephemeral storage: one per remote, dropped when damaged or space runs low.

A warm Lambda container keeps its clones so the next scan of a repository is an incremental fetch of a few KB
(PERFORMANCE.md §2.2). Each cache folder is a bare repository plus a marker file naming the remote it mirrors; the
marker is how a folder is recognised as ours (only marked folders are ever evicted) and how a folder left by
another remote is refused. The marker holds the URL without userinfo and never a credential.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    FileFormatException,
    MissingCommitError,
    NotGitRepository,
    ObjectMissing,
    WrongObjectException,
)
from dulwich.repo import Repo

MARKER = "docora-remote"
# Every fetch adds a pack and dulwich keeps each one mapped; past this many, a fresh clone (trees only, well under
# a second at 100k files) is cheaper than dulwich's repack, which holds every object in memory.
MAX_PACKS = 64

# dulwich reports a damaged object store through whichever check trips first: its own errors, but also assertions,
# struct and zlib errors from the pack readers, and KeyError for an object that should be there and is not.
CACHE_DAMAGE: tuple[type[BaseException], ...] = (
    ApplyDeltaError,
    AssertionError,
    ChecksumMismatch,
    FileFormatException,
    KeyError,
    MissingCommitError,
    NotGitRepository,
    ObjectMissing,
    ValueError,
    WrongObjectException,
    struct.error,
    zlib.error,
)


def remote_name(url: str) -> str:
    """The URL as it may be written down or shown: without userinfo, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class CacheFolders:
    """The cache folder of each remote under one root, keeping the last one open for the blob reads after a fetch.

    A remote's folder is named by a digest of its URL (without userinfo), so callers name remotes, never paths.
    Not thread-safe: a Lambda container handles one scan at a time.
    """

    def __init__(self, root: str | os.PathLike[str], min_free_bytes: int) -> None:
        self._root = Path(root)
        self._min_free_bytes = min_free_bytes
        self._open: tuple[Path, Repo] | None = None

    def folder(self, url: str) -> Path:
        return self._root / hashlib.sha256(remote_name(url).encode("utf-8")).hexdigest()[:32]

    def claim(self, url: str) -> Repo:
        """The clone of `url`, reused when it is sound and ours, otherwise started afresh."""
        folder, remote = self.folder(url), remote_name(url)
        if self._open is not None and self._open[0] == folder and _marker(folder) == remote:
            _touch(folder)
            return self._open[1]
        self.close()
        self._make_room(folder)
        repo = self._reuse(folder, remote) or self._create(folder, remote)
        self._open = (folder, repo)
        return repo

    def discard(self, url: str) -> None:
        self._discard(self.folder(url))

    def close(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def _make_room(self, keep: Path) -> None:
        """Evict the least recently used other caches while free space is below the threshold."""
        self._root.mkdir(parents=True, exist_ok=True)
        if shutil.disk_usage(self._root).free >= self._min_free_bytes:
            return
        for folder in sorted(_sibling_caches(self._root, keep), key=_last_used):
            self._discard(folder)
            if shutil.disk_usage(self._root).free >= self._min_free_bytes:
                return

    def _discard(self, folder: Path) -> None:
        if self._open is not None and self._open[0] == folder:
            self.close()
        shutil.rmtree(folder, ignore_errors=True)
        if folder.is_symlink() or folder.is_file():
            folder.unlink()

    def _reuse(self, folder: Path, remote: str) -> Repo | None:
        if _marker(folder) != remote or _pack_count(folder) > MAX_PACKS:
            self._discard(folder)
            return None
        try:
            repo = Repo(str(folder))
            repo.get_config()  # a damaged config would otherwise only show in the middle of a fetch
        except CACHE_DAMAGE:
            self._discard(folder)
            return None
        _touch(folder)
        return repo

    def _create(self, folder: Path, remote: str) -> Repo:
        self._discard(folder)
        repo = Repo.init_bare(str(folder), mkdir=True)
        (folder / MARKER).write_text(remote + "\n", encoding="utf-8")
        return repo


def _marker(folder: Path) -> str | None:
    try:
        return (folder / MARKER).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _touch(folder: Path) -> None:
    os.utime(folder / MARKER)


def _last_used(folder: Path) -> float:
    try:
        return (folder / MARKER).stat().st_mtime
    except OSError:
        return 0.0


def _pack_count(folder: Path) -> int:
    return sum(1 for _ in (folder / "objects" / "pack").glob("*.pack"))


def _sibling_caches(root: Path, keep: Path) -> list[Path]:
    return [
        folder
        for folder in root.iterdir()
        if folder != keep and folder.is_dir() and not folder.is_symlink() and (folder / MARKER).is_file()
    ]
