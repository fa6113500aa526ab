"""Settings: the only reader of the environment, read once and validated before anything starts."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
_ONBOARDING_MODES = ("admin", "open")
_LOG_LEVELS = ("debug", "info", "warning", "error")
# SQS event source mappings take a MaximumConcurrency from 2 to 1000.
_SCAN_CONCURRENCY_RANGE = (2, 1000)
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class ConfigurationError(Exception):
    """A variable is missing or malformed; the message names it and says what it must be."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    encryption_key: bytes = bytes(32)
    admin_api_key: str | None = None
    onboarding_mode: str = "admin"
    github_api_url: str = "https://api.github.com"
    git_base_url: str = "https://github.com"
    github_webhook_secret: str | None = None
    allow_private_webhook_targets: bool = False
    scan_queue_name: str = "docora-scan"
    delivery_queue_name: str = "docora-delivery"
    content_bucket: str = "docora-contents"
    ephemeral_dir: str = "/tmp/docora"  # noqa: S108 - /tmp is the only writable path in Lambda
    max_file_bytes: int = 100 * 1024 * 1024
    scan_concurrency: int = 5
    max_retry_attempts: int = 5
    retry_base_delay_ms: int = 1000
    rescan_interval_ms: int = 300_000
    push_fallback_interval_ms: int = 3_600_000
    head_check_concurrency: int = 64
    head_check_timeout_ms: int = 10_000
    binary_chunk_threshold_bytes: int = 1_048_576
    binary_chunk_size_bytes: int = 524_288
    circuit_breaker_threshold: int = 5
    circuit_breaker_cooldown_ms: int = 30 * 60 * 1000
    public_rate_limit_per_minute: int = 60
    app_rate_limit_per_minute: int = 600
    imported_token_attempts_per_minute: int = 10
    delivery_rate_limit_per_minute: int = 6000
    max_request_bytes: int = 64 * 1024
    webhook_timeout_ms: int = 30_000
    max_in_flight_ceiling: int = 32
    delivery_threads: int = 32
    delivery_time_slice_ms: int = 30_000
    auto_pause_after_ms: int = 5 * 24 * 3600 * 1000
    key_rotation_overlap_ms: int = 24 * 3600 * 1000
    sweep_batch_size: int = 500
    stuck_after_ms: int = 15 * 60 * 1000
    sync_failed_timeout_ms: int = 10_000
    log_level: str = "INFO"
    cors_origin: str | None = None
    build_number: str = "dev"
    git_sha: str = "unknown"
    build_date: str = "unknown"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = _Reader(os.environ if environ is None else environ)
        onboarding_mode = env.choice("ONBOARDING_MODE", _ONBOARDING_MODES, "admin")
        return cls(
            database_url=database_url_from_env(env.environ),
            redis_url=env.url("REDIS_URL", schemes=("redis", "rediss", "unix")),
            encryption_key=env.hex_key("ENCRYPTION_KEY"),
            admin_api_key=env.secret("ADMIN_API_KEY", required=onboarding_mode == "admin"),
            onboarding_mode=onboarding_mode,
            github_api_url=env.url("GITHUB_API_URL", default=cls.github_api_url).rstrip("/"),
            git_base_url=env.url("GIT_BASE_URL", default=cls.git_base_url).rstrip("/"),
            github_webhook_secret=env.optional("GITHUB_WEBHOOK_SECRET"),
            allow_private_webhook_targets=env.flag("ALLOW_PRIVATE_WEBHOOK_TARGETS"),
            scan_queue_name=env.text("SCAN_QUEUE_NAME", cls.scan_queue_name),
            delivery_queue_name=env.text("DELIVERY_QUEUE_NAME", cls.delivery_queue_name),
            content_bucket=env.text("CONTENT_BUCKET", cls.content_bucket),
            ephemeral_dir=env.text("EPHEMERAL_DIR", cls.ephemeral_dir),
            max_file_bytes=env.positive_int("MAX_FILE_BYTES", cls.max_file_bytes),
            scan_concurrency=scan_concurrency_from_env(env.environ),
            max_retry_attempts=env.positive_int("MAX_RETRY_ATTEMPTS", cls.max_retry_attempts),
            retry_base_delay_ms=env.positive_int("RETRY_BASE_DELAY_MS", cls.retry_base_delay_ms),
            rescan_interval_ms=env.positive_int("RESCAN_INTERVAL_MS", cls.rescan_interval_ms),
            push_fallback_interval_ms=env.positive_int("PUSH_FALLBACK_INTERVAL_MS", cls.push_fallback_interval_ms),
            head_check_concurrency=env.positive_int("HEAD_CHECK_CONCURRENCY", cls.head_check_concurrency),
            head_check_timeout_ms=env.positive_int("HEAD_CHECK_TIMEOUT_MS", cls.head_check_timeout_ms),
            binary_chunk_threshold_bytes=env.positive_int(
                "BINARY_CHUNK_THRESHOLD_BYTES", cls.binary_chunk_threshold_bytes
            ),
            binary_chunk_size_bytes=env.positive_int("BINARY_CHUNK_SIZE_BYTES", cls.binary_chunk_size_bytes),
            circuit_breaker_threshold=env.positive_int("CIRCUIT_BREAKER_THRESHOLD", cls.circuit_breaker_threshold),
            circuit_breaker_cooldown_ms=env.positive_int(
                "CIRCUIT_BREAKER_COOLDOWN_MS", cls.circuit_breaker_cooldown_ms
            ),
            public_rate_limit_per_minute=env.positive_int(
                "PUBLIC_RATE_LIMIT_PER_MINUTE", cls.public_rate_limit_per_minute
            ),
            app_rate_limit_per_minute=env.positive_int("APP_RATE_LIMIT_PER_MINUTE", cls.app_rate_limit_per_minute),
            imported_token_attempts_per_minute=env.positive_int(
                "IMPORTED_TOKEN_ATTEMPTS_PER_MINUTE", cls.imported_token_attempts_per_minute
            ),
            delivery_rate_limit_per_minute=env.positive_int(
                "DELIVERY_RATE_LIMIT_PER_MINUTE", cls.delivery_rate_limit_per_minute
            ),
            max_request_bytes=env.positive_int("MAX_REQUEST_BYTES", cls.max_request_bytes),
            webhook_timeout_ms=env.positive_int("WEBHOOK_TIMEOUT_MS", cls.webhook_timeout_ms),
            max_in_flight_ceiling=env.positive_int("MAX_IN_FLIGHT_CEILING", cls.max_in_flight_ceiling),
            delivery_threads=env.positive_int("DELIVERY_THREADS", cls.delivery_threads),
            delivery_time_slice_ms=env.positive_int("DELIVERY_TIME_SLICE_MS", cls.delivery_time_slice_ms),
            auto_pause_after_ms=env.positive_int("AUTO_PAUSE_AFTER_MS", cls.auto_pause_after_ms),
            key_rotation_overlap_ms=env.positive_int("KEY_ROTATION_OVERLAP_MS", cls.key_rotation_overlap_ms),
            sweep_batch_size=env.positive_int("SWEEP_BATCH_SIZE", cls.sweep_batch_size),
            stuck_after_ms=env.positive_int("STUCK_AFTER_MS", cls.stuck_after_ms),
            sync_failed_timeout_ms=env.positive_int("SYNC_FAILED_TIMEOUT_MS", cls.sync_failed_timeout_ms),
            log_level=log_level_from_env(env.environ),
            cors_origin=env.optional("CORS_ORIGIN"),
            build_number=env.text("DOCORA_BUILD_NUMBER", cls.build_number),
            git_sha=env.text("DOCORA_GIT_SHA", cls.git_sha),
            build_date=env.text("DOCORA_BUILD_DATE", cls.build_date),
        )


def queue_name_from_env(variable: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    """A queue's name when app.py is imported: Chalice reads it to declare the SQS trigger at packaging time."""
    return _Reader(os.environ if environ is None else environ).text(variable, default)


def scan_concurrency_from_env(environ: Mapping[str, str] | None = None) -> int:
    """SCAN_CONCURRENCY when app.py is imported: the scan consumer's maximum_concurrency, fixed at packaging time."""
    value = _Reader(os.environ if environ is None else environ).positive_int(
        "SCAN_CONCURRENCY", Settings.scan_concurrency
    )
    low, high = _SCAN_CONCURRENCY_RANGE
    if not low <= value <= high:
        raise ConfigurationError(f"SCAN_CONCURRENCY must be from {low} to {high} (SQS's limits on a consumer)")
    return value


def log_level_from_env(environ: Mapping[str, str] | None = None) -> str:
    """LOG_LEVEL, upper-cased as the logging module spells levels; read when the loggers are made."""
    return _Reader(os.environ if environ is None else environ).choice("LOG_LEVEL", _LOG_LEVELS, "info").upper()


def database_url_from_env(environ: Mapping[str, str] | None = None) -> str:
    """DATABASE_URL alone, for tools such as the migration runner that need nothing else."""
    env = _Reader(os.environ if environ is None else environ)
    return env.url("DATABASE_URL", schemes=("postgres", "postgresql"))


def import_settings_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, bytes, bool]:
    """DATABASE_URL, ENCRYPTION_KEY and ALLOW_PRIVATE_WEBHOOK_TARGETS: what the importer needs, and nothing else."""
    env = _Reader(os.environ if environ is None else environ)
    return database_url_from_env(env.environ), env.hex_key("ENCRYPTION_KEY"), env.flag("ALLOW_PRIVATE_WEBHOOK_TARGETS")


class _Reader:
    """Reads and checks one variable at a time, so every error names the variable at fault."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def optional(self, name: str) -> str | None:
        value = self.environ.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.optional(name) or default

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigurationError(f"{name} is not set")
        return value

    def url(self, name: str, default: str | None = None, schemes: tuple[str, ...] = ("http", "https")) -> str:
        value = self.optional(name) or default
        if value is None:
            raise ConfigurationError(f"{name} is not set")
        parts = urlsplit(value)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ConfigurationError(f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return value

    def hex_key(self, name: str) -> bytes:
        value = self.required(name)
        if not _HEX_KEY.match(value):
            raise ConfigurationError(f"{name} must be 64 hexadecimal characters (32 bytes)")
        return bytes.fromhex(value)

    def secret(self, name: str, *, required: bool) -> str | None:
        value = self.required(name) if required else self.optional(name)
        if value is not None and len(value) < 32:
            raise ConfigurationError(f"{name} must be at least 32 characters long")
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = (self.optional(name) or default).lower()
        if value not in choices:
            raise ConfigurationError(f"{name} must be one of: {', '.join(choices)}")
        return value

    def flag(self, name: str) -> bool:
        value = self.environ.get(name, "").strip().lower()
        if value not in _TRUE + _FALSE:
            raise ConfigurationError(f"{name} must be true or false")
        return value in _TRUE

    def positive_int(self, name: str, default: int) -> int:
        return self._parsed(name, default, _positive_int, "a whole number greater than zero")

    def _parsed(self, name: str, default: T, parse: Callable[[str], T], expected: str) -> T:
        value = self.optional(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError:
            raise ConfigurationError(f"{name} must be {expected}") from None


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(value)
    return number
