"""One behaviour spec for the GitRemote port, run against StaticGitRemote and against DulwichGit on a git server."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.adapters.git_dulwich import DulwichGit
from chalicelib.domain.snapshots import TreeEntry
from docora_local.standins.git_server import GitServer
from tests.fakes import StaticGitRemote

TOKEN = "ghp_" + "t" * 36
FILES = {"README.md": b"# hello\n", "src/app.py": b"print('hi')\n", "assets/logo.bin": bytes(range(256))}
LATIN = os.fsdecode(b"caf\xe9.txt")  # a name that is not UTF-8, as a served work tree spells it
CALLS: dict[str, Callable[[Any, str, str | None], object]] = {
    "head": lambda git, url, token: git.head(url, "main", token),
    "fetch_tree": lambda git, url, token: git.fetch_tree(url, "main", token),
    "read_blobs": lambda git, url, token: list(git.read_blobs(url, token, ["a" * 40])),
}


class _Static:
    """The fake: each repository fails or wants a token on its own, and every call is one request."""

    def __init__(self) -> None:
        self.git = StaticGitRemote()

    def make_repo(self, name: str) -> Any:
        return self.git.add_repo(f"https://github.com/acme/{name}.git")

    def require_token(self, repo: Any, token: str) -> None:
        repo.require_token(token)

    def fail_with(self, repo: Any, status: int) -> None:
        repo.fail_with(status)

    def requests(self) -> int:
        return len(self.git.requests)


class _Served:
    """The adapter against git http-backend, whose refusals and failures hold for every repository it serves."""

    def __init__(self, server: GitServer, git: DulwichGit) -> None:
        self.server, self.git = server, git

    def make_repo(self, name: str) -> Any:
        return self.server.make_repo(name)

    def require_token(self, repo: Any, token: str) -> None:
        self.server.require_token(token)

    def fail_with(self, repo: Any, status: int) -> None:
        self.server.fail_with(status)

    def requests(self) -> int:
        return len(self.server.requests)


@pytest.fixture(params=["static", "dulwich"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[_Static | _Served]:
    if request.param == "static":
        yield _Static()
        return
    with GitServer(tmp_path / "server") as server:
        git = DulwichGit(str(tmp_path / "cache"), timeout=2.0)
        yield _Served(server, git)
        git.close()


@pytest.fixture
def repo(remote: _Static | _Served) -> Any:
    made = remote.make_repo("hello")
    made.commit(FILES)
    return made


def blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def entries(files: dict[str, bytes]) -> list[TreeEntry]:
    """Regular files as a listing gives them: in git's order, which is the byte order of whole paths."""
    found = [TreeEntry(os.fsencode(path), 0o100644, blob_id(content)) for path, content in files.items()]
    return sorted(found, key=lambda entry: entry.path)


def test_head_is_the_branch_tip_in_one_request(remote, repo):
    before = remote.requests()

    head = remote.git.head(repo.url, "main", None)

    assert head == repo.head()
    assert remote.requests() == before + 1


def test_an_empty_repository_or_a_missing_branch_has_no_head(remote):
    repo = remote.make_repo("hello")
    empty = remote.git.head(repo.url, "main", None)
    repo.commit(FILES)

    assert empty is None
    assert remote.git.head(repo.url, "trunk", None) is None
    assert remote.git.head(repo.url, "mai", None) is None


def test_a_tree_lists_its_regular_files_with_their_git_blob_ids(remote):
    repo = remote.make_repo("hello")
    repo.commit({**FILES, LATIN: b"latin"}, symlinks={"link": "README.md"}, submodules={"vendor/lib": "1" * 40})

    tree = remote.git.fetch_tree(repo.url, "main", None)

    assert tree.commit == repo.head()
    assert tree.entries == entries({**FILES, LATIN: b"latin"})
    assert (tree.docoraignore, tree.since, tree.removed) == (None, None, [])


def test_a_tree_brings_its_root_docoraignore(remote, repo):
    repo.commit({".docoraignore": b"*.log\n", "sub/.docoraignore": b"*.md\n"})

    tree = remote.git.fetch_tree(repo.url, "main", None)

    assert tree.docoraignore == b"*.log\n"


def test_the_tree_of_an_empty_repository_or_a_deleted_branch_is_not_found(remote, repo):
    empty = remote.make_repo("empty")
    remote.git.fetch_tree(repo.url, "main", None)
    repo.delete_branch("main")

    with pytest.raises(errors.NotFound, match="^branch main not found$"):
        remote.git.fetch_tree(empty.url, "main", None)
    with pytest.raises(errors.NotFound, match="^branch main not found$"):
        remote.git.fetch_tree(repo.url, "main", None)


def test_since_a_commit_listed_before_only_what_changed_is_listed(remote, repo):
    first = remote.git.fetch_tree(repo.url, "main", None)
    repo.commit({"src/app.py": b"changed\n", "src/new.py": b"new\n", "README.md": None})
    repo.commit({}, symlinks={"README.md": "src/app.py"})  # a file that turns into a symlink is gone as a file

    tree = remote.git.fetch_tree(repo.url, "main", None, since=first.commit)

    assert (tree.commit, tree.since) == (repo.head(), first.commit)
    assert tree.entries == entries({"src/app.py": b"changed\n", "src/new.py": b"new\n"})
    assert tree.removed == [b"README.md"]


def test_since_an_unknown_commit_or_across_a_docoraignore_change_the_whole_tree_is_listed(remote, repo):
    unknown = remote.git.fetch_tree(repo.url, "main", None, since="c" * 40)
    repo.commit({".docoraignore": b"*.md\n"})

    changed_rules = remote.git.fetch_tree(repo.url, "main", None, since=unknown.commit)

    assert unknown.since is None and unknown.entries == entries(FILES)
    assert changed_rules.since is None and changed_rules.entries == entries({**FILES, ".docoraignore": b"*.md\n"})


def test_since_the_commit_a_force_push_replaced_the_new_history_is_listed(remote, repo):
    first = remote.git.fetch_tree(repo.url, "main", None)
    head = repo.force_push({"only.txt": b"a new beginning\n", "README.md": FILES["README.md"]})

    tree = remote.git.fetch_tree(repo.url, "main", None, since=first.commit)

    assert tree.commit == head
    assert tree.entries == entries({"only.txt": b"a new beginning\n"})
    assert tree.removed == [b"assets/logo.bin", b"src/app.py"]


def test_blobs_are_read_by_id_in_one_request(remote, repo):
    wanted = {blob_id(content): content for content in FILES.values()}
    before = remote.requests()

    read = dict(remote.git.read_blobs(repo.url, None, wanted))

    assert read == wanted
    assert remote.requests() == before + 1


def test_reading_no_blobs_sends_nothing(remote, repo):
    before = remote.requests()

    read = list(remote.git.read_blobs(repo.url, None, []))

    assert read == []
    assert remote.requests() == before


def test_a_blob_the_repository_lacks_is_unavailable(remote, repo):
    with pytest.raises(errors.Unavailable, match="^git server did not answer$"):
        list(remote.git.read_blobs(repo.url, None, [blob_id(FILES["README.md"]), "b" * 40]))


def test_the_right_token_reads_a_protected_repository(remote, repo):
    remote.require_token(repo, TOKEN)

    tree = remote.git.fetch_tree(repo.url, "main", TOKEN)
    read = dict(remote.git.read_blobs(repo.url, TOKEN, [entry.blob_id for entry in tree.entries]))

    assert remote.git.head(repo.url, "main", TOKEN) == tree.commit == repo.head()
    assert sorted(read.values()) == sorted(FILES.values())


@pytest.mark.parametrize("call", CALLS)
def test_a_wrong_token_is_unprocessable(remote, repo, call):
    remote.require_token(repo, TOKEN)

    with pytest.raises(errors.Unprocessable, match="^GitHub rejected the token$"):
        CALLS[call](remote.git, repo.url, "ghp_" + "w" * 36)


@pytest.mark.parametrize("call", CALLS)
def test_a_protected_repository_without_a_token_is_not_found(remote, repo, call):
    remote.require_token(repo, TOKEN)

    with pytest.raises(errors.NotFound, match="^repository not found$"):
        CALLS[call](remote.git, repo.url, None)


@pytest.mark.parametrize("call", CALLS)
def test_a_missing_repository_is_not_found(remote, repo, call):
    with pytest.raises(errors.NotFound, match="^repository not found$"):
        CALLS[call](remote.git, repo.url.replace("hello", "nope"), TOKEN)


@pytest.mark.parametrize(
    ("status", "refusal", "message"),
    [
        (404, errors.NotFound, "repository not found"),
        (403, errors.Unprocessable, "GitHub rejected the token"),
        (502, errors.Unavailable, "git server did not answer"),
    ],
)
@pytest.mark.parametrize("call", CALLS)
def test_a_server_answering_an_error_is_read_as_the_adapter_reads_it(remote, repo, call, status, refusal, message):
    remote.fail_with(repo, status)

    with pytest.raises(refusal, match=f"^{message}$"):
        CALLS[call](remote.git, repo.url, TOKEN)


def test_ignore_rules_have_gitignore_semantics(remote):
    ignored = remote.git.ignore_filter(b"# output\nbuild/\n*.log\n!keep.log\n/secret.txt\n")

    paths = [b"build/out.js", b"src/build/x.py", b"debug.log", b"logs/keep.log", b"secret.txt", b"src/secret.txt"]
    assert [ignored(path) for path in paths] == [True, True, True, False, True, False]
    assert (ignored(b"caf\xe9.log"), ignored(b"caf\xe9.txt")) == (True, False)
