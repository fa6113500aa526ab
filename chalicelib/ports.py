"""What the services need from the outside world, as structural types; adapters and fakes provide them."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from chalicelib.config import Settings
from chalicelib.domain.apps import App, NewApp
from chalicelib.domain.repositories import NewRepository, NewWatch, Repository, Watch, WatchStatus


class Apps(Protocol):
    def add(self, app: NewApp) -> App: ...

    def get(self, app_id: str) -> App | None: ...

    def by_token_lookup(self, token_lookup: bytes) -> App | None: ...


class Repositories(Protocol):
    def get(self, repository_id: str) -> Repository | None: ...

    def find(self, github_url: str, branch: str) -> Repository | None: ...

    def add(self, repository: NewRepository) -> Repository:
        """Insert it, or return the row already there for the same URL and branch."""
        ...

    def delete_if_unwatched(self, repository_id: str) -> bool: ...


class Watches(Protocol):
    def get(self, app_id: str, repository_id: str) -> Watch | None: ...

    def add(self, watch: NewWatch) -> Watch:
        """Insert it, or return the watch already there for the same app and repository."""
        ...

    def delete(self, app_id: str, repository_id: str) -> bool: ...

    def set_github_token(self, app_id: str, repository_id: str, token_encrypted: str | None) -> None: ...

    def status(self, app_id: str, repository_id: str) -> WatchStatus | None: ...

    def statuses(self, app_id: str) -> list[WatchStatus]: ...


@dataclass(frozen=True)
class Transaction:
    apps: Apps
    repositories: Repositories
    watches: Watches


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def ping(self) -> None:
        """Raise Unavailable when the database does not answer."""
        ...


class Cipher(Protocol):
    """AES-256-GCM in the original Docora's text format."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, value: str) -> str: ...


class TokenHasher(Protocol):
    """bcrypt for bearer tokens: slow on purpose."""

    def hash(self, token: str) -> str: ...

    def verify(self, token: str, token_hash: str) -> bool: ...


@dataclass(frozen=True)
class GitHubRepository:
    owner: str
    name: str
    is_private: bool
    default_branch: str


class GitHub(Protocol):
    def repository(self, owner: str, name: str, token: str | None) -> GitHubRepository:
        """Raise NotFound, Unprocessable (token rejected) or Unavailable (rate limit, outage)."""
        ...

    def has_branch(self, owner: str, name: str, branch: str, token: str | None) -> bool: ...


class ScanQueue(Protocol):
    def request_scan(self, repository_id: str) -> None: ...

    def ping(self) -> None: ...


class RateLimiter(Protocol):
    def acquire(self, key: str, per_minute: int) -> int | None:
        """Take one token from `key`'s bucket; None when allowed, else seconds until one is free."""
        ...

    def ping(self) -> None: ...


class Resolver(Protocol):
    def addresses(self, host: str) -> list[str]:
        """Every address `host` resolves to; an empty list when it does not resolve."""
        ...


@dataclass(frozen=True)
class Deps:
    settings: Settings
    store: Store
    cipher: Cipher
    token_hasher: TokenHasher
    github: GitHub
    scan_queue: ScanQueue
    rate_limiter: RateLimiter
    resolver: Resolver
