"""Signing the operator in to the dashboard with ADMIN_API_KEY; each later request's session and CSRF token."""

from __future__ import annotations

from datetime import datetime

from chalicelib import errors
from chalicelib.domain import tokens
from chalicelib.domain.operator_sessions import SESSION_LIFETIME, OperatorSession
from chalicelib.ports import Deps
from chalicelib.services.access import AccessConfig, authenticate_operator, limit_rate


def sign_in(key: str | None, client_ip: str, *, now: datetime, config: AccessConfig, deps: Deps) -> OperatorSession:
    """A new session (never one the browser brought), after the per-IP login limit and the key check."""
    limit_rate(f"login:{client_ip}", config.login_attempts_per_minute, deps=deps)
    authenticate_operator(key, config=config)
    session = OperatorSession(
        id=tokens.new_session_id(),
        csrf_token=tokens.new_csrf_token(),
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
    )
    deps.sessions.put(session, now=now)
    return session


def admit(session_id: str | None, *, now: datetime, deps: Deps) -> OperatorSession:
    session = deps.sessions.get(session_id) if session_id else None
    if session is None or session.expires_at <= now:
        raise errors.Unauthorized("sign in to the dashboard")
    return session


def check_csrf(session: OperatorSession, sent: str | None) -> None:
    if sent is None or not tokens.same_secret(sent, session.csrf_token):
        raise errors.Forbidden("the form is out of date or was not sent from the dashboard; reload the page")


def sign_out(session_id: str | None, *, deps: Deps) -> None:
    if session_id:
        deps.sessions.end(session_id)
