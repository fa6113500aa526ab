"""The git smart-HTTP stand-in of `make run GITHUB=local`: a folder of repositories, served as GitHub does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from docora_local.standins.git_http import FolderServer
from docora_local.standins.git_server import git


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    server = FolderServer(("127.0.0.1", 0), tmp_path)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def commit_in(work: Path) -> str:
    git("init", "-q", "-b", "main", work)
    (work / "README.md").write_text("hi\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).decode().strip()


def test_a_work_tree_is_served_at_its_github_style_url(served):
    url, folder = served
    head = commit_in(folder / "acme" / "widgets")

    refs = git("ls-remote", f"{url}/acme/widgets.git").decode()

    assert f"{head}\trefs/heads/main" in refs.splitlines()


def test_a_bare_repository_is_served_whatever_the_case_of_its_name(served):
    url, folder = served
    head = commit_in(folder / "work")
    git("clone", "-q", "--bare", folder / "work", folder / "Acme" / "Gadgets.git")

    refs = git("ls-remote", f"{url}/acme/gadgets.git").decode()

    assert f"{head}\trefs/heads/main" in refs.splitlines()


def test_an_unknown_repository_is_not_found(served):
    url, _ = served

    with pytest.raises(RuntimeError, match="not found|404"):
        git("ls-remote", f"{url}/acme/missing.git")
