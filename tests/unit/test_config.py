"""Settings are read once from the environment and a bad value stops start-up, naming the variable."""

from __future__ import annotations

import pytest

from chalicelib.config import ConfigurationError, Settings

VALID = {
    "DATABASE_URL": "postgresql://docora@db/docora",
    "REDIS_URL": "redis://cache:6379/0",
    "ENCRYPTION_KEY": "ab" * 32,
    "ADMIN_API_KEY": "x" * 32,
}


def test_defaults_follow_the_original_docora():
    settings = Settings.from_env(VALID)

    assert settings.encryption_key == bytes.fromhex("ab" * 32)
    assert (settings.max_retry_attempts, settings.retry_base_delay_ms) == (5, 1000)
    assert settings.rescan_interval_ms == 300_000
    assert (settings.binary_chunk_threshold_bytes, settings.binary_chunk_size_bytes) == (1_048_576, 524_288)
    assert settings.github_api_url == "https://api.github.com"
    assert settings.git_base_url == "https://github.com"
    assert settings.allow_private_webhook_targets is False
    assert settings.onboarding_mode == "admin"


def test_values_from_the_environment_override_defaults():
    settings = Settings.from_env(
        VALID
        | {
            "GITHUB_API_URL": "http://127.0.0.1:8081/",
            "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true",
            "RESCAN_INTERVAL_MS": "60000",
            "ONBOARDING_MODE": "open",
            "LOG_LEVEL": "debug",
        }
    )

    assert settings.github_api_url == "http://127.0.0.1:8081"
    assert settings.allow_private_webhook_targets is True
    assert settings.rescan_interval_ms == 60_000
    assert settings.onboarding_mode == "open"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"REDIS_URL": ""}, "REDIS_URL"),
        ({"ENCRYPTION_KEY": ""}, "ENCRYPTION_KEY"),
        ({"ENCRYPTION_KEY": "ab" * 31}, "ENCRYPTION_KEY"),
        ({"ENCRYPTION_KEY": "zz" * 32}, "ENCRYPTION_KEY"),
        ({"ADMIN_API_KEY": ""}, "ADMIN_API_KEY"),
        ({"ADMIN_API_KEY": "short"}, "ADMIN_API_KEY"),
        ({"ONBOARDING_MODE": "sometimes"}, "ONBOARDING_MODE"),
        ({"ALLOW_PRIVATE_WEBHOOK_TARGETS": "maybe"}, "ALLOW_PRIVATE_WEBHOOK_TARGETS"),
        ({"MAX_RETRY_ATTEMPTS": "five"}, "MAX_RETRY_ATTEMPTS"),
        ({"RESCAN_INTERVAL_MS": "0"}, "RESCAN_INTERVAL_MS"),
        ({"GITHUB_API_URL": "ftp://example.com"}, "GITHUB_API_URL"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_a_bad_variable_is_named_in_the_one_error(changes, variable):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(VALID | changes)

    assert str(raised.value).startswith(variable + " ")


def test_open_onboarding_does_not_need_an_operator_key():
    settings = Settings.from_env({k: v for k, v in VALID.items() if k != "ADMIN_API_KEY"} | {"ONBOARDING_MODE": "open"})

    assert settings.admin_api_key is None


def test_a_malformed_key_is_not_echoed():
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(VALID | {"ENCRYPTION_KEY": "secret-value-that-is-wrong"})

    assert "secret-value-that-is-wrong" not in str(raised.value)
