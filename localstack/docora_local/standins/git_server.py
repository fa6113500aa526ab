"""A real git smart-HTTP server on loopback, and repositories to change commit by commit, for tests and bench/scan.py.

dulwich's own WSGI server speaks only protocol v0/v1 and so never sees a `filter` request; GitHub speaks v2 with
`blob:none` and wants by id. `git http-backend` does both, so it runs here as a CGI behind a small threaded
`http.server`, configured the way PERFORMANCE.md §1 describes (allowFilter, allowAnySHA1InWant).

    with GitServer(tmp_path) as server:
        repo = server.make_repo("hello")
        sha = repo.commit({"README.md": b"hi\n"})
        DulwichGit().head(repo.url, "main", None)

The server can require a token (GitHub's `x-access-token` basic auth), answer every request with one status
(`fail_with`), accept requests and never answer (`hang`), or cut each answer short with a TCP reset (`reset`).
`requests` logs what came in, without bodies.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from docora_local.standins.git_http import http_backend, read_body

# Commits made by the helpers are reproducible and never read the developer's own git configuration.
_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Docora Tests",
    "GIT_AUTHOR_EMAIL": "tests@docora.invalid",
    "GIT_COMMITTER_NAME": "Docora Tests",
    "GIT_COMMITTER_EMAIL": "tests@docora.invalid",
}
_HANG_LIMIT_SECONDS = 60


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str  # as received, query string included
    git_protocol: str | None
    authorized: bool  # whether an Authorization header came with it
    status: int
    response_bytes: int
    seconds: float  # time the server took to answer, git http-backend included


def git(*args: str | os.PathLike[str], cwd: Path | None = None, input: bytes | None = None) -> bytes:
    env = {**os.environ, **_GIT_ENV}
    result = subprocess.run(["git", *map(str, args)], cwd=cwd, env=env, input=input, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(map(str, args))} failed: {result.stderr.decode(errors='replace')}")
    return result.stdout


class GitServer:
    def __init__(self, root: str | Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self.repos_dir = self.root / "repos"
        self.work_dir = self.root / "work"
        self.repos_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.requests: list[SeenRequest] = []
        self.token: str | None = None
        self._address = (host, port)
        self._lock = threading.Lock()
        self._failure: int | None = None
        self._reset_after: int | None = None
        self._answering = threading.Event()
        self._answering.set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GitServer:
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="git-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._answering.set()  # lets hanging handlers finish so shutdown does not wait on them
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def require_token(self, token: str | None) -> None:
        """Refuse (401) any request without `Authorization: Basic base64("x-access-token:<token>")`; None lifts it."""
        self.token = token

    def fail_with(self, status: int | None) -> None:
        """Answer every request with this bare status; None goes back to serving."""
        self._failure = status

    def hang(self) -> None:
        """Accept requests and send nothing back until `recover` or `stop`."""
        self._answering.clear()

    def reset(self, after_bytes: int = 0) -> None:
        """Cut each answer after `after_bytes` bytes (status line included) with a TCP reset, until `recover`."""
        self._reset_after = after_bytes

    def recover(self) -> None:
        self._failure = None
        self._reset_after = None
        self._answering.set()

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()

    def make_repo(self, name: str) -> TestRepo:
        """An empty bare repository served at `<url>/<name>.git`, with a work tree to commit from."""
        bare = self.repos_dir / f"{name}.git"
        git("init", "-q", "--bare", "-b", "main", bare)
        return TestRepo(self, name, bare, self.work_dir / name)

    def _log(self, seen: SeenRequest) -> None:
        with self._lock:
            self.requests.append(seen)


class TestRepo:
    """One served repository. Commits go through a work tree and a force push, as a developer's would."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, server: GitServer, name: str, bare: Path, work: Path) -> None:
        self.server = server
        self.name = name
        self.bare = bare
        self.work = work
        self._init_work_tree()

    @property
    def url(self) -> str:
        return f"{self.server.url}/{self.name}.git"

    def commit(
        self,
        files: dict[str, bytes | None],
        message: str = "change",
        *,
        symlinks: dict[str, str] | None = None,
        submodules: dict[str, str] | None = None,
        branch: str = "main",
    ) -> str:
        """Write (bytes) or delete (None) files, add symlinks and submodule links, commit and push; return the sha."""
        for path, content in files.items():
            target = self.work / path
            if content is None:
                target.unlink()
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
        for path, link_target in (symlinks or {}).items():
            (self.work / path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(link_target, self.work / path)
        git("add", "-A", cwd=self.work)
        for path, sha in (submodules or {}).items():
            # An empty folder keeps later `add -A` runs from staging the gitlink's deletion.
            (self.work / path).mkdir(parents=True, exist_ok=True)
            git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}", cwd=self.work)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.work)
        git("push", "-q", "--force", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return self.head()

    def force_push(self, files: dict[str, bytes], message: str = "rewritten", *, branch: str = "main") -> str:
        """Replace the branch with a new root commit holding only `files`: history rewritten, as after a rebase."""
        shutil.rmtree(self.work)
        self._init_work_tree()
        return self.commit(dict(files), message, branch=branch)

    def rename_branch(self, old: str, new: str) -> None:
        git("branch", "-m", old, new, cwd=self.bare)

    def delete_branch(self, branch: str) -> None:
        git("update-ref", "-d", f"refs/heads/{branch}", cwd=self.bare)

    def head(self, branch: str = "main") -> str:
        return git("rev-parse", f"refs/heads/{branch}", cwd=self.bare).decode().strip()

    def ls_tree(self, ref: str = "main") -> dict[bytes, tuple[int, str, str]]:
        """`git ls-tree -r` of the served repository: path -> (mode, type, object id)."""
        listing: dict[bytes, tuple[int, str, str]] = {}
        for record in git("ls-tree", "-r", "-z", "--full-tree", ref, cwd=self.bare).split(b"\0"):
            if record:
                info, path = record.split(b"\t", 1)
                mode, kind, sha = info.decode().split()
                listing[path] = (int(mode, 8), kind, sha)
        return listing

    def _init_work_tree(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        git("init", "-q", "-b", "main", self.work)
        git("remote", "add", "origin", self.bare, cwd=self.work)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], git_server: GitServer) -> None:
        super().__init__(address, _Handler)
        self.git_server = git_server


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        git_server = self.server.git_server
        body = read_body(self)
        started = time.monotonic()
        if not git_server._answering.is_set():
            git_server._answering.wait(_HANG_LIMIT_SECONDS)
            self.close_connection = True
            return
        status, headers, content = self._answer(git_server, body)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        reset_after = git_server._reset_after
        if reset_after is not None:
            answer, self._headers_buffer = b"".join(self._headers_buffer) + b"\r\n" + content, []
            self.wfile.write(answer[:reset_after])
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        # Logged before the answer goes out, so a client that has read it always finds it in the log.
        git_server._log(
            SeenRequest(
                method=self.command,
                path=self.path,
                git_protocol=self.headers.get("Git-Protocol"),
                authorized="Authorization" in self.headers,
                status=status,
                response_bytes=len(content),
                seconds=time.monotonic() - started,
            )
        )
        self.end_headers()
        self.wfile.write(content)

    def _answer(self, git_server: GitServer, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if git_server._failure is not None:
            return git_server._failure, {"Content-Type": "text/plain"}, b"failing on purpose\n"
        if git_server.token is not None and self.headers.get("Authorization") != _basic(git_server.token):
            return 401, {"WWW-Authenticate": 'Basic realm="GitHub"', "Content-Type": "text/plain"}, b"denied\n"
        return http_backend(git_server.repos_dir, unquote(urlsplit(self.path).path), self, body)


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")
