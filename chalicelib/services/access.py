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


@dataclass(frozen=True)
class AccessConfig:
    operator_key: str | None = None
    onboarding_open: bool = False
    public_requests_per_minute: int = 60  # per client IP, on public routes
    app_requests_per_minute: int = 600
    login_attempts_per_minute: int = 10  # per client IP, at the dashboard's sign-in


def admit_app(token: str | None, *, config: AccessConfig, deps: Deps) -> App:
    """The app whose bearer token this is, within its request budget."""
    app = authenticate_app(token, deps=deps)
    limit_rate(f"app:{app.id}", config.app_requests_per_minute, deps=deps)
    return app


def admit_onboarding(token: str | None, client_ip: str, *, config: AccessConfig, deps: Deps) -> None:
    """Onboarding takes the operator key, unless ONBOARDING_MODE=open makes it public; either way, per-IP limited."""
    limit_rate(f"ip:{client_ip}", config.public_requests_per_minute, deps=deps)
    if not config.onboarding_open:
        authenticate_operator(token, config=config)


def authenticate_app(token: str | None, *, deps: Deps) -> App:
    """One indexed lookup by the token's HMAC, then one bcrypt check against that row only."""
    if token is None or not tokens.looks_like_bearer_token(token):
        raise errors.Unauthorized(_BAD_TOKEN)
    lookup = deps.token_hasher.lookup_key(token)
    with deps.store.transaction() as tx:
        app = tx.apps.by_token_lookup(lookup)
    if app is None or not deps.token_hasher.verify(token, app.token_hash):
        raise errors.Unauthorized(_BAD_TOKEN)
    return app


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
