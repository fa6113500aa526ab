"""Repositories watched by apps whose receivers are mirrors, brought to their first full sync."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from chalicelib.domain.apps import AppChanges
from chalicelib.domain.repositories import NewWatch
from docora_local.harness.consumers import Consumers
from docora_local.harness.mirror import MirrorReceiver
from docora_local.harness.scan_stack import ScanStack
from docora_local.harness.watched import CLIENT_AUTH_KEY, new_app
from docora_local.standins.git_server import TestRepo


@dataclass(frozen=True)
class Watched:
    repo: TestRepo
    repository_id: str
    app_ids: list[str]


def binary(size: int, seed: int) -> bytes:
    """Bytes the binary heuristic calls binary (they start with NUL), the same for the same seed."""
    return b"\x00" + random.Random(seed).randbytes(size - 1)  # noqa: S311 - reproducible, not secret


# A repository whose cases share it starts with these files; each case then commits `next_change`.
FIRST = {
    "a.md": b"alpha\n",
    "b.md": b"bravo\n",
    "c0.md": b"charlie\n",
    "docs/d.md": b"delta\n",
    "big.bin": binary(1500, 0),
}
CHANGES_SENT = 5  # what next_change makes each app receive
_changes = itertools.count(1)


def next_change(repo: TestRepo) -> dict[str, bytes | None]:
    """Sent as: delete c<n-1>.md; create c<n>.md; update a.md, big.bin (4 slices of 512 characters), docs/d.md."""
    number = next(_changes)
    (previous,) = (path.decode() for path in repo.ls_tree() if path.startswith(b"c"))
    return {
        previous: None,
        f"c{number}.md": b"charlie %d\n" % number,
        "a.md": b"alpha %d\n" % number,
        "big.bin": binary(1500, number),
        "docs/d.md": b"delta %d\n" % number,
    }


def add_app(stack: ScanStack, base_url: str, *repository_ids: str, max_in_flight: int = 8) -> str:
    with stack.deps.store.transaction() as tx:
        app = tx.apps.add(new_app(0, base_url, stack.deps.cipher.encrypt(CLIENT_AUTH_KEY)))
        tx.apps.update(app.id, AppChanges(max_in_flight=max_in_flight))
        for repository_id in repository_ids:
            tx.watches.add(NewWatch(app.id, repository_id, None))
    return app.id


def add_repository(stack: ScanStack, name: str) -> tuple[TestRepo, str]:
    return stack.make_repo(name), stack.add_repository(name, apps=0)


def synced(
    stack: ScanStack,
    consumers: Consumers,
    receivers: list[MirrorReceiver],
    files: dict[str, bytes | None],
    *,
    name: str = "acme/widgets",
    max_in_flight: int = 1,
) -> Watched:
    """One repository with `files`, watched by one app per receiver, every app holding it all; logs cleared.

    One request in flight per app by default: the original's order, which the crash matrix counts changes by.
    """
    repo, repository_id = add_repository(stack, name)
    repo.commit(files)
    app_ids = [add_app(stack, receiver.url, repository_id, max_in_flight=max_in_flight) for receiver in receivers]
    consumers.request_scan(repository_id)
    consumers.run()
    for receiver in receivers:
        receiver.forget_log()
    return Watched(repo, repository_id, app_ids)
