"""DulwichGit against a real git smart-HTTP server (git http-backend, protocol v2) on loopback."""

from __future__ import annotations

import base64
import os
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich.repo import Repo

from chalicelib import errors
from chalicelib.adapters.git_cache import MARKER
from chalicelib.adapters.git_dulwich import DulwichGit
from chalicelib.domain.snapshots import FetchedTree, TreeEntry
from docora_local.standins.git_server import GitServer, TestRepo

TOKEN = "ghs_" + "S3cr3tT0ken" * 3
FILES = {
    "README.md": b"# hello\n",
    "src/app.py": b"print('hi')\n",
    "src/deep/er/module.py": b"x = 1\n",
    "assets/logo.bin": bytes(range(256)) * 4,
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "server") as server:
        yield server


@pytest.fixture
def cache_root(tmp_path: Path) -> Path:
    return tmp_path / "docora"


@pytest.fixture
def git(cache_root: Path) -> Iterator[DulwichGit]:
    git = DulwichGit(str(cache_root), timeout=5.0)
    yield git
    git.close()


@pytest.fixture
def repo(server: GitServer) -> TestRepo:
    repo = server.make_repo("hello")
    repo.commit(FILES, "first")
    return repo


def _expected_entries(repo: TestRepo) -> list[TreeEntry]:
    return [
        TreeEntry(path=path, mode=mode, blob_id=sha)
        for path, (mode, kind, sha) in sorted(repo.ls_tree().items())
        if kind == "blob" and stat.S_ISREG(mode)
    ]


def _pack_bytes(server: GitServer) -> int:
    """The size of the last answer, which for a fetch is the one carrying the pack."""
    return server.requests[-1].response_bytes


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _assert_no_secret(error: BaseException) -> None:
    for link in _chain(error):
        for secret in (TOKEN, "x-access-token", base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()):
            assert secret not in f"{link!s} {link!r}", link


def _packs(folder: Path) -> set[str]:
    return {path.name for path in (folder / "objects" / "pack").glob("*.pack")}


def test_head_is_the_branch_tip_in_one_request(server, git, repo):
    server.clear_log()

    head = git.head(repo.url, "main", None)

    assert head == repo.head()
    assert [(seen.method, seen.path) for seen in server.requests] == [("POST", "/hello.git/git-upload-pack")]


def test_head_of_a_missing_or_renamed_branch_is_none(git, repo):
    repo.rename_branch("main", "trunk")

    assert git.head(repo.url, "main", None) is None
    assert git.head(repo.url, "trunk", None) == repo.head("trunk")
    assert git.head(repo.url, "trun", None) is None  # ref-prefix matches by prefix; heads must match whole


def test_an_empty_repository_has_no_head_and_no_tree(server, git):
    empty = server.make_repo("empty")

    assert git.head(empty.url, "main", None) is None
    with pytest.raises(errors.NotFound, match="^branch main not found$"):
        git.fetch_tree(empty.url, "main", None)


def test_fetch_tree_lists_regular_files_with_their_blob_ids_and_fetches_no_blob(git, repo):
    repo.commit(
        {"bin/run.sh": b"#!/bin/sh\n"},
        "more",
        symlinks={"link-to-readme": "README.md", "src/dangling": "../nowhere"},
        submodules={"vendor/lib": "1" * 40},
    )
    os.chmod(repo.work / "bin/run.sh", 0o755)  # noqa: S103 (the executable bit is what git must record)
    head = repo.commit({}, "make it executable")

    tree = git.fetch_tree(repo.url, "main", None)

    assert tree.commit == head
    assert sorted(tree.entries, key=lambda entry: entry.path) == _expected_entries(repo)
    assert {entry.path for entry in tree.entries} == {p.encode() for p in [*FILES, "bin/run.sh"]}
    assert TreeEntry(b"bin/run.sh", 0o100755, repo.ls_tree()[b"bin/run.sh"][2]) in tree.entries
    assert tree.docoraignore is None
    assert repo.ls_tree()[b"README.md"][2].encode() not in Repo(str(git.cache_folder(repo.url))).object_store


def test_paths_that_are_not_utf8_are_listed_as_git_stores_them(git, repo):
    repo.commit({os.fsdecode(b"caf\xe9.txt"): b"latin-1 name\n"})

    tree = git.fetch_tree(repo.url, "main", None)

    assert b"caf\xe9.txt" in {entry.path for entry in tree.entries}


def test_an_incremental_fetch_reuses_the_cache_and_moves_only_new_objects(server, git, tmp_path):
    big = server.make_repo("big")
    big.commit(
        {f"dir{d}/sub{s}/file{f}.txt": f"{d} {s} {f}\n".encode() for d in range(20) for s in range(5) for f in range(5)}
    )
    git.fetch_tree(big.url, "main", None)
    first_packs = _packs(git.cache_folder(big.url))
    changed = {"dir3/sub1/file2.txt": b"changed\n", "dir10/sub4/file0.txt": b"changed\n", "dir19/new.txt": b"new\n"}
    head = big.commit(changed, "three files")
    server.clear_log()

    tree = git.fetch_tree(big.url, "main", None)

    assert tree.commit == head
    assert sorted(tree.entries, key=lambda entry: entry.path) == _expected_entries(big)
    assert first_packs < _packs(git.cache_folder(big.url))  # the first pack is still there: the cache was reused
    incremental_bytes = _pack_bytes(server)
    fresh = DulwichGit(str(tmp_path / "fresh"), timeout=5.0)
    fresh.fetch_tree(big.url, "main", None)
    fresh.close()
    assert incremental_bytes * 10 < _pack_bytes(server)


def test_since_a_cached_commit_only_the_changed_files_are_listed(git, repo):
    first = git.fetch_tree(repo.url, "main", None)
    repo.commit({"src/app.py": b"print('changed')\n", "src/new.py": b"new\n", "README.md": None})
    repo.commit({}, symlinks={"README.md": "src/app.py"})  # a file that turns into a symlink is gone as a file
    listing = repo.ls_tree()

    tree = git.fetch_tree(repo.url, "main", None, since=first.commit)

    assert tree.since == first.commit and tree.commit == repo.head()
    assert sorted(entry.path for entry in tree.entries) == [b"src/app.py", b"src/new.py"]
    assert all(entry.blob_id == listing[entry.path][2] for entry in tree.entries)
    assert tree.removed == [b"README.md"]
    assert tree.touched_paths() == ["README.md", "src/app.py", "src/new.py"]


def test_the_whole_tree_is_listed_when_the_cache_lacks_the_commit_or_docoraignore_changed(git, repo):
    unknown = git.fetch_tree(repo.url, "main", None, since="c" * 40)
    assert unknown.since is None and sorted(unknown.entries, key=lambda entry: entry.path) == _expected_entries(repo)
    repo.commit({".docoraignore": b"*.md\n"})

    changed_rules = git.fetch_tree(repo.url, "main", None, since=unknown.commit)

    assert changed_rules.since is None and changed_rules.removed == []
    assert sorted(changed_rules.entries, key=lambda entry: entry.path) == _expected_entries(repo)
    assert changed_rules.docoraignore == b"*.md\n"


def test_an_unchanged_tip_is_not_fetched_again(server, git, repo):
    first = git.fetch_tree(repo.url, "main", None)
    server.clear_log()

    second = git.fetch_tree(repo.url, "main", None)

    assert second == first
    assert [(seen.method, seen.path) for seen in server.requests] == [("POST", "/hello.git/git-upload-pack")]  # ls-refs


def test_blobs_fetched_by_id_in_one_request_read_back_exactly(server, git, repo):
    large = os.urandom(3 * 2**20)
    repo.commit({"large.bin": large, "empty.txt": b""})
    git.fetch_tree(repo.url, "main", None)
    listing = repo.ls_tree()
    wanted = {listing[name.encode()][2]: name for name in ("README.md", "assets/logo.bin", "large.bin", "empty.txt")}
    cached_files = sorted(git.cache_folder(repo.url).rglob("*"))
    server.clear_log()

    read = list(git.read_blobs(repo.url, None, wanted))

    assert [(seen.method, seen.path) for seen in server.requests] == [("POST", "/hello.git/git-upload-pack")]
    contents = {**FILES, "large.bin": large, "empty.txt": b""}
    assert sorted(read) == sorted((blob_id, contents[name]) for blob_id, name in wanted.items())
    assert sorted(git.cache_folder(repo.url).rglob("*")) == cached_files  # the pack was read from a file that is gone
    assert all(
        blob_id.encode() not in Repo(str(git.cache_folder(repo.url))).object_store for blob_id in wanted
    )  # the cache keeps trees


def test_blobs_the_server_sends_as_deltas_are_resolved(server, git):
    """Two versions of a large text differ by a line: git packs one as a delta of the other."""
    versions = server.make_repo("versions")
    text = "".join(f"line {n}: the quick brown fox jumps over the lazy dog\n" for n in range(4000)).encode()
    edited = text.replace(b"line 2000:", b"line 2000 (edited):")
    versions.commit({"a.txt": text, "b.txt": edited, "c.txt": edited + b"one more line\n"})
    listing = versions.ls_tree()
    wanted = {listing[name][2]: content for name, content in [(b"a.txt", text), (b"b.txt", edited)]}
    wanted[listing[b"c.txt"][2]] = edited + b"one more line\n"
    server.clear_log()

    read = dict(git.read_blobs(versions.url, None, wanted))

    assert read == wanted
    assert server.requests[-1].response_bytes < len(text)  # so at least two of the three came as deltas


def test_a_blob_the_server_does_not_have_is_unavailable(git, repo):
    with pytest.raises(errors.Unavailable, match="^git server did not answer$"):
        list(git.read_blobs(repo.url, None, ["b" * 40]))


def test_docoraignore_is_read_and_matched_with_gitignore_semantics(git, repo):
    patterns = b"# build output\nbuild/\n*.log\n!keep.log\n/secret.txt\ndocs/**/draft-*\r\n"
    repo.commit({".docoraignore": patterns})

    tree = git.fetch_tree(repo.url, "main", None)
    ignored = git.ignore_filter(tree.docoraignore or b"")

    assert tree.docoraignore == patterns
    expectations = {
        "build/out.js": True,
        "src/build/nested/x.py": True,
        "debug.log": True,
        "logs/keep.log": False,
        "secret.txt": True,
        "src/secret.txt": False,
        "docs/a/b/draft-1.md": True,
        "docs/final.md": False,
        "README.md": False,
        b"caf\xe9.log": True,
        b"caf\xe9.txt": False,
    }
    assert {path: ignored(path) for path in expectations} == expectations


def test_a_changed_docoraignore_is_fetched_again(git, repo):
    repo.commit({".docoraignore": b"*.md\n"})
    git.fetch_tree(repo.url, "main", None)
    repo.commit({".docoraignore": b"*.py\n"})

    tree = git.fetch_tree(repo.url, "main", None)

    assert tree.docoraignore == b"*.py\n"


def test_the_token_goes_in_a_basic_header_and_never_to_disk(server, git, repo, cache_root):
    server.require_token(TOKEN)
    server.clear_log()

    head = git.head(repo.url, "main", TOKEN)
    tree = git.fetch_tree(repo.url, "main", TOKEN)
    list(git.read_blobs(repo.url, TOKEN, [entry.blob_id for entry in tree.entries]))

    assert head == tree.commit == repo.head()
    assert server.requests and all(seen.authorized and seen.status == 200 for seen in server.requests)
    assert not any(TOKEN in seen.path for seen in server.requests)
    secrets = [TOKEN.encode(), base64.b64encode(f"x-access-token:{TOKEN}".encode()), b"x-access-token"]
    for path in cache_root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(secret in content for secret in secrets), path


@pytest.mark.parametrize("call", ["head", "fetch_tree", "read_blobs"])
def test_a_wrong_token_is_unprocessable(server, git, repo, call):
    server.require_token(TOKEN)
    wrong = "ghp_" + "w" * 36

    with pytest.raises(errors.Unprocessable) as raised:
        _call(git, call, repo.url, wrong)

    assert str(raised.value) == "GitHub rejected the token"
    assert all(wrong not in f"{link!s} {link!r}" for link in _chain(raised.value))


def test_a_forbidden_answer_is_unprocessable(server, git, repo):
    server.fail_with(403)

    with pytest.raises(errors.Unprocessable, match="^GitHub rejected the token$"):
        git.head(repo.url, "main", TOKEN)


def test_a_token_that_could_split_a_header_is_refused_before_sending(server, git, repo):
    server.clear_log()

    with pytest.raises(errors.Unprocessable):
        git.head(repo.url, "main", "ghp_abc\r\nX-Evil: 1")

    assert server.requests == []


@pytest.mark.parametrize("call", ["head", "fetch_tree", "read_blobs"])
def test_a_protected_repository_without_a_token_is_not_found(server, git, repo, call):
    server.require_token(TOKEN)

    with pytest.raises(errors.NotFound, match="^repository not found$"):
        _call(git, call, repo.url, None)


@pytest.mark.parametrize("call", ["head", "fetch_tree", "read_blobs"])
def test_a_missing_repository_is_not_found(server, git, call):
    with pytest.raises(errors.NotFound, match="^repository not found$"):
        _call(git, call, f"{server.url}/nope.git", TOKEN)


@pytest.mark.parametrize("call", ["head", "fetch_tree", "read_blobs"])
def test_a_failing_server_is_unavailable(server, git, repo, call):
    server.fail_with(502)

    with pytest.raises(errors.Unavailable, match="^git server did not answer$") as raised:
        _call(git, call, repo.url, TOKEN)

    _assert_no_secret(raised.value)


@pytest.mark.parametrize("call", ["head", "fetch_tree", "read_blobs"])
def test_a_hanging_server_is_unavailable_within_the_timeout(server, repo, call, tmp_path):
    git = DulwichGit(str(tmp_path / "cache"), timeout=0.5)
    server.hang()
    started = time.monotonic()

    with pytest.raises(errors.Unavailable, match="^git server did not answer$") as raised:
        _call(git, call, repo.url, TOKEN)

    assert time.monotonic() - started < 2.0
    _assert_no_secret(raised.value)
    git.close()


def test_an_unreachable_server_is_unavailable(git):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket closes

    with pytest.raises(errors.Unavailable):
        git.head(f"http://127.0.0.1:{port}/x.git", "main", None)
    with pytest.raises(errors.Unavailable):
        git.fetch_tree(f"http://127.0.0.1:{port}/x.git", "main", None)


def test_a_deleted_branch_is_not_found_after_earlier_fetches(git, repo):
    git.fetch_tree(repo.url, "main", None)
    repo.delete_branch("main")

    with pytest.raises(errors.NotFound, match="^branch main not found$"):
        git.fetch_tree(repo.url, "main", None)


def test_a_force_push_that_rewrites_history_is_followed(git, repo):
    git.fetch_tree(repo.url, "main", None)
    head = repo.force_push({"only.txt": b"a new beginning\n"})

    tree = git.fetch_tree(repo.url, "main", None)

    assert tree == FetchedTree(commit=head, entries=_expected_entries(repo), docoraignore=None)


def _garbage_packs(folder: Path) -> None:
    for pack in (folder / "objects" / "pack").glob("*.pack"):
        pack.write_bytes(b"garbage" * 20)


def _garbage_indexes(folder: Path) -> None:
    for index in (folder / "objects" / "pack").glob("*.idx"):
        index.write_bytes(b"garbage" * 20)


def _truncated_packs(folder: Path) -> None:
    for pack in (folder / "objects" / "pack").glob("*.pack"):
        pack.write_bytes(pack.read_bytes()[:100])


def _no_objects(folder: Path) -> None:
    shutil.rmtree(folder / "objects")


def _garbage_config(folder: Path) -> None:
    (folder / "config").write_bytes(b"[core\n\xff")


def _garbage_ref(folder: Path) -> None:
    (folder / "refs" / "heads" / "main").write_bytes(b"not a sha\n")


def _garbage_shallow(folder: Path) -> None:
    (folder / "shallow").write_bytes(b"not a sha\n")


def _a_file_instead(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.write_bytes(b"not a folder")


@pytest.mark.parametrize(
    "damage",
    [
        _garbage_packs,
        _garbage_indexes,
        _truncated_packs,
        _no_objects,
        _garbage_config,
        _garbage_ref,
        _garbage_shallow,
        _a_file_instead,
    ],
)
def test_a_damaged_cache_is_discarded_and_refetched(git, repo, damage):
    git.fetch_tree(repo.url, "main", None)
    git.close()
    head = repo.commit({"after.txt": b"after\n"})
    damage(git.cache_folder(repo.url))

    tree = git.fetch_tree(repo.url, "main", None)

    assert tree == FetchedTree(commit=head, entries=_expected_entries(repo), docoraignore=None)


def test_a_cache_folder_marked_for_another_remote_is_replaced(server, git, repo):
    other = server.make_repo("other")
    other.commit({"other.txt": b"other\n"})
    git.fetch_tree(other.url, "main", None)
    folder = git.cache_folder(repo.url)
    git.cache_folder(other.url).rename(folder)  # as if a digest had collided: the marker names the other remote
    planted = folder / "planted"
    planted.write_text("from the other remote")

    tree = git.fetch_tree(repo.url, "main", None)

    assert tree.commit == repo.head()
    assert not planted.exists()
    assert (folder / MARKER).read_text().strip() == repo.url


def test_low_free_space_evicts_the_least_recently_used_caches(server, git, repo, cache_root):
    others = [server.make_repo(name) for name in ("old", "recent")]
    for other in others:
        other.commit({"a.txt": b"a\n"})
        git.fetch_tree(other.url, "main", None)
    os.utime(git.cache_folder(others[0].url) / MARKER, (1, 1))
    unrelated = cache_root / "not-a-cache"
    unrelated.mkdir()
    starved = DulwichGit(str(cache_root), timeout=5.0, min_free_bytes=2**62)  # more than any disk: all others go

    tree = starved.fetch_tree(repo.url, "main", None)

    assert tree.commit == repo.head()
    assert sorted(cache_root.iterdir()) == sorted([starved.cache_folder(repo.url), unrelated])
    starved.close()


def _call(git: DulwichGit, call: str, url: str, token: str | None) -> object:
    if call == "head":
        return git.head(url, "main", token)
    if call == "fetch_tree":
        return git.fetch_tree(url, "main", token)
    return list(git.read_blobs(url, token, ["a" * 40]))
