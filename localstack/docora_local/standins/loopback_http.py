"""Minimal HTTP/1.1 servers on loopback for benchmarks and stand-ins: keep-alive, one whole answer per request, no
framework. Each runs in a process of its own, so what it costs is not charged to the process being measured.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")


def serve(pipe: Any, respond: Callable[[bytes, bytes], bytes]) -> None:
    """Serve until killed, sending the port down `pipe` once listening; `respond(head, body)` gives each answer."""

    async def answered(head: bytes, body: bytes) -> bytes:
        return respond(head, body)

    serve_async(pipe, answered)


def serve_async(pipe: Any, respond: Callable[[bytes, bytes], Awaitable[bytes]]) -> None:
    """The same, for answers that wait (a latency, a hang) without holding up other connections."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                match = _CONTENT_LENGTH.search(head)
                body = await reader.readexactly(int(match.group(1))) if match else b""
                writer.write(await respond(head, body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0, limit=1 << 24, backlog=1024)
        pipe.send(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())
