"""Who is calling: apps by bearer token, the operator by ADMIN_API_KEY, and how often they may call."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chalicelib import errors
from chalicelib.domain import tokens
from chalicelib.domain.apps import App
from chalicelib.ports import Deps

logger = logging.getLogger(__name__)

_BAD_TOKEN = "missing or invalid bearer token"
# One budget over every caller: each attempt costs a bcrypt check per imported app whose token is still unknown.
_IMPORTED_TOKENS_KEY = "imported-tokens"


@dataclass(frozen=True)
class AccessConfig:
    operator_key: str | None = None
    onboarding_open: bool = False
    public_requests_per_minute: int = 60  # per client IP, on public routes
    app_requests_per_minute: int = 600
    # Tokens matching no lookup key that may be checked against imported apps' hashes (docs/migrating.md).
    imported_token_attempts_per_minute: int = 10
    login_attempts_per_minute: int = 10  # per client IP, at the dashboard's sign-in


def admit_app(token: str | None, *, config: AccessConfig, deps: Deps) -> App:
    """The app whose bearer token this is, within its request budget."""
    app = authenticate_app(token, config=config, deps=deps)
    limit_rate(f"app:{app.id}", config.app_requests_per_minute, deps=deps)
    return app


def admit_onboarding(token: str | None, client_ip: str, *, config: AccessConfig, deps: Deps) -> None:
    """Onboarding takes the operator key, unless ONBOARDING_MODE=open makes it public; either way, per-IP limited."""
    limit_rate(f"ip:{client_ip}", config.public_requests_per_minute, deps=deps)
    if not config.onboarding_open:
        authenticate_operator(token, config=config)


def authenticate_app(token: str | None, *, config: AccessConfig, deps: Deps) -> App:
    """One indexed lookup by the token's HMAC, then one bcrypt check against that row only.

    A token that finds no row may belong to an app imported from the original Docora, which stored no lookup key:
    see `_imported_app`.
    """
    if token is None or not tokens.looks_like_bearer_token(token):
        raise errors.Unauthorized(_BAD_TOKEN)
    lookup = deps.token_hasher.lookup_key(token)
    with deps.store.transaction() as tx:
        app = tx.apps.by_token_lookup(lookup)
        awaiting = [] if app is not None else tx.apps.awaiting_token_lookup()
    if app is None:
        app = _imported_app(token, lookup, awaiting, config=config, deps=deps)
    elif not deps.token_hasher.verify(token, app.token_hash):
        app = None
    if app is None:
        raise errors.Unauthorized(_BAD_TOKEN)
    return app


def _imported_app(token: str, lookup: bytes, awaiting: list[App], *, config: AccessConfig, deps: Deps) -> App | None:
    """The imported app whose bcrypt hash `token` matches, which then gets its lookup key and leaves this path.

    Each attempt costs one bcrypt check per app in `awaiting` (about 0.3 s each at cost 12), so attempts share one
    budget per minute over all callers, and a limiter outage refuses them rather than letting them all through.
    """
    if not awaiting:
        return None
    try:
        retry_after = deps.rate_limiter.acquire(_IMPORTED_TOKENS_KEY, config.imported_token_attempts_per_minute)
    except errors.Unavailable:
        raise errors.Unavailable("this token cannot be checked now; try again shortly", retry_after=5) from None
    if retry_after is not None:
        raise errors.RateLimited("too many requests", retry_after=retry_after)
    for app in awaiting:
        if deps.token_hasher.verify(token, app.token_hash):
            with deps.store.transaction() as tx:
                tx.apps.claim_token_lookup(app.id, lookup)
            logger.info("imported app authenticated; its lookup key is stored", extra={"app_id": app.id})
            return app
    return None


def authenticate_operator(token: str | None, *, config: AccessConfig) -> None:
    expected = config.operator_key
    if token is None or expected is None or not tokens.same_secret(token, expected):
        raise errors.Unauthorized("missing or invalid operator key")


def limit_rate(key: str, per_minute: int, *, deps: Deps) -> None:
    """Raise RateLimited when `key` has used its budget. A Redis outage lets requests through."""
    try:
        retry_after = deps.rate_limiter.acquire(key, per_minute)
    except errors.Unavailable:
        # Refusing every request because the limiter is down would turn a Redis outage into an API
        # outage; /health reports Redis as down instead.
        logger.warning("rate limiter unavailable; request allowed", extra={"rate_key": key.split(":")[0]})
        return
    if retry_after is not None:
        raise errors.RateLimited("too many requests", retry_after=retry_after)
