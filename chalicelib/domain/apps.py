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
