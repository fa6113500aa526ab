"""A bare S3 on loopback for the benchmarks: Get (whole or one range), Head and PutObject in memory, in a process
of its own, and nothing else.

It is to S3 reads what the bare receiver is to webhooks: the requests Docora makes go through botocore and the
network stack as they would to S3, but the server's side costs next to nothing, so the figures are Docora's own.
moto's server does the same job with much more work per GET, on the same 2 cores, which then bounds a
delivery benchmark at moto's speed. Path-style requests only (`/<bucket>/<key>`), which botocore uses for an
endpoint given as an IP address.

    with bare_s3(spawn, fill=_contents) as endpoint_url:
        os.environ["AWS_ENDPOINT_URL_S3"] = endpoint_url

`fill`, a top-level function, runs in the server's process and returns {(bucket, key): content} to start with.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import traceback
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

from docora_local.standins import loopback_http as loopback

_REQUEST_LINE = re.compile(rb"^(GET|HEAD|PUT) /([^/ ]+)/([^ ?]+)[^ ]* HTTP/1\.1\r\n")
_RANGE = re.compile(rb"(?im)^range:\s*bytes=(\d+)-(\d+)\r$")
_IF_NONE_MATCH = re.compile(rb"(?im)^if-none-match:\s*\*\r$")
_NOT_FOUND = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>"
)
_EXISTS = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>PreconditionFailed</Code><Message>exists</Message></Error>"
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
        if match is not None and match.group(1) == b"PUT":
            if name in objects and _IF_NONE_MATCH.search(head):
                return _error(b"412 Precondition Failed", _EXISTS)
            objects[name] = body
            etags[name] = hashlib.md5(body, usedforsecurity=False).hexdigest()
            return b'HTTP/1.1 200 OK\r\nETag: "%s"\r\nContent-Length: 0\r\n\r\n' % etags[name].encode()
        if match is None or name not in objects:
            return _error(b"404 Not Found", _NOT_FOUND)
        content, status, extra = objects[name], b"200 OK", b""
        if (wanted := _RANGE.search(head)) is not None:
            first, last = int(wanted.group(1)), min(int(wanted.group(2)), len(content) - 1)
            extra = b"Content-Range: bytes %d-%d/%d\r\n" % (first, last, len(content))
            content, status = content[first : last + 1], b"206 Partial Content"
        head = (b'HTTP/1.1 %s\r\nContent-Type: application/octet-stream\r\nETag: "%s"\r\n%s'
                b"Content-Length: %d\r\n\r\n" % (status, etags[name].encode(), extra, len(content)))  # fmt: skip
        return head + content if match.group(1) == b"GET" else head

    loopback.serve(pipe, respond)


def _error(status: bytes, body: bytes) -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Type: application/xml\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body)
