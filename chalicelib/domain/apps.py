"""Client applications as the service sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chalicelib import errors


class PausedBy(StrEnum):
    OPERATOR = "operator"
    RECEIVER = "receiver"  # its 410, or no success for AUTO_PAUSE_AFTER_MS: the app may resume itself


@dataclass(frozen=True)
class App:
    id: str
    app_name: str
    email: str
    website: str | None
    description: str | None
    base_url: str
    token_hash: str
    client_auth_key_encrypted: str
    delivery_state: str
    created_at: datetime
    previous_client_auth_key_encrypted: str | None = None
    previous_client_auth_key_expires_at: datetime | None = None
    paused_reason: str | None = None
    max_in_flight: int = 8  # requests at once to its receiver (docs/protocol.md §1.5)
    consecutive_timeouts: int = 0
    failing_since: datetime | None = None  # its receivers have taken nothing since then
    last_success_at: datetime | None = None
    paused_by: str | None = None

    def previous_key_until(self, now: datetime) -> str | None:
        """The encrypted key replaced by a rotation, while its overlap lasts."""
        expires = self.previous_client_auth_key_expires_at
        return self.previous_client_auth_key_encrypted if expires is not None and expires > now else None


@dataclass(frozen=True)
class AppChanges:
    """A partial update of an app's own profile; None leaves a field as it is."""

    base_url: str | None = None
    app_name: str | None = None
    email: str | None = None
    website: str | None = None
    description: str | None = None
    max_in_flight: int | None = None


@dataclass(frozen=True)
class NewApp:
    """What onboarding stores: the token only as its lookup key and bcrypt hash, the key encrypted."""

    id: str
    app_name: str
    email: str
    website: str | None
    description: str | None
    base_url: str
    token_lookup: bytes
    token_hash: str
    client_auth_key_encrypted: str


def check_max_in_flight(value: int | None, *, ceiling: int) -> None:
    """An app's requests in flight, as it or an operator sets them: from 1 (one at a time) to MAX_IN_FLIGHT_CEILING."""
    if value is not None and not 1 <= value <= ceiling:
        raise errors.InvalidInput.field("max_in_flight", f"must be from 1 to {ceiling} (the operator's ceiling)")
