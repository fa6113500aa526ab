"""An app managing itself (new token, new signing key, profile, leaving), and deleting apps cleanly."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from chalicelib import errors
from chalicelib.domain import tokens, webhook_targets
from chalicelib.domain.apps import App, AppChanges, PausedBy, check_max_in_flight
from chalicelib.domain.bundles import StoredObjects
from chalicelib.ports import Deps
from chalicelib.services import admin


@dataclass(frozen=True)
class AccountConfig:
    allow_private_targets: bool = False  # ALLOW_PRIVATE_WEBHOOK_TARGETS lifts the SSRF guard on base_url
    key_rotation_overlap: timedelta = timedelta(days=1)
    max_in_flight_ceiling: int = 32  # MAX_IN_FLIGHT_CEILING: what no app may go above


def rotate_token(app: App, *, deps: Deps) -> str:
    """A new bearer token; the old one stops working with this request's commit."""
    token = tokens.new_bearer_token()
    lookup = deps.token_hasher.lookup_key(token)
    with deps.store.transaction() as tx:
        tx.apps.set_token(app.id, token_lookup=lookup, token_hash=deps.token_hasher.hash(token))
    return token


def rotate_key(app: App, *, now: datetime, config: AccountConfig, deps: Deps) -> tuple[str, datetime]:
    """A new signing key; until the returned moment, webhooks also carry a signature with the old one."""
    key = tokens.new_client_auth_key()
    overlap_ends = now + config.key_rotation_overlap
    with deps.store.transaction() as tx:
        tx.apps.rotate_key(app.id, key_encrypted=deps.cipher.encrypt(key), previous_until=overlap_ends)
    return key, overlap_ends


def update_profile(app: App, changes: AppChanges, *, config: AccountConfig, deps: Deps) -> App:
    check_max_in_flight(changes.max_in_flight, ceiling=config.max_in_flight_ceiling)
    if changes.base_url is not None:
        checked = webhook_targets.check_webhook_url(
            changes.base_url, resolve=deps.resolver.addresses, allow_private=config.allow_private_targets
        )
        changes = replace(changes, base_url=checked)
    with deps.store.transaction() as tx:
        tx.apps.update(app.id, changes)
        updated = tx.apps.get(app.id)
    if updated is None:
        raise errors.NotFound(f"app {app.id} does not exist")
    return updated


def resume_own(app: App, *, deps: Deps) -> App:
    """Resume deliveries the app's receiver caused to pause (a 410, or failing too long); an operator's pause stays."""
    if app.delivery_state == "active":
        return app
    if app.paused_by == PausedBy.OPERATOR:
        raise errors.Conflict("deliveries were paused by the operator; only the operator can resume them")
    admin.resume(app.id, deps=deps)
    with deps.store.transaction() as tx:
        resumed = tx.apps.get(app.id)
    if resumed is None:
        raise errors.NotFound(f"app {app.id} does not exist")
    return resumed


def delete_app(app_id: str, *, deps: Deps) -> None:
    """The app, its watches, ledger and log, the repositories only it watched, and their contents in S3."""
    with deps.store.transaction() as tx:
        repository_ids = [status.repository.id for status in tx.watches.statuses(app_id)]
        orphaned = tx.snapshots.contents_only_in(repository_ids) if repository_ids else StoredObjects()
        if not tx.apps.delete(app_id):
            raise errors.NotFound(f"app {app_id} does not exist")
        orphans = [rid for rid in repository_ids if tx.repositories.delete_if_unwatched(rid)]
        kept = [rid for rid in repository_ids if rid not in orphans]
        still_used = tx.snapshots.contents_only_in(kept) if kept else StoredObjects()
    # After the commit: an object another repository still uses was not in `orphaned` at all,
    # and one used only by a repository someone else still watches is kept too.
    deps.contents.delete_many(orphaned.without(still_used))
