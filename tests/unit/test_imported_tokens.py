"""Apps imported from the original Docora authenticate with the bearer tokens they hold, through a rate-limited path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib import errors
from chalicelib.domain import tokens
from chalicelib.domain.apps import App
from chalicelib.services import access
from tests.fakes import InMemoryApps
from tests.unit.conftest import fake_deps

CONFIG = access.AccessConfig(imported_token_attempts_per_minute=3)


def imported(deps, token: str) -> App:
    app = App(
        id=tokens.new_app_id(),
        app_name="Imported",
        email="ops@example.com",
        website=None,
        description=None,
        base_url="https://receiver.example.com",
        token_hash=deps.token_hasher.hash(token),
        client_auth_key_encrypted="aa:bb:cc",
        delivery_state="active",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        max_in_flight=1,
    )
    InMemoryApps(deps.store.tables).add_imported(app)
    return app


@pytest.fixture
def deps():
    return fake_deps()


def waiting(deps) -> list[str]:
    return [app.id for app in InMemoryApps(deps.store.tables).awaiting_token_lookup()]


def test_an_imported_token_authenticates_and_gets_its_lookup_key_on_first_success(deps):
    token = tokens.new_bearer_token()
    app = imported(deps, token)
    imported(deps, tokens.new_bearer_token())

    first = access.authenticate_app(token, config=CONFIG, deps=deps)
    second = access.authenticate_app(token, config=CONFIG, deps=deps)

    assert first.id == second.id == app.id
    assert deps.rate_limiter.used == {"imported-tokens": 1}  # the second went by the lookup key
    assert app.id not in waiting(deps)
    assert len(waiting(deps)) == 1


def test_a_wrong_token_among_imported_apps_is_401_and_uses_the_shared_budget(deps):
    imported(deps, tokens.new_bearer_token())

    with pytest.raises(errors.Unauthorized):
        access.authenticate_app(tokens.new_bearer_token(), config=CONFIG, deps=deps)

    assert deps.rate_limiter.used == {"imported-tokens": 1}


def test_attempts_past_the_budget_are_refused_before_any_bcrypt_check(deps):
    token = tokens.new_bearer_token()
    imported(deps, token)
    for _ in range(3):
        with pytest.raises(errors.Unauthorized):
            access.authenticate_app(tokens.new_bearer_token(), config=CONFIG, deps=deps)

    with pytest.raises(errors.RateLimited):
        access.authenticate_app(token, config=CONFIG, deps=deps)


def test_a_limiter_outage_refuses_imported_tokens_rather_than_let_every_attempt_through(deps):
    token = tokens.new_bearer_token()
    imported(deps, token)
    deps.rate_limiter.available = False

    with pytest.raises(errors.Unavailable):
        access.authenticate_app(token, config=CONFIG, deps=deps)


def test_once_no_imported_app_waits_a_wrong_token_costs_no_budget(deps):
    token = tokens.new_bearer_token()
    imported(deps, token)
    access.authenticate_app(token, config=CONFIG, deps=deps)

    with pytest.raises(errors.Unauthorized):
        access.authenticate_app(tokens.new_bearer_token(), config=CONFIG, deps=deps)

    assert deps.rate_limiter.used == {"imported-tokens": 1}
