"""Registering client apps: identity, webhook target, bearer token and signing key."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib import errors
from chalicelib.domain import tokens, webhook_targets
from chalicelib.domain.apps import App, NewApp
from chalicelib.ports import Deps

CLIENT_AUTH_KEY_LENGTH = (16, 500)


@dataclass(frozen=True)
class Onboarding:
    app_name: str
    email: str
    base_url: str
    website: str | None = None
    description: str | None = None
    client_auth_key: str | None = None


@dataclass(frozen=True)
class OnboardedApp:
    """The app as stored, with its bearer token, and the signing key when Docora generated it.

    Both secrets are shown only in this reply: the token is stored as a hash, the key encrypted.
    """

    app: App
    token: str
    generated_client_auth_key: str | None


def onboard(request: Onboarding, *, allow_private_targets: bool, deps: Deps) -> OnboardedApp:
    """Store a new app; `allow_private_targets` (ALLOW_PRIVATE_WEBHOOK_TARGETS) lifts the SSRF guard on base_url."""
    base_url = webhook_targets.check_webhook_url(
        request.base_url, resolve=deps.resolver.addresses, allow_private=allow_private_targets
    )
    client_auth_key = request.client_auth_key or tokens.new_client_auth_key()
    low, high = CLIENT_AUTH_KEY_LENGTH
    if not low <= len(client_auth_key) <= high:
        raise errors.InvalidInput.field("client_auth_key", f"must be {low} to {high} characters long")
    token = tokens.new_bearer_token()
    new_app = NewApp(
        id=tokens.new_app_id(),
        app_name=request.app_name,
        email=request.email,
        website=request.website,
        description=request.description,
        base_url=base_url,
        token_lookup=deps.token_hasher.lookup_key(token),
        token_hash=deps.token_hasher.hash(token),
        client_auth_key_encrypted=deps.cipher.encrypt(client_auth_key),
    )
    with deps.store.transaction() as tx:
        app = tx.apps.add(new_app)
    generated = None if request.client_auth_key else client_auth_key
    return OnboardedApp(app=app, token=token, generated_client_auth_key=generated)
