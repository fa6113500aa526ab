"""A real stack for scan tests: Postgres, Redis, moto S3 and SQS, and a git smart-HTTP server on loopback."""

from __future__ import annotations

import dataclasses
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
            time_left_ms=lambda: time_left_ms,
            random=lambda: random,
            config=self.configs.delivering,
            deps=self.deps,
        )

    def deliveries_requested_with_delay(self) -> list[tuple[str, str, int]]:
        url = self.sqs.get_queue_url(QueueName="docora-delivery")["QueueUrl"]
        found = []
        while messages := self.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", []):
            for message in messages:
                request = DeliveryRequested.from_json(message["Body"])
                found.append((request.app_id, request.repository_id, 0))
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
        return [(m.app_id, m.repository_id) for m in self._drain("docora-delivery", DeliveryRequested)]

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
    tmp_path: Any, database_url: str, redis_url: str, monkeypatch: Any, **settings: Any
) -> Iterator[ScanStack]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with GitServer(tmp_path / "git") as server, mock_aws():
        sqs, s3 = boto3.client("sqs"), boto3.client("s3")
        for queue in ("docora-scan", "docora-delivery"):
            sqs.create_queue(QueueName=queue)
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
