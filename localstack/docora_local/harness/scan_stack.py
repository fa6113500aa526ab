"""A real stack for scan tests: Postgres, Redis, moto S3 and SQS, and a git smart-HTTP server on loopback."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import psycopg
from moto import mock_aws

from chalicelib import wiring
from chalicelib.adapters.git_dulwich import DulwichGit
from chalicelib.config import Settings
from chalicelib.messages import DeliveryRequested, ScanRequested
from chalicelib.ports import Deps
from chalicelib.wiring import Configs
from docora_local.harness.settings import make_settings
from docora_local.harness.watched import CLIENT_AUTH_KEY as CLIENT_AUTH_KEY  # re-exported: the tests take it from here
from docora_local.harness.watched import add_watched_repository
from docora_local.standins.git_server import GitServer, TestRepo
from docora_local.standins.moto_server import AWS_ENV

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclasses.dataclass
class ScanStack:
    deps: Deps
    settings: Settings
    configs: Configs
    git_server: GitServer
    sqs: Any
    s3: Any
    database_url: str

    def add_repository(self, name: str = "acme/widgets", **options: Any) -> str:
        """Watched by `apps` apps (one), reading with `token`, sending to `base_url`, signing with `key`."""
        return add_watched_repository(self.deps, name, **options)

    def app_ids(self, repository_id: str) -> list[str]:
        return [
            row[0]
            for row in self.rows("SELECT app_id FROM watches WHERE repository_id = %s ORDER BY app_id", repository_id)
        ]

    def deliver(self, app_id: str, repository_id: str, *, time_left_ms: int = 900_000, random: float = 0.5) -> Any:
        from chalicelib.services import delivering

        return delivering.deliver_watch(
            app_id,
            repository_id,
            clock=lambda: datetime.now(UTC),
            sleep=time.sleep,
            time_left_ms=lambda: time_left_ms,
            random=lambda: random,
            config=self.configs.delivering,
            deps=self.deps,
        )

    def one_at_a_time(self, app_id: str) -> None:
        """The original's strictly sequential delivery for this app (max_in_flight 1)."""
        self.rows("UPDATE apps SET max_in_flight = 1 WHERE id = %s", app_id)

    def deliveries_requested_with_delay(self) -> list[tuple[str, str, int]]:
        url = self.sqs.get_queue_url(QueueName="docora-delivery")["QueueUrl"]
        found = []
        while messages := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", []):
            for message in messages:
                request = DeliveryRequested.from_json(message["Body"])
                found.extend((app_id, request.repository_id, 0) for app_id in request.app_ids)
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    def make_repo(self, name: str = "acme/widgets") -> TestRepo:
        return self.git_server.make_repo(name)

    def scan(self, repository_id: str, *, at: datetime) -> Any:
        from chalicelib.services import scanning

        return scanning.scan_repository(repository_id, at, now=at, config=self.configs.scanning, deps=self.deps)

    def sweep(self, *, at: datetime, time_left_ms: int = 60_000, random: float = 0.5) -> Any:
        """One sweep at `at`, with as long as a Lambda's minute to run its checks."""
        from chalicelib.services import sweeping

        return sweeping.sweep(
            clock=lambda: at,
            time_left_ms=lambda: time_left_ms,
            random=lambda: random,
            config=self.configs.sweeping,
            deps=self.deps,
        )

    def deliveries_requested(self) -> list[tuple[str, str]]:
        messages = self._drain("docora-delivery", DeliveryRequested)
        return [(app_id, message.repository_id) for message in messages for app_id in message.app_ids]

    def scans_requested(self) -> list[ScanRequested]:
        return self._drain("docora-scan", ScanRequested)

    def rows(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.database_url) as connection:
            cursor = connection.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def snapshot(self, repository_id: str) -> dict[str, tuple[str, int, bool]]:
        rows = self.rows(
            "SELECT path, encode(sha256, 'hex'), size, is_binary FROM snapshot_files WHERE repository_id = %s",
            repository_id,
        )
        return {path: (sha, size, binary) for path, sha, size, binary in rows}

    def _drain(self, queue: str, message_type: Any) -> list[Any]:
        url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        found = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                found.append(message_type.from_json(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found


@contextmanager
def scan_stack(
    tmp_path: Any,
    database_url: str,
    redis_url: str,
    monkeypatch: Any,
    *,
    aws_endpoint_url: str | None = None,
    **settings: Any,
) -> Iterator[ScanStack]:
    """With `aws_endpoint_url` (a moto server in a process of its own), SQS and S3 are there, not in this process."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if aws_endpoint_url is not None:
        for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": aws_endpoint_url}.items():
            monkeypatch.setenv(name, value)
    aws = mock_aws() if aws_endpoint_url is None else contextlib.nullcontext()
    with GitServer(tmp_path / "git") as server, aws:
        sqs, s3 = boto3.client("sqs"), boto3.client("s3")
        for queue in ("docora-scan", "docora-delivery"):
            # As deployed: at least the consumer's timeout (a delivery job extends its own message's as it works).
            sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "360"})
        s3.create_bucket(Bucket="docora-contents")
        settings.setdefault("allow_private_webhook_targets", True)  # receivers run on loopback
        config = make_settings(
            database_url=database_url,
            redis_url=redis_url,
            git_base_url=server.url,
            ephemeral_dir=str(tmp_path / "ephemeral"),
            **settings,
        )
        deps = dataclasses.replace(wiring.build(config), git=DulwichGit(config.ephemeral_dir, timeout=2.0))
        configs = wiring.configs_from(config)
        monkeypatch.setattr(
            wiring, "configs", lambda: configs
        )  # what the API and consumers read, when a test uses them
        try:
            yield ScanStack(deps, config, configs, server, sqs, s3, database_url)
        finally:
            deps.store.close()
            deps.git.close()  # type: ignore[attr-defined]


def later(moment: datetime, seconds: float = 1) -> datetime:
    return moment + timedelta(seconds=seconds)
