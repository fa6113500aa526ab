"""What a run must end with: every app holds each repository as its last commit says, and the store agrees."""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterable

from chalicelib.domain.bundles import BundleSlot, StoredContent
from docora_local.harness.mirror import Files, MirrorReceiver
from docora_local.harness.scan_stack import ScanStack
from docora_local.standins.git_server import TestRepo, git

# Foreign keys should make each of these impossible; the point is to check rather than trust.
ORPHANS = {
    "snapshot without repository": """
        SELECT count(*) FROM snapshots s WHERE NOT EXISTS (SELECT 1 FROM repositories r WHERE r.id = s.repository_id)
    """,
    "snapshot file without snapshot": """
        SELECT count(*) FROM snapshot_files f
         WHERE NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.repository_id = f.repository_id)
    """,
    "skipped file without snapshot": """
        SELECT count(*) FROM snapshot_skipped_files f
         WHERE NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.repository_id = f.repository_id)
    """,
    "watch without app or repository": """
        SELECT count(*) FROM watches w
         WHERE NOT EXISTS (SELECT 1 FROM apps a WHERE a.id = w.app_id)
            OR NOT EXISTS (SELECT 1 FROM repositories r WHERE r.id = w.repository_id)
    """,
    "ledger row without watch": """
        SELECT count(*) FROM delivered_files d
         WHERE NOT EXISTS (SELECT 1 FROM watches w WHERE w.app_id = d.app_id AND w.repository_id = d.repository_id)
    """,
    "attempt without watch": """
        SELECT count(*) FROM delivery_attempts d
         WHERE NOT EXISTS (SELECT 1 FROM watches w WHERE w.app_id = d.app_id AND w.repository_id = d.repository_id)
    """,
}


def repository_files(repo: TestRepo) -> Files:
    """SHA-256 of every regular file at the branch head: what each watching app must end up holding."""
    regular = {
        path.decode("utf-8"): blob_id
        for path, (mode, kind, blob_id) in repo.ls_tree().items()
        if kind == "blob" and stat.S_ISREG(mode)
    }
    if not regular:
        return {}
    batch = git("cat-file", "--batch", cwd=repo.bare, input="".join(f"{b}\n" for b in regular.values()).encode())
    contents, at = {}, 0
    for blob_id in regular.values():
        header_end = batch.index(b"\n", at)
        size = int(batch[at:header_end].split()[2])
        contents[blob_id] = batch[header_end + 1 : header_end + 1 + size]
        at = header_end + 1 + size + 1
    return {path: hashlib.sha256(contents[blob_id]).hexdigest() for path, blob_id in regular.items()}


def orphans(stack: ScanStack) -> dict[str, int]:
    return {name: stack.rows(query)[0][0] for name, query in ORPHANS.items()}


def assert_converged(stack: ScanStack, repos: dict[str, TestRepo], receivers: Iterable[MirrorReceiver]) -> None:
    """Every watch of these repositories is synced, and its app, its ledger and the snapshot match the last commit."""
    receivers = list(receivers)
    held: dict[tuple[str, str], Files] = {}
    for receiver in receivers:
        held |= receiver.held()
    assert [p for r in receivers for p in r.problems] == []
    for repository_id, repo in repos.items():
        expected, head = repository_files(repo), repo.head()
        assert stack.rows("SELECT commit_sha FROM snapshots WHERE repository_id = %s", repository_id) == [(head,)]
        assert _snapshot(stack, repository_id) == expected
        for app_id, status, attempts, next_attempt_at, commit in stack.rows(
            "SELECT app_id, status, attempts, next_attempt_at, last_commit_sha FROM watches WHERE repository_id = %s",
            repository_id,
        ):
            assert held.get((app_id, repository_id), {}) == expected, f"{app_id} holds another {repository_id}"
            assert _ledger(stack, app_id, repository_id) == expected
            assert (status, attempts, next_attempt_at, commit) == ("synced", 0, None, head)
        _assert_contents_stored(stack, repository_id)
    assert orphans(stack) == dict.fromkeys(ORPHANS, 0)


def resent(receiver: MirrorReceiver, app_id: str) -> dict[str, int]:
    """Changes that began to go out to the app more than once, with how many times."""
    return {change: count for change, count in receiver.starts(app_id).items() if count > 1}


def _snapshot(stack: ScanStack, repository_id: str) -> Files:
    return {path: sha for path, (sha, _size, _binary) in stack.snapshot(repository_id).items()}


def _ledger(stack: ScanStack, app_id: str, repository_id: str) -> Files:
    rows = stack.rows(
        "SELECT path, encode(sha256, 'hex') FROM delivered_files WHERE app_id = %s AND repository_id = %s",
        app_id,
        repository_id,
    )
    return dict(rows)


def _assert_contents_stored(stack: ScanStack, repository_id: str) -> None:
    """Each file's content is in the bucket where its row says, whole (read_each checks every SHA-256)."""
    rows = stack.rows(
        "SELECT encode(sha256, 'hex'), size, encode(bundle, 'hex'), bundle_offset FROM snapshot_files"
        " WHERE repository_id = %s",
        repository_id,
    )
    wanted = [StoredContent(sha, size, bundle and BundleSlot(bundle, offset)) for sha, size, bundle, offset in rows]
    with stack.deps.contents.read_each(wanted) as read:
        assert [hashlib.sha256(content).hexdigest() for content in read] == [content.sha256 for content in wanted]
