"""A repository watched by apps, arranged through the Store port alike by every harness, on the real stack or fakes."""

from __future__ import annotations

from chalicelib.domain import tokens
from chalicelib.domain.apps import NewApp
from chalicelib.domain.repositories import NewRepository, NewWatch
from chalicelib.ports import Deps

CLIENT_AUTH_KEY = "receiver-signing-key-0123456789"


def add_watched_repository(
    deps: Deps,
    name: str = "acme/widgets",
    *,
    apps: int = 1,
    token: str | None = None,
    base_url: str = "https://receiver.example.com",
    key: str = CLIENT_AUTH_KEY,
) -> str:
    """The repository `name` on its main branch, watched by `apps` new apps signing with `key`; its id."""
    owner, repo = name.split("/")
    with deps.store.transaction() as tx:
        repository = tx.repositories.add(
            NewRepository(tokens.new_repository_id(), f"https://github.com/{name}", owner, repo, "main", False)
        )
        for index in range(apps):
            app = tx.apps.add(new_app(index, base_url, deps.cipher.encrypt(key)))
            encrypted = deps.cipher.encrypt(token) if token else None
            tx.watches.add(NewWatch(app.id, repository.id, encrypted))
    return repository.id


def new_app(index: int, base_url: str, key_encrypted: str) -> NewApp:
    return NewApp(
        id=tokens.new_app_id(),
        app_name=f"app {index}",
        email="ops@example.com",
        website=None,
        description=None,
        base_url=base_url,
        token_lookup=tokens.new_bearer_token().encode()[:32],
        token_hash="$2b$04$unused",
        client_auth_key_encrypted=key_encrypted,
    )
