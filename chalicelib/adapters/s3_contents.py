"""File contents in S3: small ones packed into bundles, bigger ones as objects of their own, each named by SHA-256.

Keys: `sha256/<content's SHA-256>` for a content stored on its own, `bundles/<bundle's SHA-256>` for a bundle. The
bucket's lifecycle rule expires both; a delivery that finds one gone asks for a scan that stores it again.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import errors
from chalicelib.domain import bundles
from chalicelib.domain.bundles import BundleSlot, NewContent, Read, StoredContent, StoredObjects

_CONTENT_PREFIX = "sha256/"
_BUNDLE_PREFIX = "bundles/"
KEY_PREFIXES = (_CONTENT_PREFIX, _BUNDLE_PREFIX)  # every key this adapter reads or writes: what IAM must grant
# Contents up to this size are bundled; bigger ones are objects of their own, which a delivery streams.
_BUNDLED_MAX_BYTES = 1024 * 1024
_BUNDLE_BYTES = 8 * 1024 * 1024
# Contents waiting for their bundle stay in memory up to this much, then go to an unnamed file in EPHEMERAL_DIR.
_SPOOL_MEMORY_BYTES = 32 * 1024 * 1024
# Up to this size a content already stored is cheaper to send again (and be refused) than to ask about first.
# Bigger ones are asked about with a HEAD: a repository's large files are often another's too (forks, vendored code).
_CONDITIONAL_PUT_MAX_BYTES = 256 * 1024
# A delivery reads through gaps of up to _READ_GAP_BYTES between the contents it needs (on S3, cheaper than another
# round trip), and holds at most _READ_AHEAD_BYTES read ahead (plus one read, of at most _READ_SPAN_BYTES).
_READ_GAP_BYTES = 256 * 1024
_READ_SPAN_BYTES = 4 * 1024 * 1024
_READ_AHEAD_BYTES = 16 * 1024 * 1024


class S3Contents:
    def __init__(self, client: Any, bucket: str, *, spool_dir: str | None = None, workers: int = 8) -> None:
        """`workers` uploads (or downloads) run at once: one object per request makes them round-trip bound."""
        self._client = client
        self._bucket = bucket
        self._spool_dir = spool_dir
        self._workers = workers

    def put_many(self, contents: Iterable[NewContent]) -> dict[str, BundleSlot | None]:
        """Store each content; where each now is, by SHA-256 (hex): its bundle slot, or None for an object of its own.

        `contents` is consumed lazily. Small contents wait (spooled) until the last has arrived, then go into bundles
        in path order: the order in which deliveries read them.
        """
        placed: dict[str, BundleSlot | None] = {}
        waiting: list[tuple[bytes, str, int, int]] = []  # (path, sha256, where in the spool, size)
        spool_dir = self._spool_dir
        if spool_dir is not None:
            os.makedirs(spool_dir, exist_ok=True)
        with (
            _translated(),
            ThreadPoolExecutor(self._workers, thread_name_prefix="s3-put") as pool,
            tempfile.SpooledTemporaryFile(_SPOOL_MEMORY_BYTES, dir=spool_dir) as spool,
        ):
            uploads = _Uploads(pool, max_count=2 * self._workers, max_bytes=4 * _BUNDLE_BYTES)
            for item in contents:
                if item.sha256 in placed:
                    continue
                placed[item.sha256] = None
                if len(item.content) > _BUNDLED_MAX_BYTES:
                    key = _CONTENT_PREFIX + item.sha256
                    ask_first = len(item.content) > _CONDITIONAL_PUT_MAX_BYTES
                    uploads.add(len(item.content), self._put_if_absent, key, item.content, ask_first=ask_first)
                else:
                    waiting.append((item.path.encode(), item.sha256, spool.tell(), len(item.content)))
                    spool.write(item.content)
            waiting.sort()
            for group in bundles.bundle_groups([size for *_, size in waiting], max_bytes=_BUNDLE_BYTES):
                members = [waiting[index] for index in group]
                data = b"".join(_read_at(spool, where, size) for _, _, where, size in members)
                name = hashlib.sha256(data).hexdigest()
                offset = 0
                for _, sha256, _, size in members:
                    placed[sha256] = BundleSlot(name, offset)
                    offset += size
                # A new bundle rarely exists already (it would take the same new contents, cut the same way).
                uploads.add(len(data), self._put_if_absent, _BUNDLE_PREFIX + name, data, ask_first=False)
            uploads.finish()
        return placed

    def open(self, content: StoredContent) -> BinaryIO:
        """A stream of the content; read it in pieces to keep memory flat."""
        slot = content.slot
        if slot is None:
            return self._get(_CONTENT_PREFIX + content.sha256)
        if content.size == 0:
            return io.BytesIO()  # a range cannot be empty
        return self._get(_BUNDLE_PREFIX + slot.bundle, slot.offset, slot.offset + content.size)

    @contextmanager
    def read_each(self, contents: Iterable[StoredContent]) -> Iterator[Iterator[bytes]]:
        reads = bundles.plan_reads(contents, max_gap=_READ_GAP_BYTES, max_span=_READ_SPAN_BYTES)
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix="s3-get")
        try:
            yield self._read_ahead(pool, reads)
        finally:
            pool.shutdown(cancel_futures=True)  # a caller leaving early waits only for the few reads running

    def delete_many(self, objects: StoredObjects) -> None:
        keys = [_CONTENT_PREFIX + sha256 for sha256 in objects.contents]
        keys += [_BUNDLE_PREFIX + bundle for bundle in objects.bundles]
        with _translated():
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
                batch = [{"Key": key} for key in keys[start : start + 1000]]
                self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True})

    def ping(self) -> None:
        with _translated():
            self._client.head_bucket(Bucket=self._bucket)

    def _read_ahead(self, pool: ThreadPoolExecutor, reads: list[Read]) -> Iterator[bytes]:
        """Each part of each read in turn, checked against its SHA-256, while the next reads run on the pool."""
        ahead: deque[tuple[Read, Future[bytes]]] = deque()
        following = iter(reads)
        held = 0
        while True:
            while len(ahead) < 2 * self._workers and held < _READ_AHEAD_BYTES:
                read = next(following, None)
                if read is None:
                    break
                ahead.append((read, pool.submit(self._fetch, read)))
                held += read.end - read.first
            if not ahead:
                return
            read, fetched = ahead.popleft()
            data = fetched.result()
            held -= read.end - read.first
            for part in read.parts:
                piece = data[part.start : part.start + part.size]
                if hashlib.sha256(piece).hexdigest() != part.sha256:
                    raise errors.NotFound(f"content {part.sha256} does not match its SHA-256 where it is stored")
                yield piece

    def _fetch(self, read: Read) -> bytes:
        if read.bundle is None:
            key, first, end = _CONTENT_PREFIX + read.parts[0].sha256, None, None
        elif read.end == read.first:
            return b""  # empty contents only: a range cannot be empty
        else:
            key, first, end = _BUNDLE_PREFIX + read.bundle, read.first, read.end
        with self._get(key, first, end) as stream, _translated():
            return stream.read()

    def _get(self, key: str, first: int | None = None, end: int | None = None) -> BinaryIO:
        extra = {"Range": f"bytes={first}-{end - 1}"} if first is not None and end is not None else {}
        with _translated():
            try:
                answer = self._client.get_object(Bucket=self._bucket, Key=key, **extra)
            except ClientError as error:
                # 416: the range starts past the object's end, which a bundle written whole never does.
                if _status(error) in (404, 416):
                    raise errors.NotFound(f"{key} is not in the bucket") from error
                raise
        if first is not None and end is not None and answer.get("ContentLength") != end - first:
            answer["Body"].close()
            raise errors.NotFound(f"{key} is shorter than the contents it should hold")
        return answer["Body"]

    def _put_if_absent(self, key: str, content: bytes, *, ask_first: bool) -> None:
        if ask_first:
            if not self._exists(key):
                self._client.put_object(Bucket=self._bucket, Key=key, Body=content)
            return
        # One request instead of HEAD then PUT: S3 refuses the write with 412 when the key exists. 409 means a
        # conditional write of the same key is in flight; the key names its content, so writing it anyway is safe.
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=content, IfNoneMatch="*")
        except ClientError as error:
            if _status(error) == 412:
                return
            if _status(error) != 409:
                raise
            self._client.put_object(Bucket=self._bucket, Key=key, Body=content)

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if _status(error) != 404:
                raise
            return False
        return True


class _Uploads:
    """Uploads running on a pool, bounded in number and in bytes held, so memory stays flat however many come."""

    def __init__(self, pool: ThreadPoolExecutor, *, max_count: int, max_bytes: int) -> None:
        self._pool = pool
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._running: deque[tuple[int, Future[None]]] = deque()
        self._held = 0

    def add(self, size: int, upload: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        while self._running and (len(self._running) >= self._max_count or self._held + size > self._max_bytes):
            self._wait_oldest()
        self._running.append((size, self._pool.submit(upload, *args, **kwargs)))
        self._held += size

    def finish(self) -> None:
        while self._running:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        size, future = self._running.popleft()
        self._held -= size
        future.result()


def _read_at(spool: Any, where: int, size: int) -> bytes:
    spool.seek(where)
    return spool.read(size)


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise errors.Unavailable("the content bucket is not available") from error
