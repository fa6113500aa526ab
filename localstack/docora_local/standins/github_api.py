"""A loopback stand-in for the GitHub REST routes Docora calls, so tests and the local runner need no network.

From tests: `with GitHubStandIn() as github:` then program it (`add_repository`, `rate_limit`, ...).
From a shell: `PYTHONPATH=localstack python -m docora_local.standins.github_api --port 8081 --repos-dir <folder>`,
where each `<folder>/<owner>/<name>` (or `<name>.git`) git repository is served as a public GitHub repository.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote, urlsplit

_DOCS = "https://docs.github.com/rest"
_FAKE_SHA = "0" * 40

Answer = tuple[int, dict[str, str], bytes]


class SeenRequest(NamedTuple):
    method: str
    path: str  # as received, query string included
    authorized: bool  # whether an Authorization header came with it


@dataclass
class _Repository:
    owner: str
    name: str
    private: bool
    default_branch: str
    branches: dict[str, str]  # branch name -> commit sha
    tokens: frozenset[str]  # tokens that may read it when private


class GitHubStandIn:
    def __init__(
        self,
        repos_dir: str | Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repos_dir = Path(repos_dir) if repos_dir is not None else None
        self.requests_seen: list[SeenRequest] = []
        self.headers_seen: list[dict[str, str]] = []
        self._address = (host, port)
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._tokens: set[str] = set()
        self._repositories: dict[tuple[str, str], _Repository] = {}
        self._renamed: dict[tuple[str, str], tuple[str | None, str, str]] = {}
        self._failure: Answer | None = None
        self._delay = 0.0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GitHubStandIn:
        self._stopping.clear()
        self._server = _Server(self._address, self)
        # A short poll keeps stop(), and so each test's teardown, from waiting half a second.
        serve = functools.partial(self._server.serve_forever, poll_interval=0.02)
        self._thread = threading.Thread(target=serve, name="github-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a programmed delay
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> GitHubStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add_token(self, token: str) -> None:
        """A token GitHub would accept, but which can read no private repository unless one names it."""
        with self._lock:
            self._tokens.add(token)

    def add_repository(
        self,
        owner: str,
        name: str,
        *,
        private: bool = False,
        default_branch: str = "main",
        branches: Iterable[str] = ("main",),
        token: str | None = None,
    ) -> None:
        tokens = frozenset() if token is None else frozenset({token})
        repository = _Repository(owner, name, private, default_branch, dict.fromkeys(branches, _FAKE_SHA), tokens)
        with self._lock:
            self._tokens.update(tokens)
            self._repositories[_key(owner, name)] = repository
            self._renamed.pop(_key(owner, name), None)

    def rename(
        self, old_owner: str, old_name: str, new_owner: str, new_name: str, *, api_url: str | None = None
    ) -> None:
        """Move a repository; the old name then answers 301 towards `api_url` (this stand-in by default)."""
        with self._lock:
            repository = self._repositories.pop(_key(old_owner, old_name))
            repository.owner, repository.name = new_owner, new_name
            self._repositories[_key(new_owner, new_name)] = repository
            self._renamed.pop(_key(new_owner, new_name), None)
            self._renamed[_key(old_owner, old_name)] = (api_url, new_owner, new_name)

    def rate_limit(self, retry_after: int | None = None, reset_in: int | None = None, status: int = 403) -> None:
        """Answer every request as GitHub does past its rate limit, until `recover()`."""
        reset_at = int(self._clock() + (60 if reset_in is None else reset_in))
        headers = {
            "x-ratelimit-limit": "60",
            "x-ratelimit-remaining": "0",
            "x-ratelimit-used": "60",
            "x-ratelimit-reset": str(reset_at),
            "x-ratelimit-resource": "core",
        }
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        with self._lock:
            self._failure = (status, headers, _message("API rate limit exceeded"))

    def fail_with(self, status: int, body: bytes | None = None) -> None:
        """Answer every request with `status` (and `body`, when given), until `recover()`."""
        with self._lock:
            self._failure = (status, {}, _message("Server Error") if body is None else body)

    def delay(self, seconds: float) -> None:
        """Wait this long before answering each request, until `recover()`."""
        with self._lock:
            self._delay = seconds

    def recover(self) -> None:
        with self._lock:
            self._failure, self._delay = None, 0.0

    def _answer(self, path: str, headers: dict[str, str]) -> Answer:
        authorization = headers.get("Authorization")
        with self._lock:
            self.requests_seen.append(SeenRequest("GET", path, authorization is not None))
            self.headers_seen.append(headers)
            delay, failure = self._delay, self._failure
        if delay:
            self._stopping.wait(delay)
        if failure is not None:
            return failure
        token = _token(authorization)
        if authorization is not None and token not in self._tokens:
            return 401, {}, _message("Bad credentials")
        raw = urlsplit(path).path.split("/")[1:]
        if len(raw) < 3 or raw[0] != "repos":
            return _not_found()
        owner, name = unquote(raw[1]), unquote(raw[2])
        with self._lock:
            moved = self._renamed.get(_key(owner, name))
        if moved is not None:
            return self._moved(moved, raw[3:])
        repository = self._find(owner, name)
        if repository is None or (repository.private and token not in repository.tokens):
            return _not_found()
        if len(raw) == 3:
            return 200, {}, _json(self._repository_json(repository))
        branch = "/".join(unquote(segment) for segment in raw[4:])
        if raw[3] != "branches" or branch not in repository.branches:
            return _not_found("Branch not found")
        return 200, {}, _json({"name": branch, "commit": {"sha": repository.branches[branch]}, "protected": False})

    def _moved(self, moved: tuple[str | None, str, str], rest: list[str]) -> Answer:
        api_url, owner, name = moved
        location = "/".join([f"{api_url or self.url}/repos", quote(owner, safe=""), quote(name, safe=""), *rest])
        return 301, {"Location": location}, _json({"message": "Moved Permanently", "url": location})

    def _find(self, owner: str, name: str) -> _Repository | None:
        with self._lock:
            repository = self._repositories.get(_key(owner, name))
        if repository is None and self.repos_dir is not None:
            return _repository_on_disk(self.repos_dir, owner, name)
        return repository

    def _repository_json(self, repository: _Repository) -> dict[str, object]:
        full_name = f"{repository.owner}/{repository.name}"
        return {
            "name": repository.name,
            "full_name": full_name,
            "owner": {"login": repository.owner},
            "private": repository.private,
            "visibility": "private" if repository.private else "public",
            "default_branch": repository.default_branch,
            "html_url": f"https://github.com/{full_name}",
            "url": f"{self.url}/repos/{full_name}",
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], standin: GitHubStandIn) -> None:
        super().__init__(address, _Handler)
        self.standin = standin


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        status, headers, body = self.server.standin._answer(self.path, dict(self.headers.items()))
        self.send_response(status)
        for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up, as timeout tests do
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output readable


def _key(owner: str, name: str) -> tuple[str, str]:
    return owner.lower(), name.lower()  # GitHub matches owners and names without regard to case


def _token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() in ("bearer", "token") else None


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


def _message(text: str) -> bytes:
    return _json({"message": text, "documentation_url": _DOCS})


def _not_found(text: str = "Not Found") -> Answer:
    return 404, {}, _message(text)


def repository_dir(repos_dir: Path, owner: str, name: str) -> Path | None:
    """The git folder of `<repos_dir>/<owner>/<name>` (or `<name>.git`), bare or a work tree's `.git`."""
    owner_dir = _child(repos_dir, owner)
    repo_dir = owner_dir and (_child(owner_dir, name) or _child(owner_dir, f"{name}.git"))
    if repo_dir is None:
        return None
    return repo_dir / ".git" if (repo_dir / ".git").is_dir() else repo_dir


def _repository_on_disk(repos_dir: Path, owner: str, name: str) -> _Repository | None:
    git_dir = repository_dir(repos_dir, owner, name)
    if git_dir is None:
        return None
    repo_dir = git_dir.parent if git_dir.name == ".git" else git_dir
    owner_dir = repo_dir.parent
    head_file = git_dir / "HEAD"
    head = head_file.read_text().strip() if head_file.is_file() else ""
    default_branch = head.removeprefix("ref: refs/heads/") if head.startswith("ref: refs/heads/") else "main"
    name = repo_dir.name.removesuffix(".git")
    return _Repository(owner_dir.name, name, False, default_branch, _branches(git_dir), frozenset())


def _child(folder: Path, name: str) -> Path | None:
    """The subfolder called `name`, ignoring case; listing rather than joining keeps `..` from escaping."""
    if not folder.is_dir():
        return None
    return next((entry for entry in folder.iterdir() if entry.is_dir() and entry.name.lower() == name.lower()), None)


def _branches(git_dir: Path) -> dict[str, str]:
    branches = {}
    packed = git_dir / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, ref = line.partition(" ")
            if ref.startswith("refs/heads/"):
                branches[ref.removeprefix("refs/heads/")] = sha
    heads = git_dir / "refs" / "heads"
    if heads.is_dir():
        for ref_file in heads.rglob("*"):
            if ref_file.is_file():  # a loose ref is newer than its packed copy
                branches[ref_file.relative_to(heads).as_posix()] = ref_file.read_text().strip()
    return branches


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--repos-dir", type=Path, required=True, help="holds <owner>/<name> git repositories")
    parser.add_argument("--token", action="append", default=[], help="a token to accept (repeatable)")
    args = parser.parse_args(argv)
    standin = GitHubStandIn(args.repos_dir, host=args.host, port=args.port)
    for token in args.token:
        standin.add_token(token)
    with standin:
        print(f"GitHub stand-in on {standin.url}, serving {args.repos_dir}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
