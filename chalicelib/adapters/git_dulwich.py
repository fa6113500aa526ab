"""Git over smart HTTP (protocol v2) with dulwich's object store, the cheapest way PERFORMANCE.md found.

- `head` is one `ls-refs` POST (protocol v2 needs no prior GET; git_http sends it), so an unchanged repository
  costs one request.
- `fetch_tree` is `ls-refs` then one single-branch, depth-1, `blob:none` `fetch` into a bare cache folder that
  warm containers reuse, naming what the cache holds, so a rescan moves a few KB whatever the repository's size.
- `read_blobs` asks for blobs by id in one `fetch` that names no commit we have (with "have" lines the server would
  treat the blobs as already ours and send an empty pack, §2.3), and reads them straight out of the pack it
  receives. Adding that pack to the cache would make dulwich index and verify it and then look up each blob
  through the index, which cost two thirds of an initial scan; the cache keeps trees only.

The two commands are written here rather than left to dulwich's client, which asks for the server's capabilities
and lists refs before every fetch: two round trips that fetches of objects whose ids we know never use. dulwich
still stores, reads and compares what arrives. Everything crossing this module is str, bytes or the dataclasses of
domain.snapshots; no dulwich type leaks. The token travels only in a header (git_http), never in a URL, a git
config or any file in the cache.
"""

from __future__ import annotations

import io
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from dulwich.diff_tree import tree_changes
from dulwich.errors import GitProtocolError, NotTreeError
from dulwich.ignore import IgnoreFilter, read_ignore_patterns
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, Commit, Tree, sha_to_hex
from dulwich.objects import TreeEntry as DulwichTreeEntry
from dulwich.pack import (
    DELTA_TYPES,
    OFS_DELTA,
    REF_DELTA,
    PackData,
    UnpackedObject,
    UnpackedObjectIterator,
    UnresolvedDeltas,
)
from dulwich.protocol import Protocol, pkt_line
from dulwich.repo import Repo

from chalicelib import errors
from chalicelib.adapters import git_http
from chalicelib.adapters.git_cache import CACHE_DAMAGE, CacheFolders
from chalicelib.domain.snapshots import FetchedTree, TreeEntry

DOCORAIGNORE = b".docoraignore"
_UNREADABLE = "git server sent data that could not be read"
# A pack that is cut, garbled or foreign trips one of the cache's damage checks, or leaves deltas without a base.
_PACK_DAMAGE = (*CACHE_DAMAGE, UnresolvedDeltas)


class DulwichGit:
    def __init__(self, cache_root: str, *, timeout: float = 30.0, min_free_bytes: int = 128 * 2**20) -> None:
        """`cache_root` is the folder that holds one cache folder per remote (ephemeral storage in Lambda);
        `timeout` bounds connecting and each wait for data; `min_free_bytes` is when old caches get evicted.
        """
        self._pool = git_http.new_pool(timeout=timeout)
        self._caches = CacheFolders(cache_root, min_free_bytes)

    def close(self) -> None:
        self._caches.close()

    def cache_folder(self, url: str) -> Path:
        """Where the cache of `url` lives in ephemeral storage (tests look inside it)."""
        return self._caches.folder(url)

    def head(self, url: str, branch: str, token: str | None) -> str | None:
        """The branch's commit id, or None when the branch (or any commit at all) is missing."""
        return git_http.ls_refs_head(self._pool, url, branch, token)

    def fetch_tree(
        self, url: str, branch: str, token: str | None, since: str | None = None, *, commit: str | None = None
    ) -> FetchedTree:
        """Bring the branch's tip (or `commit`, when the caller has just read the head) into the cache, trees only,
        and list its regular files.

        With `since`, and that commit still in the cache (a warm container), only the files that changed since: git
        compares the two trees folder by folder and skips every folder whose id did not change, so a few changed
        files in a large repository cost a few tree reads instead of a walk of every file.
        """
        try:
            return self._fetch_tree(url, branch, token, since, commit)
        except CACHE_DAMAGE:
            # A damaged or half-written cache: one fresh start from nothing.
            self._caches.discard(url)
        try:
            return self._fetch_tree(url, branch, token, since, commit)
        except CACHE_DAMAGE as error:
            self._caches.discard(url)
            raise errors.Unavailable(_UNREADABLE) from error

    def read_blobs(self, url: str, token: str | None, blob_ids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Fetch these blobs in one request and hand on each (blob id, content) as the pack is read.

        The pack lands in an unnamed temporary file in the cache folder (gone with the file handle, even after a
        crash) and is read twice at most: whole blobs on the first pass, then those the server sent as deltas.
        Only one content is held at a time, plus the bases of the delta chain being resolved. Every content is
        checked against its id: a blob not asked for, or one asked for and not sent, is an error.
        """
        wanted = {_object_id(blob_id) for blob_id in blob_ids}
        if not wanted:
            return
        try:
            self._caches.claim(url)  # the folder the pack is written in, kept as recently used
        except CACHE_DAMAGE as error:
            self._caches.discard(url)
            raise errors.Unavailable(_UNREADABLE) from error
        with tempfile.TemporaryFile(dir=self._caches.folder(url)) as pack_file:
            with git_http.translated(token):
                self._fetch(url, token, sorted(wanted), pack_file, [])
            pack_file.flush()
            try:
                for object_id, content in _blobs_in_pack(pack_file):
                    if object_id not in wanted:
                        raise errors.Unavailable(_UNREADABLE)
                    wanted.discard(object_id)
                    yield object_id.decode("ascii"), content
            except _PACK_DAMAGE as error:
                raise errors.Unavailable(_UNREADABLE) from error
        if wanted:
            raise errors.Unavailable(_UNREADABLE)

    def ignore_filter(self, patterns: bytes) -> Callable[[str | bytes], bool]:
        """A matcher for repository paths with gitignore semantics (an ignored folder hides all it holds)."""
        rules = IgnoreFilter(read_ignore_patterns(io.BytesIO(patterns)))

        def is_ignored(path: str | bytes) -> bool:
            if isinstance(path, bytes):
                # dulwich re-encodes with os.fsencode, so paths that are not UTF-8 survive the round trip.
                path = path.decode("utf-8", "surrogateescape")
            return rules.is_ignored(path) is True

        return is_ignored

    def _fetch_tree(
        self, url: str, branch: str, token: str | None, since: str | None, commit: str | None
    ) -> FetchedTree:
        repo = self._caches.claim(url)
        tip = commit if commit is not None else self.head(url, branch, token)
        if tip is None:
            raise errors.NotFound(f"branch {branch} not found")
        commit_id = tip.encode("ascii")
        if commit_id not in repo.object_store:  # an unchanged tip is already here
            # Depth 1 and trees only; what the cache holds is named, so only new trees come (PERFORMANCE.md §2.2).
            history = [b"deepen 1", b"filter blob:none"]
            history += [b"shallow " + shallow for shallow in sorted(repo.get_shallow())]
            history += [b"have " + have for have in sorted(set(repo.refs.as_dict().values())) if have in repo]
            self._fetch_into(repo, url, token, [commit_id], history)
        commit = repo[commit_id]
        if not isinstance(commit, Commit):
            raise errors.NotFound(f"branch {branch} not found")
        repo.refs[git_http.branch_ref(branch)] = commit_id
        docoraignore = None
        mode, ignore_id = _root_entry(repo, commit.tree, DOCORAIGNORE)
        if ignore_id is not None and stat.S_ISREG(mode):
            if ignore_id not in repo.object_store:
                self._fetch_into(repo, url, token, [ignore_id])
            docoraignore = repo[ignore_id].as_raw_string()
        changes = _changed_files(repo, _object_id(since), commit.tree) if since is not None else None
        if changes is not None:
            entries, removed = changes
            return FetchedTree(commit_id.decode("ascii"), entries, docoraignore, since=since, removed=removed)
        return FetchedTree(commit_id.decode("ascii"), list(_regular_files(repo, commit.tree)), docoraignore)

    def _fetch_into(
        self, repo: Repo, url: str, token: str | None, object_ids: list[bytes], history: list[bytes] | None = None
    ) -> None:
        """Fetch into the cache: the pack completed, indexed and added, and the server's shallow commits recorded.

        A thin pack, as dulwich's client asks for too: its deltas may build on objects the cache holds, which is
        what keeps a rescan to the few KB that changed (without it, git sent every tree again).
        """
        with tempfile.TemporaryFile(dir=repo.path) as pack_file:
            with git_http.translated(token):
                shallow, unshallow = self._fetch(url, token, object_ids, pack_file, [b"thin-pack", *(history or [])])
            if pack_file.tell():
                pack_file.seek(0)
                repo.object_store.add_thin_pack(pack_file.read, None)
        repo.update_shallow(shallow, unshallow)

    def _fetch(
        self, url: str, token: str | None, object_ids: list[bytes], pack_file: IO[bytes], history: list[bytes]
    ) -> tuple[set[bytes], set[bytes]]:
        """One protocol-v2 `fetch` of these objects, the pack written to `pack_file`; the server's shallow updates.

        By hand, like `head`: dulwich's client first asks for the server's capabilities and lists refs, two round
        trips that a fetch of objects we already know the ids of never uses. `history` holds the arguments that
        shape what is sent (deepen, filter, shallow, have); a fetch of blobs by id names none.
        """
        arguments = [b"ofs-delta", b"no-progress", *history, *(b"want " + object_id for object_id in object_ids)]
        body = b"".join(
            [
                pkt_line(b"command=fetch\n"),
                b"0001",
                *(pkt_line(argument + b"\n") for argument in arguments),
                pkt_line(b"done\n"),
                pkt_line(None),
            ]
        )
        shallow: set[bytes] = set()
        unshallow: set[bytes] = set()
        response = git_http.upload_pack(self._pool, url, token, body, preload_content=False)
        try:
            answer = Protocol(response.read, None)
            # With "done", the pack follows the shallow-info section, if any, without acknowledgments.
            while (line := answer.read_pkt_line()) != b"packfile\n":
                word, _, object_id = (line or b"").rstrip(b"\n").partition(b" ")
                if word == b"ERR":
                    raise GitProtocolError("the git server refused the fetch")
                if word in (b"shallow", b"unshallow") and git_http.OBJECT_ID.fullmatch(
                    object_id.decode("ascii", "replace")
                ):
                    (shallow if word == b"shallow" else unshallow).add(object_id)
            for packet in answer.read_pkt_seq():
                if packet[:1] == b"\x01":
                    pack_file.write(packet[1:])
                elif packet[:1] == b"\x03":
                    raise GitProtocolError("the git server failed the fetch")
        except BaseException:
            git_http.discard(response)  # a connection left in the middle of an answer cannot serve another
            raise
        response.drain_conn()  # the end of the answer, so the connection can go back to the pool
        return shallow, unshallow


def _blobs_in_pack(pack_file: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """(hex id, content) of every blob in a pack: whole ones as the first pass meets them, deltas after."""
    data = PackData.from_file(pack_file, DEFAULT_OBJECT_FORMAT)
    try:
        deltas = UnpackedObjectIterator(None, data.object_format.hash_func)
        deltas.set_pack_data(data)
        wholes: list[tuple[int, int, bytes]] = []
        offset_bases: set[int] = set()
        id_bases: set[bytes] = set()
        for unpacked in data.iter_unpacked():
            if unpacked.pack_type_num == OFS_DELTA:
                offset_bases.add(unpacked.offset - unpacked.delta_base)  # type: ignore[operator]
                deltas.record(unpacked)
            elif unpacked.pack_type_num == REF_DELTA:
                id_bases.add(unpacked.delta_base)  # type: ignore[arg-type]
                deltas.record(unpacked)
            else:
                object_id = unpacked.sha()
                wholes.append((unpacked.offset, unpacked.pack_type_num, object_id))  # type: ignore[arg-type]
                if unpacked.pack_type_num == Blob.type_num:
                    yield sha_to_hex(object_id), b"".join(unpacked.decomp_chunks)
        if not offset_bases and not id_bases:
            return
        # The delta walk starts from the whole objects deltas build on; they were handed on already.
        for offset, type_num, object_id in wholes:
            if offset in offset_bases or object_id in id_bases:
                deltas.record(UnpackedObject(type_num, offset=offset))
        for unpacked in deltas:
            if unpacked.pack_type_num in DELTA_TYPES and unpacked.obj_type_num == Blob.type_num:
                yield sha_to_hex(unpacked.sha()), b"".join(unpacked.obj_chunks or [])
    finally:
        data.close()


def _root_entry(repo: Repo, tree_id: bytes, name: bytes) -> tuple[int, bytes | None]:
    tree = repo[tree_id]
    if not isinstance(tree, Tree) or name not in tree:
        return 0, None
    mode, object_id = tree[name]
    return mode, object_id


def _changed_files(repo: Repo, since: bytes, tree_id: bytes) -> tuple[list[TreeEntry], list[bytes]] | None:
    """Regular files added or changed since that commit, and paths that stopped being regular files.

    None when the cache does not hold the commit (a cold container, a fresh clone) or when .docoraignore changed:
    it decides which files count, so the whole tree has to be listed again.
    """
    try:
        old = repo[since]
    except KeyError:
        return None
    if not isinstance(old, Commit):
        return None
    entries: list[TreeEntry] = []
    removed: list[bytes] = []
    for change in tree_changes(repo.object_store, old.tree, tree_id):
        before, after = change.old, change.new
        if DOCORAIGNORE in (before and before.path, after and after.path):
            return None
        if after is not None and (entry := _regular_file(after)) is not None:
            entries.append(entry)
        elif before is not None and (entry := _regular_file(before)) is not None:
            removed.append(entry.path)
    return entries, removed


def _regular_file(entry: DulwichTreeEntry) -> TreeEntry | None:
    if entry.mode is None or not stat.S_ISREG(entry.mode) or entry.path is None or entry.sha is None:
        return None
    return TreeEntry(path=entry.path, mode=entry.mode, blob_id=entry.sha.decode("ascii"))


def _regular_files(repo: Repo, tree_id: bytes) -> Iterator[TreeEntry]:
    """Every regular file under the tree, in git's order (depth first, entries sorted as git sorts them).

    Our own walk rather than dulwich's iter_tree_contents, which joins each path with posixpath and builds an entry
    object for every file: a fifth of an initial scan's time outside the network at 20k files.
    """
    folders = [(b"", _tree_items(repo, tree_id))]
    while folders:
        prefix, items = folders[-1]
        for name, mode, object_id in items:
            if stat.S_ISDIR(mode):
                folders.append((prefix + name + b"/", _tree_items(repo, object_id)))
                break
            if stat.S_ISREG(mode):
                yield TreeEntry(path=prefix + name, mode=mode, blob_id=object_id.decode("ascii"))
        else:
            folders.pop()


def _tree_items(repo: Repo, tree_id: bytes) -> Iterator[tuple[bytes, int, bytes]]:
    tree = repo.object_store[tree_id]
    if not isinstance(tree, Tree):
        raise NotTreeError(tree_id)  # a damaged cache: fetch_tree starts afresh
    return iter(tree.iteritems())


def _object_id(blob_id: str) -> bytes:
    if not git_http.OBJECT_ID.fullmatch(blob_id):
        raise errors.InvalidInput.field("blob_id", "must be 40 lowercase hex digits")
    return blob_id.encode("ascii")
