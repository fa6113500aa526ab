"""A bare S3 on loopback for the benchmarks: GetObject from memory, in a process of its own, and nothing else.

It is to S3 reads what the bare receiver is to webhooks: the requests Docora makes go through botocore and the
network stack as they would to S3, but the server's side costs next to nothing, so the figures are Docora's own.
moto's server does the same job with much more work per GET, on the same 2 cores, which then bounds a
delivery benchmark at moto's speed. Path-style requests only (`/<bucket>/<key>`), which botocore uses for an
endpoint given as an IP address.

    with bare_s3(spawn, fill=_contents) as endpoint_url:
        os.environ["AWS_ENDPOINT_URL_S3"] = endpoint_url

`fill`, a top-level function, runs in the server's process and returns {(bucket, key): content}.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import traceback
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

from bench import loopback

_REQUEST_LINE = re.compile(rb"^(GET|HEAD) /([^/ ]+)/([^ ?]+)[^ ]* HTTP/1\.1\r\n")
_NOT_FOUND = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>"
)


@contextlib.contextmanager
def bare_s3(spawn: Any, fill: Callable[[], dict[tuple[str, str], bytes]]) -> Iterator[str]:
    """The endpoint URL of the server, running in a child process for as long as the block runs."""
    parent, child = spawn.Pipe()
    process = spawn.Process(target=_serve, args=(child, fill), daemon=True)
    process.start()
    try:
        answer = parent.recv()
        if not isinstance(answer, int):
            raise SystemExit(f"the bare S3 did not start:\n{answer}")
        yield f"http://127.0.0.1:{answer}"
    finally:
        process.terminate()
        process.join(timeout=30)


def _serve(pipe: Any, fill: Callable[[], dict[tuple[str, str], bytes]]) -> None:
    try:
        objects = fill()
        etags = {name: hashlib.md5(content, usedforsecurity=False).hexdigest() for name, content in objects.items()}
    except BaseException:
        pipe.send(traceback.format_exc())
        raise

    def respond(head: bytes, body: bytes) -> bytes:
        match = _REQUEST_LINE.match(head)
        name = (unquote(match.group(2).decode()), unquote(match.group(3).decode())) if match else None
        if match is None or name not in objects:
            return (b"HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(_NOT_FOUND), _NOT_FOUND))  # fmt: skip
        content = objects[name]
        head = (b'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nETag: "%s"\r\n'
                b"Content-Length: %d\r\n\r\n" % (etags[name].encode(), len(content)))  # fmt: skip
        return head + content if match.group(1) == b"GET" else head

    loopback.serve(pipe, respond)
