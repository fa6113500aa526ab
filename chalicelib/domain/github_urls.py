"""GitHub repository URLs and tokens as callers send them, checked and reduced to one spelling per repository.

Messages never repeat the input: a URL may carry credentials, and a token is a credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from chalicelib import errors

_MAX_URL_LENGTH = 300
# Printable ASCII without space or backslash. Percent-encoding is refused outright rather than decoded,
# so `%2e%2e` and friends never get a chance to mean something after this check.
_URL_CHARACTERS = re.compile(r"[\x21-\x5b\x5d-\x7e]+")
_OWNER = re.compile(r"(?=.{1,39}\Z)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")

_MAX_TOKEN_LENGTH = 255
_TOKEN = re.compile(r"ghp_[A-Za-z0-9]{36}|ghs_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{22,255}")


@dataclass(frozen=True)
class GitHubUrl:
    """A repository on github.com. Owner and name are lowercased: GitHub compares them case-insensitively,
    and `Foo/Bar` registered after `foo/bar` must find the same repository."""

    owner: str
    name: str

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.name}"


def parse_github_url(url: str, *, field: str = "github_url") -> GitHubUrl:
    """Accept `https://github.com/{owner}/{repo}` with an optional `.git` and trailing `/`; refuse anything else."""
    if not isinstance(url, str) or not url:
        raise errors.InvalidInput.field(field, "must be a URL such as https://github.com/owner/repo")
    if len(url) > _MAX_URL_LENGTH or not _URL_CHARACTERS.fullmatch(url):
        raise errors.InvalidInput.field(
            field, "must be a plain https://github.com/owner/repo URL, without spaces or escaped characters"
        )
    if "?" in url or "#" in url:
        raise errors.InvalidInput.field(field, "must not have a query or a fragment")
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise errors.InvalidInput.field(field, "must start with https://")
    if "@" in parts.netloc:
        raise errors.InvalidInput.field(field, "must not contain credentials; send the token as github_token")
    if parts.netloc.lower() != "github.com":
        raise errors.InvalidInput.field(field, "must be a repository on github.com, without a port")
    return _repository(parts.path, field)


def _repository(path: str, field: str) -> GitHubUrl:
    path = path.removesuffix("/")
    segments = path.split("/")
    if len(segments) != 3 or segments[0] != "":
        raise errors.InvalidInput.field(field, "must name exactly an owner and a repository: /owner/repo")
    owner, name = segments[1], segments[2]
    if name.lower().endswith(".git"):
        name = name[: -len(".git")]
    if not _OWNER.fullmatch(owner):
        raise errors.InvalidInput.field(
            field, "owner must be 1 to 39 letters, digits or single hyphens, not starting or ending with a hyphen"
        )
    # GitHub refuses names ending in .git itself; refusing them here also keeps parsing idempotent.
    if not _NAME.fullmatch(name) or name in (".", "..") or name.lower().endswith(".git"):
        raise errors.InvalidInput.field(
            field, "repository name must be 1 to 100 letters, digits, dots, hyphens or underscores"
        )
    return GitHubUrl(owner=owner.lower(), name=name.lower())


def comparable(github_url: str) -> str:
    """The form in which two spellings of one repository's URL are equal.

    Docora stores URLs already in this form; repositories imported from the original Docora keep its spelling (a
    receiver must get the same `github_url` as before), which may have capitals or `.git`. Postgres indexes the same
    expression (sql/migrations/0012_accept_imported_token_hashes.sql).
    """
    return github_url.removesuffix(".git").lower()


def check_github_token(token: str, *, field: str = "github_token") -> str:
    """Return `token` when it has the shape of a classic, fine-grained or installation token.

    Only the shape: whether GitHub accepts it is for the GitHub adapter to find out.
    """
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        raise errors.InvalidInput.field(
            field, "must be a GitHub token: classic (ghp_), fine-grained (github_pat_) or installation (ghs_)"
        )
    return token
