"""Unit tests: the app with in-memory fakes behind wiring.deps, and no network at all."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from chalice.test import Client

from chalicelib import wiring
from chalicelib.adapters.aes_cipher import AesGcmCipher
from chalicelib.adapters.bcrypt_tokens import BcryptTokenHasher
from chalicelib.ports import Deps
from docora_local.harness.settings import TEST_ADMIN_API_KEY, make_settings
from tests.fakes import (
    CountingRateLimiter,
    InlineWorkers,
    InMemoryContents,
    InMemoryLocks,
    InMemorySessions,
    InMemorySlots,
    InMemoryStore,
    RecordingDeliveryQueue,
    RecordingScanQueue,
    RecordingWebhooks,
    StaticGitHub,
    StaticGitRemote,
    StaticHeads,
    StaticResolver,
)

PUBLIC_IP = "93.184.216.34"


def fake_deps(**settings: object) -> Deps:
    config = make_settings(**settings)
    return Deps(
        store=InMemoryStore(),
        cipher=AesGcmCipher(config.encryption_key),
        token_hasher=BcryptTokenHasher(config.encryption_key, rounds=4),
        github=StaticGitHub(),
        scan_queue=RecordingScanQueue(),
        rate_limiter=CountingRateLimiter(),
        resolver=StaticResolver({"receiver.example.com": [PUBLIC_IP]}),
        git=StaticGitRemote(),
        heads=StaticHeads(),
        contents=InMemoryContents(),
        locks=InMemoryLocks(),
        slots=InMemorySlots(),
        delivery_queue=RecordingDeliveryQueue(),
        webhooks=RecordingWebhooks(),
        sessions=InMemorySessions(),
        workers=InlineWorkers(),
    )


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests must not reach anything; a stray connection fails loudly instead of hanging."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("unit tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def fake_configs(**settings: object) -> wiring.Configs:
    return wiring.configs_from(make_settings(**settings))


@pytest.fixture
def configs(monkeypatch: pytest.MonkeyPatch) -> wiring.Configs:
    built = fake_configs()
    monkeypatch.setattr(wiring, "configs", lambda: built)
    return built


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch, configs: wiring.Configs) -> Deps:
    built = fake_deps()
    monkeypatch.setattr(wiring, "deps", lambda: built)
    return built


@pytest.fixture
def client(deps: Deps) -> Iterator[Client]:
    import app

    with Client(app.app) as test_client:
        yield test_client


def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TEST_ADMIN_API_KEY}", "Content-Type": "application/json"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
