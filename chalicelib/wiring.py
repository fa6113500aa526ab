"""Composition root: builds the real adapters once per Lambda container, lazily, from Settings."""

from __future__ import annotations

import functools

import boto3
from botocore.config import Config

from chalicelib import __version__
from chalicelib.adapters import redis_client
from chalicelib.adapters.aes_cipher import AesGcmCipher
from chalicelib.adapters.bcrypt_tokens import BcryptTokenHasher
from chalicelib.adapters.git_dulwich import DulwichGit
from chalicelib.adapters.github_rest import GitHubRest
from chalicelib.adapters.postgres import PostgresStore
from chalicelib.adapters.redis_locks import RedisLocks
from chalicelib.adapters.redis_rate_limits import RedisRateLimiter
from chalicelib.adapters.s3_contents import S3Contents
from chalicelib.adapters.socket_resolver import SocketResolver
from chalicelib.adapters.sqs_queues import SqsDeliveryQueue, SqsScanQueue
from chalicelib.adapters.webhook_http import WebhookSender
from chalicelib.config import Settings
from chalicelib.ports import Deps

# A dependency that hangs must fail the request, not hold the Lambda until its timeout.
_AWS_CONFIG = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"})


@functools.cache
def deps() -> Deps:
    return build(Settings.from_env())


def build(settings: Settings) -> Deps:
    redis = redis_client.connect(settings.redis_url)
    sqs = boto3.client("sqs", config=_AWS_CONFIG)
    resolver = SocketResolver()
    return Deps(
        settings=settings,
        store=PostgresStore(settings.database_url),
        cipher=AesGcmCipher(settings.encryption_key),
        token_hasher=BcryptTokenHasher(),
        github=GitHubRest(settings.github_api_url),
        scan_queue=SqsScanQueue(sqs, settings.scan_queue_name),
        rate_limiter=RedisRateLimiter(redis),
        resolver=resolver,
        git=DulwichGit(),
        contents=S3Contents(
            boto3.client("s3", config=_AWS_CONFIG), settings.content_bucket, spool_dir=settings.ephemeral_dir
        ),
        locks=RedisLocks(redis),
        delivery_queue=SqsDeliveryQueue(sqs, settings.delivery_queue_name),
        webhooks=WebhookSender(
            allow_private=settings.allow_private_webhook_targets,
            user_agent=f"Docora/{__version__}",
            resolver=resolver.addresses,
        ),
    )
