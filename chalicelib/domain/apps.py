"""Client applications as the service sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
