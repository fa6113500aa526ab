"""git smart HTTP for a folder of repositories, as github.com serves them, for `make run GITHUB=local`.

`PYTHONPATH=localstack python -m docora_local.standins.git_http --port 8082 --repos-dir <folder>` serves each
`<folder>/<owner>/<name>` git repository (bare or not, named with or without `.git`) at `/<owner>/<name>.git`.
`git http-backend` does the work, configured like GitHub: protocol v2, partial clone filters, and wants by
object id (PERFORMANCE.md §1). git_server.py runs the same CGI for the tests' own repositories.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from docora_local.standins.github_api import repository_dir

UPLOAD_PACK_CONFIG = {
    "uploadpack.allowFilter": "true",
    "uploadpack.allowAnySHA1InWant": "true",
    "uploadpack.allowReachableSHA1InWant": "true",
    "protocol.version": "2",
}

Answer = tuple[int, dict[str, str], bytes]


def http_backend(git_dir: Path, path_info: str, request: BaseHTTPRequestHandler, body: bytes) -> Answer:
    """Run `git http-backend` for one request on the repository at `git_dir`; `path_info` is within it."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(git_dir),
        "GIT_HTTP_EXPORT_ALL": "1",
        "REQUEST_METHOD": request.command,
        "PATH_INFO": path_info,
        "QUERY_STRING": urlsplit(request.path).query,
        "CONTENT_TYPE": request.headers.get("Content-Type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": request.client_address[0],
        "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        "HTTP_CONTENT_ENCODING": request.headers.get("Content-Encoding", ""),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_COUNT": str(len(UPLOAD_PACK_CONFIG)),
    }
    for index, (key, value) in enumerate(UPLOAD_PACK_CONFIG.items()):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    result = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
    return parse_cgi(result.stdout)


def read_body(request: BaseHTTPRequestHandler) -> bytes:
    if request.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return request.rfile.read(int(request.headers.get("Content-Length") or 0))
    chunks = []
    while size := int(request.rfile.readline().split(b";")[0].strip(), 16):  # git sends big wants chunked
        chunks.append(request.rfile.read(size))
        request.rfile.readline()
    while request.rfile.readline() not in (b"\r\n", b"\n", b""):
        pass
    return b"".join(chunks)


def parse_cgi(output: bytes) -> Answer:
    ends = [(output.find(separator), separator) for separator in (b"\r\n\r\n", b"\n\n") if separator in output]
    at, separator = min(ends) if ends else (len(output), b"")
    head, content = output[:at], output[at + len(separator) :]
    status, headers = 200, {}
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        elif name:
            headers[name] = value.strip()
    return status, headers, content


class FolderServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], repos_dir: Path) -> None:
        super().__init__(address, _Handler)
        self.repos_dir = repos_dir


class _Handler(BaseHTTPRequestHandler):
    server: FolderServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        status, headers, content = self._answer(read_body(self))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(content)

    def _answer(self, body: bytes) -> Answer:
        segments = unquote(urlsplit(self.path).path).split("/")
        if len(segments) < 4 or not segments[2].endswith(".git"):
            return 404, {"Content-Type": "text/plain"}, b"not a repository path\n"
        owner, name, rest = segments[1], segments[2].removesuffix(".git"), segments[3:]
        git_dir = repository_dir(self.server.repos_dir, owner, name)
        if git_dir is None:
            return 404, {"Content-Type": "text/plain"}, b"repository not found\n"
        return http_backend(git_dir, "/" + "/".join(rest), self, body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--repos-dir", type=Path, required=True, help="holds <owner>/<name> git repositories")
    args = parser.parse_args(argv)
    server = FolderServer((args.host, args.port), args.repos_dir)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"git smart HTTP on http://{args.host}:{server.server_address[1]}, serving {args.repos_dir}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()


if __name__ == "__main__":
    main()
