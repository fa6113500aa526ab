"""A webhook receiver on loopback that answers by script and records everything, for tests and benchmarks."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """What the receiver does with one request: answer `status` after `delay`, or `reset` / `hang`."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # "reset": close with RST after part of the body; "hang": never answer; "slow-head": send the status line and
    # headers a byte every `delay` seconds; "slow-body": send them at once, then the body a byte every `delay` seconds.
    action: str | None = None
    body: bytes = b""


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    complete: bool  # False when the receiver reset the connection before reading the whole body


class PythonReceiver:
    """Answers each request with the next scripted Reply (then `default`); counts TCP connections accepted."""

    def __init__(self, *, default: Reply | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.default = default or Reply()
        self.requests: list[Received] = []
        self.connections = 0
        self.server_names: list[str | None] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        if tls is not None:
            tls.sni_callback = self._record_server_name
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def start(self) -> PythonReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self) -> Reply:
        with self._lock:
            return self._script.pop(0) if self._script else self.default

    def _record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _record_server_name(self, _socket: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext) -> None:
        self.server_names.append(server_name)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a delivery job opens many connections at once; http.server's 5 would refuse some


def _handler_for(receiver: PythonReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed

        def setup(self) -> None:
            super().setup()
            receiver._connected()

        def do_POST(self) -> None:
            reply = receiver._next_reply()
            length = int(self.headers.get("Content-Length", "0"))
            if reply.action == "reset":
                partial = self.rfile.read(min(length, 16))
                receiver._record(Received(self.path, dict(self.headers), partial, complete=False))
                # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            body = self.rfile.read(length)
            receiver._record(Received(self.path, dict(self.headers), body, complete=True))
            if reply.action == "hang":
                receiver._stopping.wait(60)
                self.close_connection = True
                return
            if reply.action not in ("slow-head", "slow-body"):
                time.sleep(reply.delay)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            if reply.action == "slow-head":
                head, self._headers_buffer = b"".join(self._headers_buffer) + b"\r\n", []
                self._trickle(head + reply.body, reply.delay)
                return
            self.end_headers()
            if reply.action == "slow-body":
                self.wfile.flush()
                self._trickle(reply.body, reply.delay)
                return
            self.wfile.write(reply.body)

        def _trickle(self, data: bytes, delay: float) -> None:
            try:
                for index in range(len(data)):
                    if receiver._stopping.wait(delay):
                        break
                    self.wfile.write(data[index : index + 1])
                    self.wfile.flush()
            except OSError:
                pass  # the sender gave up and closed the connection, as it should
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
