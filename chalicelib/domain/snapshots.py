"""What a repository holds at one commit: the files Docora delivers, and why others are left out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from chalicelib.domain.bundles import BundleSlot


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One regular file of a git tree, as git stores it."""

    path: bytes  # usually UTF-8, but git does not require it
    mode: int  # 0o100644 or 0o100755 (or a historic regular-file mode such as 0o100664)
    blob_id: str


@dataclass(frozen=True, slots=True)
class FetchedTree:
    """A commit's regular files (no symlinks, no submodules): all of them, or only what changed since `since`.

    With `since` set, `entries` are the files added or changed since that commit and `removed` the paths that were
    regular files then and are not now (deleted, or turned into a symlink or submodule).
    """

    commit: str
    entries: list[TreeEntry]
    docoraignore: bytes | None  # the root .docoraignore, when the tree has one
    since: str | None = None
    removed: list[bytes] = field(default_factory=list)

    def touched_paths(self) -> list[str] | None:
        """The paths a changes-only listing covers, as the snapshot writes them; None for a whole tree."""
        if self.since is None:
            return None
        return sorted({_display_path(path) for path in [*(entry.path for entry in self.entries), *self.removed]})


@dataclass(frozen=True, slots=True)
class BlobFacts:
    """What Docora needs to know of a blob's content, computed once per git blob id."""

    sha256: bytes
    size: int
    is_binary: bool
    slot: BundleSlot | None = None  # where its content is stored, when in a bundle


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    path: str
    blob_id: str
    sha256: bytes
    size: int
    is_binary: bool
    slot: BundleSlot | None = None


@dataclass(frozen=True, slots=True)
class SkippedFile:
    path: str
    reason: str
    size: int | None = None


@dataclass(frozen=True)
class Selection:
    """The tree's files that are candidates for delivery, by path, and those refused before reading them."""

    files: dict[str, str]  # path -> blob id
    skipped: list[SkippedFile]


def select_files(entries: Iterable[TreeEntry], is_ignored: Callable[[bytes], bool] | None) -> Selection:
    """Drop what .docoraignore excludes; refuse paths that are not UTF-8 (receivers get paths as JSON text)."""
    files: dict[str, str] = {}
    skipped: list[SkippedFile] = []
    for entry in entries:
        if is_ignored is not None and is_ignored(entry.path):
            continue
        try:
            path = entry.path.decode("utf-8")
        except UnicodeDecodeError:
            skipped.append(SkippedFile(_display_path(entry.path), "path is not valid UTF-8"))
            continue
        files[path] = entry.blob_id
    return Selection(files=files, skipped=skipped)


def _display_path(path: bytes) -> str:
    """The path as text: itself when it is UTF-8, with its other bytes escaped (\\xe9) when not."""
    return path.decode("utf-8", "backslashreplace")


def unknown_blobs(selection: Selection, known: Mapping[str, BlobFacts]) -> set[str]:
    """The blob ids whose content must be read: those no earlier snapshot has facts for."""
    return {blob_id for blob_id in selection.files.values() if blob_id not in known}


def first_paths(selection: Selection) -> dict[str, str]:
    """Each blob's first path in byte order: the one a content is filed under when several files hold it."""
    paths: dict[str, str] = {}
    for path in sorted(selection.files, key=lambda p: p.encode("utf-8")):
        paths.setdefault(selection.files[path], path)
    return paths


def build_snapshot(
    selection: Selection, facts: Mapping[str, BlobFacts], *, max_file_bytes: int
) -> tuple[list[SnapshotFile], list[SkippedFile]]:
    """The files to deliver, in path order, and every file left out with its reason."""
    files: list[SnapshotFile] = []
    skipped = list(selection.skipped)
    for path in sorted(selection.files, key=lambda p: p.encode("utf-8")):
        blob_id = selection.files[path]
        blob = facts[blob_id]
        if blob.size > max_file_bytes:
            skipped.append(SkippedFile(path, f"larger than MAX_FILE_BYTES ({max_file_bytes})", blob.size))
            continue
        files.append(SnapshotFile(path, blob_id, blob.sha256, blob.size, blob.is_binary, blob.slot))
    return files, skipped


@dataclass(frozen=True)
class SnapshotDelta:
    """How to turn the stored snapshot into the new one: paths to drop, then rows to write, and what is left out.

    `scope` None: the delta covers the whole tree, and `skipped` replaces every skipped file recorded. Otherwise it
    covers only the paths in `scope`, and the skipped files recorded for other paths stay.
    """

    removed: list[str]  # gone, or about to be rewritten with new content
    written: list[SnapshotFile]
    skipped: list[SkippedFile] = field(default_factory=list)
    scope: list[str] | None = None


def blob_facts(files: Iterable[SnapshotFile]) -> dict[str, BlobFacts]:
    return {file.blob_id: BlobFacts(file.sha256, file.size, file.is_binary, file.slot) for file in files}


def snapshot_delta(
    previous: Mapping[str, SnapshotFile],
    current: Iterable[SnapshotFile],
    skipped: Iterable[SkippedFile] = (),
    *,
    scope: list[str] | None = None,
) -> SnapshotDelta:
    """`previous` and `current` hold the same paths' files: the whole tree's, or only those in `scope`."""
    current_by_path = {file.path: file for file in current}
    removed = [path for path, file in previous.items() if current_by_path.get(path) != file]
    written = [file for path, file in current_by_path.items() if previous.get(path) != file]
    return SnapshotDelta(removed=sorted(removed), written=written, skipped=list(skipped), scope=scope)
