"""A scratch database with the original TypeScript Docora's schema, and rows written the way the original wrote them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import psycopg

from chalicelib.adapters.aes_cipher import AesGcmCipher

SCHEMA = Path(__file__).with_name("original_docora_schema.sql")
# The key of the Node.js vectors in tests/unit/test_aes_cipher.py: the values below decrypt as the original's do.
ORIGINAL_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
EPOCH = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class OriginalDocora:
    """Rows in the original's tables; timestamps rise with each row, so the original's order is the insert order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.cipher = AesGcmCipher(ORIGINAL_KEY)
        self._clock = EPOCH

    def create_schema(self) -> None:
        self.execute(SCHEMA.read_text())

    def execute(self, statement: str, params: Any = None) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            connection.execute(statement, params)

    def add_app(
        self,
        app_id: str,
        *,
        token: str,
        key_encrypted: str,
        base_url: str,
        name: str = "Mirror",
        rounds: int = 4,
    ) -> None:
        """`rounds` 12 is the original's cost; the other apps' checks are kept cheap."""
        token_hash = bcrypt.hashpw(token.encode(), bcrypt.gensalt(rounds, prefix=b"2b")).decode()
        self.execute(
            "INSERT INTO apps (app_id, token_hash, app_name, base_url, email, website, description, created_at,"
            " updated_at, client_auth_key_encrypted)"
            " VALUES (%s, %s, %s, %s, 'ops@example.com', 'https://example.com', 'from the original', %s, %s, %s)",
            (app_id, token_hash, name, base_url, self._tick(), self._clock, key_encrypted),
        )

    def add_repository(
        self, repository_id: str, owner: str, name: str, *, private: bool = False, commit: str | None = None
    ) -> None:
        self.execute(
            "INSERT INTO repositories (repository_id, github_url, owner, name, is_private, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (repository_id, f"https://github.com/{owner}/{name}", owner, name, private, self._tick()),
        )
        if commit is not None:
            self.execute(
                "INSERT INTO repository_snapshots (repository_id, commit_sha, branch) VALUES (%s, %s, 'main')",
                (repository_id, commit),
            )

    def add_watch(
        self,
        app_id: str,
        repository_id: str,
        status: str,
        *,
        token_encrypted: str | None = None,
        retry_count: int = 0,
        last_error: str | None = None,
    ) -> None:
        scanned = self._clock if status == "synced" else None
        self.execute(
            "INSERT INTO app_repositories (app_id, repository_id, github_token_encrypted, created_at, status,"
            " retry_count, last_error, last_scanned_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (app_id, repository_id, token_encrypted, self._tick(), status, retry_count, last_error, scanned),
        )

    def add_ledger(self, app_id: str, repository_id: str, files: dict[str, str]) -> None:
        """`files`: path -> the sha the original recorded (the SHA-256 of what it delivered)."""
        with psycopg.connect(self.url, autocommit=True) as connection:
            for path, digest in files.items():
                connection.execute(
                    "INSERT INTO app_delivered_files (app_id, repository_id, file_path, file_sha, delivered_at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    (app_id, repository_id, path, digest, self._tick()),
                )

    def _tick(self) -> datetime:
        self._clock += timedelta(minutes=1)
        return self._clock
