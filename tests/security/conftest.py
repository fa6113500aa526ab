"""Attack tests against the API reuse the unit tier's fakes; those tests also forbid the network."""

from __future__ import annotations

import socket

import pytest

from tests.unit.conftest import client, configs, deps  # noqa: F401 - fixtures, shared on purpose


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("these tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", refuse)
