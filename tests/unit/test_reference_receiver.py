"""The reference receiver without sockets: what it verifies, what it refuses, and what it writes where."""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from chalicelib import __version__
from chalicelib.domain import chunks, webhooks
from chalicelib.domain.webhooks import RepositoryRef

RECEIVER_DIR = Path(__file__).resolve().parents[2] / "examples" / "receiver"
KEY = "reference-receiver-key-0123456789"
REPO = RepositoryRef("repo_0123456789abcdef01234567", "https://github.com/acme/widgets", "acme", "widgets")
COMMIT = "c" * 40


@pytest.fixture(scope="module")
def modules() -> Iterator[tuple[ModuleType, ModuleType]]:
    # The receiver is a script folder, not a package: its modules import each other by their bare names.
    sys.path.insert(0, str(RECEIVER_DIR))
    try:
        yield importlib.import_module("receiver"), importlib.import_module("docora_mirror")
    finally:
        sys.path.remove(str(RECEIVER_DIR))


@pytest.fixture
def mirror_module(modules):
    return modules[1]


@pytest.fixture
def receiver(modules, tmp_path):
    return modules[0].Receiver(KEY, tmp_path)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now() -> datetime:
    return datetime.now(UTC)


def create(path: str, data: bytes, *, binary: bool = False, chunk=None, content: str | None = None) -> bytes:
    if content is None:
        content = base64.b64encode(data).decode() if binary else data.decode()
    encoding = "base64" if binary else None
    return webhooks.create_body(REPO, path, sha(data), len(data), content, encoding, COMMIT, now(), chunk)


def post(receiver, event: str, body: bytes, *, key: str = KEY, at: int | None = None, path: str | None = None):
    at = int(time.time()) if at is None else at
    headers = webhooks.headers("app_x", key, body, event, "dlv_test", at, __version__)
    return receiver.handle(path or f"/{event}", headers, body)


def tree(root: Path) -> dict[str, bytes]:
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            full = Path(folder) / name
            found[full.relative_to(root).as_posix()] = full.read_bytes()
    return found


def test_a_signed_create_is_written_under_owner_and_name(receiver, tmp_path):
    status, line = post(receiver, "create", create("é/漢字/🚀 party.md", "Ça marche 🚀\n".encode()))

    assert status == 200
    assert line.startswith("create acme/widgets é/漢字/🚀 party.md: written")
    assert (tmp_path / "acme" / "widgets" / "é" / "漢字" / "🚀 party.md").read_bytes() == "Ça marche 🚀\n".encode()


@pytest.mark.parametrize(
    ("key", "skew"), [("not-the-key", 0), (KEY, 301), (KEY, -301)], ids=["wrong key", "too old", "too new"]
)
def test_a_request_that_does_not_verify_is_refused_with_401_and_changes_nothing(receiver, tmp_path, key, skew):
    status, _ = post(receiver, "create", create("a.md", b"a"), key=key, at=int(time.time()) - skew)

    assert status == 401
    assert not (tmp_path / "acme").exists()


def test_a_tampered_body_is_refused_with_401(receiver):
    body = create("a.md", b"a")
    headers = webhooks.headers("app_x", KEY, body, "create", "dlv_test", int(time.time()), __version__)

    status, _ = receiver.handle("/create", headers, body.replace(b'"a.md"', b'"b.md"'))

    assert status == 401


def test_the_previous_signature_is_accepted_during_a_rotation_overlap(modules, tmp_path):
    old_key_receiver = modules[0].Receiver("the-old-key-0123456789", tmp_path)
    body = create("a.md", b"a")
    headers = webhooks.headers(
        "app_x", KEY, body, "create", "dlv_test", int(time.time()), __version__, previous_key="the-old-key-0123456789"
    )

    assert old_key_receiver.handle("/create", headers, body)[0] == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/create", b"not json", 400),
        ("/create", b"[1, 2]", 400),
        ("/create", b'{"repository": {"owner": "acme", "name": "widgets"}}', 400),
        ("/delete", None, 400),  # a create body sent to /delete: the signed body wins
        ("/elsewhere", None, 404),
    ],
    ids=["not json", "not an object", "no file", "event mismatch", "unknown path"],
)
def test_malformed_or_misrouted_bodies_are_refused(receiver, tmp_path, path, body, status):
    body = create("a.md", b"a") if body is None else body

    assert post(receiver, "create", body, path=path)[0] == status
    assert not (tmp_path / "acme" / "widgets" / "a.md").exists()


def test_a_path_prefix_in_base_url_is_fine(receiver, tmp_path):
    assert post(receiver, "create", create("a.md", b"a"), path="/hooks/docora/create")[0] == 200


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../escape", "a/../../escape", "a/..", "..", ".", "./a", "a/./b", "a//b", "a/", "",
     "a\\b", "..\\escape", "a\0b", "bad\udc80name"],
)  # fmt: skip
def test_paths_that_could_leave_the_mirror_are_refused(receiver, mirror_module, tmp_path, path):
    with pytest.raises(mirror_module.Refused):
        mirror_module.checked_path(path)
    body = webhooks.create_body(REPO, path, sha(b"x"), 1, "x", None, COMMIT, now())

    status, _ = post(receiver, "create", body)

    assert status == 400
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


@pytest.mark.parametrize("path", ["..hidden", "a..b/c", ".github/workflows/ci.yml", "a b/ c .md", "漢字/😀"])
def test_unusual_but_safe_paths_are_accepted(receiver, mirror_module, tmp_path, path):
    assert post(receiver, "create", create(path, b"ok"))[0] == 200
    assert (tmp_path / "acme" / "widgets" / path).read_bytes() == b"ok"


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        ("..", "x"),
        ("acme", ".."),
        ("a/b", "c"),
        ("a\\b", "c"),
        ("", "x"),
        ("acme", "bad\udc80"),
        (".docora-receiver", "x"),
    ],
)
def test_repository_names_that_could_leave_the_folder_are_refused(receiver, owner, name):
    repo = RepositoryRef(REPO.repository_id, REPO.github_url, owner, name)
    body = webhooks.create_body(repo, "a.md", sha(b"a"), 1, "a", None, COMMIT, now())

    assert post(receiver, "create", body)[0] == 400


def test_a_symbolic_link_inside_the_mirror_cannot_lead_outside(receiver, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "acme" / "widgets").mkdir(parents=True)
    (tmp_path / "acme" / "widgets" / "link").symlink_to(outside)

    status, _ = post(receiver, "create", create("link/x.md", b"x"))

    assert status == 400
    assert list(outside.iterdir()) == []


def test_content_that_does_not_match_sha_or_size_is_refused_and_nothing_is_written(receiver, tmp_path):
    wrong_sha = webhooks.create_body(REPO, "a.md", sha(b"other"), 1, "a", None, COMMIT, now())
    wrong_size = webhooks.create_body(REPO, "a.md", sha(b"a"), 2, "a", None, COMMIT, now())
    bad_base64 = webhooks.create_body(REPO, "a.bin", sha(b"a"), 1, "!!!!", "base64", COMMIT, now())

    statuses = [post(receiver, "create", body)[0] for body in (wrong_sha, wrong_size, bad_base64)]

    assert statuses == [400, 400, 400]
    assert tree(tmp_path / "acme") == {}
    assert list((tmp_path / ".docora-receiver" / "tmp").iterdir()) == []


def test_duplicates_change_nothing_and_are_answered_200(receiver, tmp_path):
    body = create("a.md", b"a")
    post(receiver, "create", body)
    written = (tmp_path / "acme" / "widgets" / "a.md").stat().st_mtime_ns

    status, line = post(receiver, "create", body)

    assert status == 200
    assert "unchanged" in line
    assert (tmp_path / "acme" / "widgets" / "a.md").stat().st_mtime_ns == written


def test_update_then_delete_removes_the_file_and_its_empty_folders_but_not_the_mirror(receiver, tmp_path):
    post(receiver, "create", create("deep/er/a.md", b"1"))
    post(receiver, "create", create("deep/keep.md", b"k"))
    update = webhooks.update_body(REPO, "deep/er/a.md", sha(b"2"), 1, "2", None, sha(b"1"), COMMIT, now())
    # The delete names an older sha than the mirror holds, as after a lost answer: the file goes anyway.
    delete = webhooks.delete_body(REPO, "deep/er/a.md", sha(b"1"), COMMIT, now())
    delete_keep = webhooks.delete_body(REPO, "deep/keep.md", sha(b"k"), COMMIT, now())

    assert post(receiver, "update", update)[0] == 200
    assert (tmp_path / "acme" / "widgets" / "deep" / "er" / "a.md").read_bytes() == b"2"
    assert post(receiver, "delete", delete)[0] == 200
    assert tree(tmp_path / "acme") == {"widgets/deep/keep.md": b"k"}
    assert post(receiver, "delete", delete_keep)[0] == 200
    assert post(receiver, "delete", delete_keep) == (200, "delete acme/widgets deep/keep.md: already absent [dlv_test]")
    assert list((tmp_path / "acme" / "widgets").iterdir()) == []


def slices_of(data: bytes, slice_chars: int, path: str = "big.bin") -> list[bytes]:
    texts = list(chunks.base64_slices([data], slice_chars))
    transfer = chunks.chunk_id("dlv_big")
    return [
        create(path, data, binary=True, content=text, chunk=chunks.Chunk(transfer, index, len(texts)))
        for index, text in enumerate(texts)
    ]


def test_chunks_are_kept_until_complete_then_joined_in_index_order(receiver, tmp_path):
    data = os.urandom(1000)
    bodies = slices_of(data, 150)  # 150 is not a multiple of 4: slices end mid base64 group
    target = tmp_path / "acme" / "widgets" / "big.bin"

    lines = [post(receiver, "create", body)[1] for body in [*bodies[1:], bodies[0]]]

    assert target.read_bytes() == data
    assert "kept" in lines[0] and "written" in lines[-1]
    assert list((tmp_path / ".docora-receiver" / "transfers").iterdir()) == []


def test_a_restart_between_slices_loses_nothing(modules, tmp_path):
    data = os.urandom(2000)
    bodies = slices_of(data, 400)
    first = modules[0].Receiver(KEY, tmp_path)
    for body in bodies[:3]:
        post(first, "create", body)

    restarted = modules[0].Receiver(KEY, tmp_path)
    statuses = [post(restarted, "create", body)[0] for body in bodies[3:]]

    assert statuses == [200] * (len(bodies) - 3)
    assert (tmp_path / "acme" / "widgets" / "big.bin").read_bytes() == data


def test_a_resend_from_slice_zero_and_a_late_duplicate_slice_are_harmless(receiver, tmp_path):
    data = os.urandom(1500)
    bodies = slices_of(data, 400)

    for body in [*bodies[:2], *bodies, bodies[-1], bodies[0]]:
        assert post(receiver, "create", body)[0] == 200

    assert (tmp_path / "acme" / "widgets" / "big.bin").read_bytes() == data
    assert list((tmp_path / ".docora-receiver" / "transfers").iterdir()) == []


def test_a_reassembled_file_that_does_not_match_is_refused_and_its_slices_dropped(receiver, tmp_path):
    data = os.urandom(900)
    texts = list(chunks.base64_slices([data], 400))
    chunk_id = chunks.chunk_id("dlv_bad")
    bodies = [
        webhooks.create_body(
            REPO, "big.bin", sha(b"something else"), len(data), text, "base64", COMMIT, now(),
            chunks.Chunk(chunk_id, index, len(texts)),
        )
        for index, text in enumerate(texts)
    ]  # fmt: skip

    statuses = [post(receiver, "create", body)[0] for body in bodies]

    assert statuses == [200] * (len(bodies) - 1) + [400]
    assert not (tmp_path / "acme" / "widgets" / "big.bin").exists()
    assert list((tmp_path / ".docora-receiver" / "transfers").iterdir()) == []


def test_sync_failed_is_acknowledged_and_touches_nothing(receiver, tmp_path):
    body = webhooks.sync_failed_body(REPO, "git server did not answer", 5, 5, now(), 5, now())

    status, line = post(receiver, "sync_failed", body)

    assert status == 200
    assert line.startswith("sync_failed acme/widgets: Docora cannot read the repository (git server did not answer)")
    assert not (tmp_path / "acme").exists()


def test_a_binary_file_sent_whole_is_base64_decoded(receiver, tmp_path):
    data = b"\x89PNG\r\n\x1a\n\x00\x01\xff"

    assert post(receiver, "create", create("logo.png", data, binary=True))[0] == 200
    assert (tmp_path / "acme" / "widgets" / "logo.png").read_bytes() == data
