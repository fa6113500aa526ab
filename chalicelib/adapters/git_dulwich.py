"""Git over smart HTTP with dulwich, the cheapest way PERFORMANCE.md found: probe the head, fetch trees, then blobs.

- `head` is one `ls-refs` POST (protocol v2 needs no prior GET), so an unchanged repository costs one request.
- `fetch_tree` is a single-branch, depth-1, `blob:none` fetch into a bare cache folder that warm containers reuse,
  so a rescan moves a few KB whatever the repository's size.
- `fetch_blobs` asks for blobs by id in one request that names no commit we have: with "have" lines the server
  would treat the blobs as already ours and send an empty pack (§2.3).

Everything crossing this module is str, bytes or the dataclasses of domain.snapshots; no dulwich type leaks.
The token travels only as `Authorization: Basic base64("x-access-token:<token>")`, which GitHub accepts for git
over HTTPS, scoped by dulwich to the remote's origin; it is never put in a URL, a git config or any file in the
cache.
"""

from __future__ import annotations

import hashlib
import io
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import urllib3
from dulwich.client import Urllib3HttpGitClient, default_user_agent_string
from dulwich.errors import ChecksumMismatch, GitProtocolError
from dulwich.ignore import IgnoreFilter, read_ignore_patterns
from dulwich.object_store import ObjectStoreGraphWalker
from dulwich.objects import Blob, Commit
from dulwich.protocol import Protocol, pkt_line
from dulwich.repo import Repo

from chalicelib import errors
from chalicelib.adapters.git_cache import CACHE_DAMAGE, CacheFolders, remote_name
from chalicelib.domain.git_refs import check_branch_name
from chalicelib.domain.snapshots import FetchedTree, TreeEntry

DOCORAIGNORE = b".docoraignore"
_NO_REPOSITORY = "repository not found"
_TOKEN_REJECTED = "GitHub rejected the token"
_NO_ANSWER = "git server did not answer"
_UNREADABLE = "git server sent data that could not be read"
_MAX_REDIRECTS = 3
_OBJECT_ID = re.compile(r"[0-9a-f]{40}")
# Anything else could split the header, and http.client would echo the token in its error message.
_HEADER_SAFE_TOKEN = re.compile(r"[\x21-\x7e]+")
_UPLOAD_PACK = "git-upload-pack"
_ADVERTISE = f"/info/refs?service={_UPLOAD_PACK}"
_ADVERTISEMENT = f"application/x-{_UPLOAD_PACK}-advertisement"


class DulwichGit:
    def __init__(self, *, timeout: float = 30.0, min_free_bytes: int = 128 * 2**20) -> None:
        """`timeout` bounds connecting and each wait for data; `min_free_bytes` is when old caches get evicted."""
        # No retries: a failed scan is retried by the queue, and urllib3 would otherwise retry a hung GET three
        # times over. Redirects are followed (GitHub redirects renamed repositories); urllib3 drops the
        # Authorization header when one leaves the host.
        retries = urllib3.Retry(total=_MAX_REDIRECTS, connect=0, read=0, status=0, other=0, redirect=_MAX_REDIRECTS)
        pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=retries,
            headers={"User-Agent": default_user_agent_string()},  # GitHub wants git clients to say "git/"
        )
        self._pool = _RefusalRaisingPool(pool)
        self._caches = CacheFolders(min_free_bytes)

    def close(self) -> None:
        self._caches.close()

    def head(self, url: str, branch: str, token: str | None) -> str | None:
        """The branch's commit id, or None when the branch (or any commit at all) is missing."""
        ref = _branch_ref(branch)
        body = pkt_line(b"command=ls-refs\n") + b"0001" + pkt_line(b"ref-prefix " + ref + b"\n") + pkt_line(None)
        headers = {
            "Content-Type": f"application/x-{_UPLOAD_PACK}-request",
            "Accept": f"application/x-{_UPLOAD_PACK}-result",
            "Git-Protocol": "version=2",
            **_authorization(token),
        }
        with _translated(token):
            response = self._pool.request(
                "POST", f"{remote_name(url).rstrip('/')}/{_UPLOAD_PACK}", body=body, headers=headers
            )
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            if response.status != 200 or content_type != headers["Accept"]:
                raise GitProtocolError(f"ls-refs answered {response.status}")
            for line in Protocol(io.BytesIO(response.data).read, None).read_pkt_seq():
                commit_id, _, rest = line.rstrip(b"\n").partition(b" ")
                if not _OBJECT_ID.fullmatch(commit_id.decode("ascii", "replace")):
                    raise GitProtocolError("ls-refs answered something other than refs")
                if rest.split(b" ")[0] == ref:
                    return commit_id.decode("ascii")
        return None

    def fetch_tree(self, url: str, branch: str, token: str | None, cache_dir: str) -> FetchedTree:
        """Bring the branch's tip into the cache (trees only) and list its regular files."""
        try:
            return self._fetch_tree(url, branch, token, cache_dir)
        except CACHE_DAMAGE:
            # A damaged or half-written cache: one fresh start from nothing.
            self._caches.discard(cache_dir)
        try:
            return self._fetch_tree(url, branch, token, cache_dir)
        except CACHE_DAMAGE as error:
            self._caches.discard(cache_dir)
            raise errors.Unavailable(_UNREADABLE) from error

    def fetch_blobs(self, url: str, token: str | None, cache_dir: str, blob_ids: Iterable[str]) -> None:
        """Bring these blobs into the cache in one request; those already there are not asked for."""
        wanted = {_object_id(blob_id) for blob_id in blob_ids}
        try:
            repo = self._caches.claim(cache_dir, url)
            missing = _not_in_packs(repo, wanted)
            if missing:
                self._fetch_by_id(repo, url, token, missing)
                if _not_in_packs(repo, missing):
                    raise errors.Unavailable(_UNREADABLE)
        except CACHE_DAMAGE as error:
            self._caches.discard(cache_dir)
            raise errors.Unavailable(_UNREADABLE) from error

    def open_blob(self, cache_dir: str, blob_id: str) -> BinaryIO:
        """A fetched blob's content. dulwich reads a blob whole, so this holds one blob, never more."""
        object_id = _object_id(blob_id)
        try:
            # The raw content, not a Blob: building the object and serialising it back cost a third of the read.
            type_num, content = self._caches.existing(cache_dir).object_store.get_raw(object_id)
            if type_num == Blob.type_num and _git_blob_id(content) != object_id:
                raise ChecksumMismatch(object_id, _git_blob_id(content))
        except KeyError as error:
            raise errors.NotFound(f"blob {blob_id} was not fetched") from error
        except CACHE_DAMAGE as error:
            self._caches.discard(cache_dir)
            raise errors.Unavailable(_UNREADABLE) from error
        if type_num != Blob.type_num:
            raise errors.NotFound(f"{blob_id} is not a blob")
        return io.BytesIO(content)

    def ignore_filter(self, patterns: bytes) -> Callable[[str | bytes], bool]:
        """A matcher for repository paths with gitignore semantics (an ignored folder hides all it holds)."""
        rules = IgnoreFilter(read_ignore_patterns(io.BytesIO(patterns)))

        def is_ignored(path: str | bytes) -> bool:
            if isinstance(path, bytes):
                # dulwich re-encodes with os.fsencode, so paths that are not UTF-8 survive the round trip.
                path = path.decode("utf-8", "surrogateescape")
            return rules.is_ignored(path) is True

        return is_ignored

    def _fetch_tree(self, url: str, branch: str, token: str | None, cache_dir: str) -> FetchedTree:
        ref = _branch_ref(branch)
        repo = self._caches.claim(cache_dir, url)
        client, path = self._client(url, token)

        def wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
            # An unchanged tip is already here: listing the refs is all the fetch needs to do.
            tip = refs.get(ref)
            return [tip] if tip is not None and tip not in repo.object_store else []

        with _translated(token):
            result = client.fetch(
                path,
                repo,
                determine_wants=wants,
                depth=1,
                ref_prefix=[ref],
                filter_spec=b"blob:none",
            )
        commit_id = result.refs.get(ref)
        if commit_id is None:
            raise errors.NotFound(f"branch {branch} not found")
        commit = repo[commit_id]
        if not isinstance(commit, Commit):
            raise errors.NotFound(f"branch {branch} not found")
        repo.refs[ref] = commit_id
        entries = list(_regular_files(repo, commit.tree))
        ignore_id = next((entry.blob_id for entry in entries if entry.path == DOCORAIGNORE), None)
        docoraignore = None
        if ignore_id is not None:
            object_id = ignore_id.encode("ascii")
            if object_id not in repo.object_store:
                self._fetch_by_id(repo, url, token, [object_id])
            docoraignore = repo[object_id].as_raw_string()
        return FetchedTree(commit=commit_id.decode("ascii"), entries=entries, docoraignore=docoraignore)

    def _fetch_by_id(self, repo: Repo, url: str, token: str | None, wants: list[bytes]) -> None:
        client, path = self._client(url, token)
        with _translated(token):
            client.fetch(
                path,
                _WithoutHaves(repo),
                determine_wants=lambda refs, depth=None: wants,
                ref_prefix=[b"HEAD"],  # ls-refs is part of every fetch; ask for as little as possible
            )

    def _client(self, url: str, token: str | None) -> tuple[Urllib3HttpGitClient, str]:
        parts = urlsplit(remote_name(url))
        _check_token(token)
        client = Urllib3HttpGitClient(
            f"{parts.scheme}://{parts.netloc}/",
            pool_manager=self._pool,  # type: ignore[arg-type]  # it has the two members dulwich uses
            username="x-access-token" if token is not None else None,
            password=token,
            quiet=True,
        )
        return client, parts.path


class _WithoutHaves:
    """The cache repository as `client.fetch` sees it, minus its history, so the request carries no "have" lines."""

    def __init__(self, repo: Repo) -> None:
        self._repo = repo

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repo, name)

    def get_graph_walker(self, heads: list[bytes] | None = None) -> ObjectStoreGraphWalker:
        return ObjectStoreGraphWalker([], lambda _commit: [])


class _Refused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"git server answered {status}")
        self.status = status


class _RefusalRaisingPool:
    """urllib3's pool manager, raising for 401, 403 and 404 before dulwich sees them.

    dulwich turns a 403 into a GitProtocolError that differs from a 500 only by its message, and a 404 into
    NotGitRepository, which it also raises for a damaged cache folder; the status is the only sound way to tell.
    """

    def __init__(self, pool: urllib3.PoolManager) -> None:
        self._pool = pool
        self.headers = pool.headers

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        response = self._pool.request(method, url, **kwargs)
        if response.status in (401, 403, 404):
            response.close()
            raise _Refused(response.status)
        content_type = response.headers.get("Content-Type", "")
        if url.endswith(_ADVERTISE) and response.status == 200 and not content_type.startswith(_ADVERTISEMENT):
            # dulwich would fall back to the dumb HTTP protocol, and read a cut or foreign answer (a proxy's
            # page, a connection reset mid-headers) as a repository without branches: "branch not found".
            response.close()
            raise GitProtocolError("the server did not answer as a git smart HTTP server")
        return response


@contextmanager
def _translated(token: str | None) -> Iterator[None]:
    """Library failures to service errors whose messages never hold a token or a URL."""
    try:
        yield
    except _Refused as refusal:
        # Without a token, GitHub answers 401 for a private or missing repository alike.
        if refusal.status == 404 or token is None:
            raise errors.NotFound(_NO_REPOSITORY) from None
        raise errors.Unprocessable(_TOKEN_REJECTED) from None
    except (GitProtocolError, urllib3.exceptions.HTTPError, OSError) as error:
        raise errors.Unavailable(_NO_ANSWER) from error


def _not_in_packs(repo: Repo, object_ids: Iterable[bytes]) -> list[bytes]:
    """The ids no pack of the cache holds, sorted.

    Every fetch lands as a pack, so the pack indexes tell it all. Asking the object store instead costs, for each
    missing object, a rescan of the pack folder and a stat for a loose copy: a third of an initial scan's fetch.
    """
    packs = repo.object_store.packs
    return sorted(object_id for object_id in object_ids if not any(object_id in pack for pack in packs))


def _regular_files(repo: Repo, tree_id: bytes) -> Iterator[TreeEntry]:
    for entry in repo.object_store.iter_tree_contents(tree_id):
        if entry.mode is not None and stat.S_ISREG(entry.mode) and entry.path is not None and entry.sha is not None:
            yield TreeEntry(path=entry.path, mode=entry.mode, blob_id=entry.sha.decode("ascii"))


def _authorization(token: str | None) -> dict[str, str]:
    if token is None:
        return {}
    _check_token(token)
    return urllib3.util.make_headers(basic_auth=f"x-access-token:{token}")


def _check_token(token: str | None) -> None:
    if token is not None and not _HEADER_SAFE_TOKEN.fullmatch(token):
        raise errors.Unprocessable(_TOKEN_REJECTED)


def _branch_ref(branch: str) -> bytes:
    return b"refs/heads/" + check_branch_name(branch).encode("utf-8")


def _git_blob_id(content: bytes) -> bytes:
    digest = hashlib.sha1(b"blob %d\0" % len(content), usedforsecurity=False)
    digest.update(content)
    return digest.hexdigest().encode("ascii")


def _object_id(blob_id: str) -> bytes:
    if not _OBJECT_ID.fullmatch(blob_id):
        raise errors.InvalidInput.field("blob_id", "must be 40 lowercase hex digits")
    return blob_id.encode("ascii")
