"""Settings and keys for a stack built on loopback by the tests and the benchmarks, so both build it alike."""

from __future__ import annotations

from chalicelib.config import Settings

TEST_ENCRYPTION_KEY = "0f" * 32
TEST_ADMIN_API_KEY = "admin-" + "k" * 40


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": "postgresql://unused",
        "redis_url": "redis://unused",
        "encryption_key": bytes.fromhex(TEST_ENCRYPTION_KEY),
        "admin_api_key": TEST_ADMIN_API_KEY,
        "allow_private_webhook_targets": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
