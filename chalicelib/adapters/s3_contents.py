"""File contents in S3 under their SHA-256: uploaded once by the scan, streamed by delivery."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import errors

_PREFIX = "sha256/"
# Up to this size a content already stored is cheaper to send again (and be refused) than to ask about first: a
# first scan of 20,000 files makes 20,000 requests instead of 40,000. Bigger ones are asked about with a HEAD.
_CONDITIONAL_PUT_MAX_BYTES = 256 * 1024


class S3Contents:
    def __init__(self, client: Any, bucket: str, *, workers: int = 8) -> None:
        """`workers` uploads (or downloads) run at once: one object per request makes them round-trip bound."""
        self._client = client
        self._bucket = bucket
        self._workers = workers

    def put_many(self, blobs: Iterable[tuple[str, bytes]]) -> int:
        uploaded = 0
        in_flight: list[Future[bool]] = []
        with _translated(), ThreadPoolExecutor(self._workers, thread_name_prefix="s3-put") as pool:
            for sha256, content in blobs:
                in_flight.append(pool.submit(self._put_if_absent, sha256, content))
                # Bounded, so at most about two contents per worker are held in memory.
                while len(in_flight) >= 2 * self._workers:
                    uploaded += in_flight.pop(0).result()
            uploaded += sum(future.result() for future in in_flight)
        return uploaded

    def open(self, sha256: str) -> BinaryIO:
        """A stream of the content; read it in pieces to keep memory flat."""
        with _translated():
            try:
                return self._client.get_object(Bucket=self._bucket, Key=_PREFIX + sha256)["Body"]
            except ClientError as error:
                if _status(error) == 404:
                    raise errors.NotFound(f"content {sha256} is not in the bucket") from error
                raise

    @contextmanager
    def read_each(self, sha256s: Iterable[str]) -> Iterator[Iterator[bytes]]:
        pool = ThreadPoolExecutor(self._workers, thread_name_prefix="s3-get")
        try:
            yield self._read_ahead(pool, iter(sha256s))
        finally:
            pool.shutdown(cancel_futures=True)  # a caller leaving early waits only for the few reads running

    def delete_many(self, sha256s: list[str]) -> None:
        with _translated():
            for start in range(0, len(sha256s), 1000):  # DeleteObjects takes at most 1,000 keys
                keys = [{"Key": _PREFIX + sha256} for sha256 in sha256s[start : start + 1000]]
                self._client.delete_objects(Bucket=self._bucket, Delete={"Objects": keys, "Quiet": True})

    def ping(self) -> None:
        with _translated():
            self._client.head_bucket(Bucket=self._bucket)

    def _read_ahead(self, pool: ThreadPoolExecutor, sha256s: Iterator[str]) -> Iterator[bytes]:
        # Bounded like put_many: at most about two contents per worker are held in memory.
        ahead = deque(pool.submit(self._read, sha256) for sha256 in itertools.islice(sha256s, 2 * self._workers))
        while ahead:
            first = ahead.popleft()
            if (following := next(sha256s, None)) is not None:
                ahead.append(pool.submit(self._read, following))
            yield first.result()

    def _read(self, sha256: str) -> bytes:
        with self.open(sha256) as stream, _translated():
            return stream.read()

    def _put_if_absent(self, sha256: str, content: bytes) -> bool:
        key = _PREFIX + sha256
        if len(content) > _CONDITIONAL_PUT_MAX_BYTES:
            if self._exists(key):
                return False
            self._client.put_object(Bucket=self._bucket, Key=key, Body=content)
            return True
        # One request instead of HEAD then PUT: S3 refuses the write with 412 when the key exists. 409 means a
        # conditional write of the same key is in flight; the key names its content, so writing it anyway is safe.
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=content, IfNoneMatch="*")
        except ClientError as error:
            if _status(error) == 412:
                return False
            if _status(error) != 409:
                raise
            self._client.put_object(Bucket=self._bucket, Key=key, Body=content)
        return True

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
        except ClientError as error:
            if _status(error) != 404:
                raise
            return False
        return True


def _status(error: ClientError) -> int | None:
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise errors.Unavailable("the content bucket is not available") from error
