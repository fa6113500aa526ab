"""GitHub push webhooks: a push to a watched branch starts its scan at once, ahead of the schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chalicelib import errors
from chalicelib.domain import github_events
from chalicelib.ports import Deps


@dataclass(frozen=True)
class Receipt:
    outcome: str  # pong, scan_requested, ignored
    detail: str
    repository_id: str | None = None


def receive(
    event: str | None, signature: str | None, body: bytes, *, now: datetime, secret: str | None, deps: Deps
) -> Receipt:
    """Verify with `secret` (GITHUB_WEBHOOK_SECRET), then act on a `push` to a watched repository and branch;
    everything else is answered and ignored.
    """
    if secret is None:
        raise errors.Unauthorized("GitHub webhooks are not enabled: GITHUB_WEBHOOK_SECRET is not set")
    if not github_events.signature_matches(secret, body, signature):
        raise errors.Unauthorized("X-Hub-Signature-256 does not match the body")
    if event == "ping":
        return Receipt("pong", "webhook received")
    if event != "push":
        return Receipt("ignored", f"{event or 'unnamed'} events are not used")
    push = github_events.parse_push(body)
    if push.branch is None:
        return Receipt("ignored", "not a branch push")
    with deps.store.transaction() as tx:
        repository = tx.repositories.find(push.github_url, push.branch)
        if repository is not None:
            tx.repositories.record_push(repository.id, at=now)  # polling it becomes the fallback
    if repository is None:
        return Receipt("ignored", f"{push.github_url} branch {push.branch} is not watched")
    deps.scan_queue.request_scan(repository.id, now)
    return Receipt("scan_requested", "a scan was requested", repository.id)
