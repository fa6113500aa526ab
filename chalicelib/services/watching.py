"""Apps watching repositories: register, list, show, change the GitHub token, unwatch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from chalicelib import errors
from chalicelib.domain import git_refs, github_urls, tokens
from chalicelib.domain.apps import App
from chalicelib.domain.deliveries import Attempt
from chalicelib.domain.repositories import NewRepository, NewWatch, WatchStatus
from chalicelib.ports import Deps, Transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registration:
    github_url: str
    github_token: str | None = None
    branch: str | None = None


@dataclass(frozen=True)
class Registered:
    status: WatchStatus
    created: bool


def register(app: App, request: Registration, *, now: datetime, deps: Deps) -> Registered:
    """Watch a repository: checked against GitHub first, idempotent per app, first scan requested at once."""
    url = github_urls.parse_github_url(request.github_url)
    token = _checked_token(request.github_token)
    wanted_branch = git_refs.check_branch_name(request.branch) if request.branch is not None else None
    found = deps.github.repository(url.owner, url.name, token)
    branch = wanted_branch or found.default_branch
    if branch != found.default_branch and not deps.github.has_branch(url.owner, url.name, branch, token):
        raise errors.InvalidInput.field("branch", f"branch {branch} does not exist in {url.owner}/{url.name}")
    candidate = NewRepository(tokens.new_repository_id(), url.url, url.owner, url.name, branch, found.is_private)
    encrypted_token = deps.cipher.encrypt(token) if token else None
    with deps.store.transaction() as tx:
        repository = tx.repositories.add(candidate)
        created = tx.watches.get(app.id, repository.id) is None
        if created:
            tx.watches.add(NewWatch(app.id, repository.id, encrypted_token))
        status = tx.watches.status(app.id, repository.id)
    assert status is not None  # the watch exists inside the transaction that just read it
    if created:
        _request_scan(repository.id, now=now, deps=deps)
    return Registered(status=status, created=created)


def list_watches(app: App, *, deps: Deps) -> list[WatchStatus]:
    with deps.store.transaction() as tx:
        return tx.watches.statuses(app.id)


def show_watch(app: App, repository_id: str, *, deps: Deps) -> WatchStatus:
    with deps.store.transaction() as tx:
        status = tx.watches.status(app.id, repository_id)
    if status is None:
        raise errors.NotFound(f"repository {repository_id} is not watched by this app")
    return status


def unwatch(app: App, repository_id: str, *, deps: Deps) -> None:
    """Stop watching; the last watch of a repository takes the repository's data with it."""
    with deps.store.transaction() as tx:
        if not tx.watches.delete(app.id, repository_id):
            raise errors.NotFound(f"repository {repository_id} is not watched by this app")
        tx.repositories.delete_if_unwatched(repository_id)


def resync(app_id: str, repository_id: str, *, deps: Deps) -> None:
    """Send everything again: the ledger keeps only paths the repository no longer has, whose deletes go first.

    The one resync, whoever asks: the app for itself, or the operator for any watch.
    """
    _deliver_again(app_id, repository_id, everything=True, deps=deps)


def retry(app_id: str, repository_id: str, *, deps: Deps) -> None:
    """Deliver what the app lacks now, with a fresh count of attempts (a failed watch, retried on demand)."""
    _deliver_again(app_id, repository_id, everything=False, deps=deps)


def restart_delivery(tx: Transaction, app_id: str, repository_id: str, *, everything: bool) -> bool:
    """Within `tx`: reset the watch's attempts (and for a resync its ledger); False when there is no such watch."""
    if everything:
        tx.deliveries.forget_snapshot_paths(app_id, repository_id)
    return tx.watches.reset_for_retry(app_id, repository_id)


def _deliver_again(app_id: str, repository_id: str, *, everything: bool, deps: Deps) -> None:
    with deps.store.transaction() as tx:
        if not restart_delivery(tx, app_id, repository_id, everything=everything):
            raise errors.NotFound(f"repository {repository_id} is not watched by app {app_id}")
    deps.delivery_queue.request_delivery(app_id, repository_id)


def delivery_attempts(app: App, repository_id: str, *, limit: int, before: int | None, deps: Deps) -> list[Attempt]:
    """The watch's delivery attempts, newest first; `before` is the last id of the previous page."""
    show_watch(app, repository_id, deps=deps)
    with deps.store.transaction() as tx:
        return tx.deliveries.attempts(app.id, repository_id, limit=limit, before=before)


def replace_token(app: App, repository_id: str, github_token: str, *, deps: Deps) -> WatchStatus:
    """Swap the watch's GitHub token for one that GitHub accepts for this repository."""
    token = _checked_token(github_token)
    repository = show_watch(app, repository_id, deps=deps).repository
    deps.github.repository(repository.owner, repository.name, token)  # outside any transaction
    with deps.store.transaction() as tx:
        tx.watches.set_github_token(app.id, repository_id, deps.cipher.encrypt(token) if token else None)
        status = tx.watches.status(app.id, repository_id)
    if status is None:
        raise errors.NotFound(f"repository {repository_id} is not watched by this app")
    return status


def _checked_token(token: str | None) -> str | None:
    return None if token is None else github_urls.check_github_token(token)


def _request_scan(repository_id: str, *, now: datetime, deps: Deps) -> None:
    try:
        deps.scan_queue.request_scan(repository_id, now)
    except errors.Unavailable:
        # The watch is stored; the sweep scans repositories that were never checked, so the
        # registration stands rather than failing after it was committed.
        logger.warning("scan request not queued; the sweep will pick it up", extra={"repository_id": repository_id})
