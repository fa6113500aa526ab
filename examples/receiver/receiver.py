"""A reference Docora webhook receiver: verifies every request and mirrors each repository into a folder.

    python examples/receiver/receiver.py --key KEY --dir DIR [--port 9000] [--host 127.0.0.1]

Register the app with base_url http://HOST:PORT (any path prefix works: the last segment names the event).
Each repository lands in DIR/<owner>/<name>/. Standard library only; see docs/receivers.md, and docs/protocol.md §1
for the contract it implements.

Answers: 401 when the signature or timestamp is wrong, 400 when a verified body is malformed or unsafe,
500 when the disk fails (Docora retries all three later), 200 once the change is on disk. Bodies are read
concurrently but applied one at a time under a lock, because Docora's retry of a request that timed out can
arrive while the first attempt is still being written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from docora_mirror import Mirror, Refused
from verify_docora import verify_docora

EVENTS = ("create", "update", "delete", "sync_failed")
# Text files are never chunked, so a body is as large as the largest text file; this bounds what an
# unauthenticated client can make the receiver read before the signature is checked.
MAX_BODY_BYTES = 256 * 1024 * 1024


class Receiver:
    """Turns one request into a status and a line to print; knows nothing of sockets."""

    def __init__(self, key: str, folder: Path) -> None:
        self._key = key
        self._mirror = Mirror(folder)
        self._lock = threading.Lock()

    def handle(self, path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str]:
        event = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        delivery = {name.lower(): value for name, value in headers.items()}.get("x-docora-delivery", "-")
        if event not in EVENTS:
            return 404, f"refused {path}: not a Docora event"
        if not verify_docora(body, headers, self._key):
            return 401, f"refused /{event} [{delivery}]: bad signature or timestamp outside 300 s"
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, f"refused /{event} [{delivery}]: the body is not JSON"
        try:
            with self._lock:
                outcome = self._mirror.apply(event, payload)
        except Refused as error:
            return 400, f"refused /{event} [{delivery}]: {error}"
        except OSError as error:
            return 500, f"failed /{event} [{delivery}]: {error}"
        where = " ".join(part for part in (outcome.repository, outcome.path) if part)
        return 200, f"{outcome.event} {where}: {outcome.note} [{delivery}]"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        super().__init__(address, _Handler)
        self.receiver = receiver


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes each connection after its answer, so the sender never reuses a socket to a receiver that
    # has since restarted (which would fail one delivery for nothing).
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()):
            self._answer(411, "refused: Content-Length is required")
            return
        if int(length) > MAX_BODY_BYTES:
            self._answer(413, f"refused: body of {length} bytes is over {MAX_BODY_BYTES}")
            return
        status, line = self.server.receiver.handle(self.path, self.headers, self.rfile.read(int(length)))
        self._answer(status, line)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per event is printed by _answer instead

    def _answer(self, status: int, line: str) -> None:
        print(line, flush=True)
        body = json.dumps({"ok": True} if status == 200 else {"error": line}, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Receive Docora webhooks and mirror each repository into DIR.")
    parser.add_argument(
        "--key",
        default=os.environ.get("DOCORA_CLIENT_AUTH_KEY"),
        help="the app's client_auth_key (default: $DOCORA_CLIENT_AUTH_KEY, which keeps it out of `ps`)",
    )
    parser.add_argument("--dir", required=True, type=Path, help="where DIR/<owner>/<name>/ mirrors go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000, help="0 picks a free port")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("--key or DOCORA_CLIENT_AUTH_KEY is required")
    server = _Server((args.host, args.port), Receiver(args.key, args.dir))
    host, port = server.server_address[:2]
    print(f"docora receiver listening on http://{host}:{port}, mirroring into {args.dir}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
