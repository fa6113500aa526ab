"""Composition root: reads Settings once, and builds from them the real adapters and each service's config.

Both are built lazily, once per Lambda container: nothing connects at import time.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import boto3
from botocore.config import Config

from chalicelib import __version__
from chalicelib.adapters import redis_client
from chalicelib.adapters.aes_cipher import AesGcmCipher
from chalicelib.adapters.bcrypt_tokens import BcryptTokenHasher
from chalicelib.adapters.git_dulwich import DulwichGit
from chalicelib.adapters.git_http import ConcurrentHeads
from chalicelib.adapters.github_rest import GitHubRest
from chalicelib.adapters.postgres import PostgresStore
from chalicelib.adapters.redis_locks import RedisLocks
from chalicelib.adapters.redis_rate_limits import RedisRateLimiter
from chalicelib.adapters.redis_sessions import RedisSessions
from chalicelib.adapters.redis_slots import RedisSlots
from chalicelib.adapters.s3_contents import S3Contents
from chalicelib.adapters.socket_resolver import SocketResolver
from chalicelib.adapters.sqs_queues import SqsDeliveryQueue, SqsScanQueue
from chalicelib.adapters.webhook_http import WebhookSender
from chalicelib.config import Settings
from chalicelib.domain.head_checks import CheckPolicy
from chalicelib.ports import Deps
from chalicelib.services.access import AccessConfig
from chalicelib.services.app_accounts import AccountConfig
from chalicelib.services.delivering import DeliveryConfig
from chalicelib.services.head_checks import HeadCheckConfig
from chalicelib.services.scanning import ScanConfig
from chalicelib.services.sweeping import SweepConfig

# A dependency that hangs must fail the request, not hold the Lambda until its timeout.
_AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})


@dataclass(frozen=True)
class ApiConfig:
    """What the HTTP edge itself needs: limits, CORS, what /version shows, and the values it hands to services."""

    max_request_bytes: int = 64 * 1024
    cors_origin: str | None = None
    build_number: str = "dev"
    git_sha: str = "unknown"
    build_date: str = "unknown"
    allow_private_targets: bool = False
    github_webhook_secret: str | None = None


@dataclass(frozen=True)
class Configs:
    """Each service's few values, so that no service sees the whole of Settings."""

    api: ApiConfig
    access: AccessConfig
    accounts: AccountConfig
    scanning: ScanConfig
    delivering: DeliveryConfig
    sweeping: SweepConfig


@functools.cache
def settings() -> Settings:
    return Settings.from_env()


@functools.cache
def deps() -> Deps:
    return build(settings())


@functools.cache
def configs() -> Configs:
    return configs_from(settings())


def build(settings: Settings) -> Deps:
    redis = redis_client.connect(settings.redis_url)
    sqs = boto3.client("sqs", config=_AWS_CONFIG)
    resolver = SocketResolver()
    return Deps(
        store=PostgresStore(settings.database_url),
        cipher=AesGcmCipher(settings.encryption_key),
        token_hasher=BcryptTokenHasher(settings.encryption_key),
        github=GitHubRest(settings.github_api_url),
        scan_queue=SqsScanQueue(sqs, settings.scan_queue_name),
        rate_limiter=RedisRateLimiter(redis),
        resolver=resolver,
        git=DulwichGit(os.path.join(settings.ephemeral_dir, "git")),
        heads=ConcurrentHeads(
            concurrency=settings.head_check_concurrency, timeout=settings.head_check_timeout_ms / 1000
        ),
        contents=S3Contents(
            boto3.client("s3", config=_AWS_CONFIG), settings.content_bucket, spool_dir=settings.ephemeral_dir
        ),
        locks=RedisLocks(redis),
        slots=RedisSlots(redis),
        delivery_queue=SqsDeliveryQueue(sqs, settings.delivery_queue_name),
        webhooks=WebhookSender(
            allow_private=settings.allow_private_webhook_targets,
            user_agent=f"Docora/{__version__}",
            resolver=resolver.addresses,
            connections_per_host=settings.max_in_flight_ceiling,
        ),
        sessions=RedisSessions(redis),
        workers=ThreadPoolExecutor(settings.delivery_threads, thread_name_prefix="webhook"),
    )


def configs_from(settings: Settings) -> Configs:
    return Configs(
        api=ApiConfig(
            max_request_bytes=settings.max_request_bytes,
            cors_origin=settings.cors_origin,
            build_number=settings.build_number,
            git_sha=settings.git_sha,
            build_date=settings.build_date,
            allow_private_targets=settings.allow_private_webhook_targets,
            github_webhook_secret=settings.github_webhook_secret,
        ),
        access=AccessConfig(
            operator_key=settings.admin_api_key,
            onboarding_open=settings.onboarding_mode == "open",
            public_requests_per_minute=settings.public_rate_limit_per_minute,
            app_requests_per_minute=settings.app_rate_limit_per_minute,
            imported_token_attempts_per_minute=settings.imported_token_attempts_per_minute,
        ),
        accounts=AccountConfig(
            allow_private_targets=settings.allow_private_webhook_targets,
            key_rotation_overlap=timedelta(milliseconds=settings.key_rotation_overlap_ms),
            max_in_flight_ceiling=settings.max_in_flight_ceiling,
        ),
        scanning=ScanConfig(
            git_base_url=settings.git_base_url,
            max_file_bytes=settings.max_file_bytes,
            circuit_breaker_threshold=settings.circuit_breaker_threshold,
            circuit_breaker_cooldown=timedelta(milliseconds=settings.circuit_breaker_cooldown_ms),
        ),
        delivering=DeliveryConfig(
            rate_limit_per_minute=settings.delivery_rate_limit_per_minute,
            threads=settings.delivery_threads,
            webhook_timeout=timedelta(milliseconds=settings.webhook_timeout_ms),
            sync_failed_timeout=timedelta(milliseconds=settings.sync_failed_timeout_ms),
            chunk_threshold_bytes=settings.binary_chunk_threshold_bytes,
            chunk_size_chars=settings.binary_chunk_size_bytes,
            max_retry_attempts=settings.max_retry_attempts,
            retry_base_delay_ms=settings.retry_base_delay_ms,
            circuit_breaker_threshold=settings.circuit_breaker_threshold,
            time_slice=timedelta(milliseconds=settings.delivery_time_slice_ms),
            auto_pause_after=timedelta(milliseconds=settings.auto_pause_after_ms),
        ),
        sweeping=SweepConfig(
            head_checks=HeadCheckConfig(
                git_base_url=settings.git_base_url,
                policy=CheckPolicy(
                    poll_interval=timedelta(milliseconds=settings.rescan_interval_ms),
                    push_fallback_interval=timedelta(milliseconds=settings.push_fallback_interval_ms),
                    jitter=0.1,
                    circuit_breaker_threshold=settings.circuit_breaker_threshold,
                    circuit_breaker_cooldown=timedelta(milliseconds=settings.circuit_breaker_cooldown_ms),
                ),
            ),
            batch_size=settings.sweep_batch_size,
            stuck_after=timedelta(milliseconds=settings.stuck_after_ms),
        ),
    )
