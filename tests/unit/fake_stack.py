"""The scan and the delivery on the in-memory fakes, arranged like the real-stack harness (scan_stack) arranges them."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from chalicelib.domain.apps import AppChanges
from chalicelib.domain.bundles import StoredContent
from chalicelib.domain.repositories import Repository, Watch
from chalicelib.ports import Deps
from chalicelib.services import delivering, scanning
from chalicelib.services.delivering import DeliveryConfig
from chalicelib.services.scanning import ScanConfig
from docora_local.harness.watched import CLIENT_AUTH_KEY, add_watched_repository
from tests.fakes import (
    InMemoryStore,
    RecordingDeliveryQueue,
    RecordingWebhooks,
    StaticGitRemote,
    StaticRepo,
)
from tests.unit.conftest import fake_deps

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RECEIVER = "https://receiver.example.com/hooks"
_GUIDE_VERIFY = Path(__file__).resolve().parents[2] / "docs" / "examples" / "verify_docora.py"


def later(moment: datetime, seconds: float = 1) -> datetime:
    return moment + timedelta(seconds=seconds)


class Clock:
    """The delivery job's clock: it stands still until a test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1) -> None:
        self.now = later(self.now, seconds)


@dataclass
class FakeStack:
    deps: Deps
    scan_config: ScanConfig
    delivery_config: DeliveryConfig
    clock: Clock  # delivery time: an hour after T0, so after every scan a test makes

    @property
    def git(self) -> StaticGitRemote:
        return self.deps.git  # type: ignore[return-value]

    @property
    def webhooks(self) -> RecordingWebhooks:
        return self.deps.webhooks  # type: ignore[return-value]

    @property
    def store(self) -> InMemoryStore:
        return self.deps.store  # type: ignore[return-value]

    def make_repo(self, name: str = "acme/widgets") -> StaticRepo:
        return self.git.add_repo(f"{self.scan_config.git_base_url}/{name}.git")

    def add_repository(self, name: str = "acme/widgets", **options: Any) -> str:
        """Watched by `apps` apps (one), reading with `token` (none), sending to `base_url` (RECEIVER)."""
        options.setdefault("base_url", RECEIVER)
        return add_watched_repository(self.deps, name, **options)

    def first_scan(self, files: dict[str | bytes, bytes], **options: Any) -> tuple[StaticRepo, str]:
        """A repository holding `files`, watched and scanned at T0, its delivery requests already taken."""
        repo = self.make_repo()
        repo.commit(files)
        repository_id = self.add_repository(**options)
        self.scan(repository_id, at=T0)
        self.deliveries_requested()
        return repo, repository_id

    def app_ids(self, repository_id: str) -> list[str]:
        with self.deps.store.transaction() as tx:
            return sorted(watch.app_id for watch in tx.watches.of_repository(repository_id))

    def scan(self, repository_id: str, *, at: datetime, refresh: bool = False) -> scanning.ScanResult:
        return scanning.scan_repository(
            repository_id, at, now=at, config=self.scan_config, deps=self.deps, refresh=refresh
        )

    def deliver(self, app_id: str, repository_id: str, *, time_left_ms: int = 900_000) -> delivering.Delivered:
        return delivering.deliver_watch(
            app_id,
            repository_id,
            clock=self.clock,
            sleep=self.clock.advance,
            time_left_ms=lambda: time_left_ms,
            random=lambda: 0.5,
            config=self.delivery_config,
            deps=self.deps,
        )

    def deliver_all(self, repository_id: str, app_ids: list[str]) -> list[delivering.Delivered]:
        """One job for several apps of the repository, as a scan's fan-out message asks."""
        return delivering.deliver(
            repository_id,
            app_ids,
            clock=self.clock,
            sleep=self.clock.advance,
            time_left_ms=lambda: 900_000,
            random=lambda: 0.5,
            config=self.delivery_config,
            deps=self.deps,
        )

    def one_at_a_time(self, app_id: str) -> None:
        """The original's strictly sequential delivery for this app (max_in_flight 1)."""
        with self.deps.store.transaction() as tx:
            tx.apps.update(app_id, AppChanges(max_in_flight=1))

    def repository(self, repository_id: str) -> Repository:
        with self.deps.store.transaction() as tx:
            found = tx.repositories.get(repository_id)
        assert found is not None
        return found

    def watch(self, app_id: str, repository_id: str) -> Watch:
        with self.deps.store.transaction() as tx:
            found = tx.watches.get(app_id, repository_id)
        assert found is not None
        return found

    def snapshot(self, repository_id: str) -> dict[str, tuple[str, int, bool]]:
        with self.deps.store.transaction() as tx:
            files = tx.snapshots.files(repository_id)
        return {path: (file.sha256.hex(), file.size, file.is_binary) for path, file in files.items()}

    def stored(self, repository_id: str) -> dict[str, bytes]:
        """Each snapshot file's content, as delivery reads it from the contents store."""
        with self.deps.store.transaction() as tx:
            files = tx.snapshots.files(repository_id)
        return {
            path: self.deps.contents.open(StoredContent(file.sha256.hex(), file.size, file.slot)).read()
            for path, file in files.items()
        }

    def skipped(self, repository_id: str) -> list[tuple[str, str, int | None]]:
        found = self.store.tables.snapshot_skipped.get(repository_id, {}).values()
        return sorted((item.path, item.reason, item.size) for item in found)

    def ledger(self, app_id: str, repository_id: str) -> dict[str, bytes]:
        return dict(self.store.tables.ledger.get((app_id, repository_id), {}))

    def deliveries_requested(self) -> list[tuple[str, str, int]]:
        """Delivery requests queued since the last call: (app, repository, delay in seconds)."""
        queue: RecordingDeliveryQueue = self.deps.delivery_queue  # type: ignore[assignment]
        found, queue.requested = queue.requested, []
        return found

    def received(self) -> list[tuple[str, str | None]]:
        """What the receiver got, in order: (the URL's last part, the file's path)."""
        return [(url.rsplit("/", 1)[1], json.loads(body).get("file", {}).get("path")) for url, body, _ in self.sent]

    @property
    def sent(self) -> list[tuple[str, bytes, dict[str, str]]]:
        return self.webhooks.sent

    def verified(self) -> bool:
        """Whether the receiver guide's own check accepts every request received, at the job's time."""
        verify = _guide_verify()
        return all(
            verify(body, headers, CLIENT_AUTH_KEY, now=self.clock().timestamp()) for _, body, headers in self.sent
        )


def fake_stack(**config: Any) -> FakeStack:
    """`config` sets fields of ScanConfig and DeliveryConfig by name (both, for a field they share)."""
    scan, delivery = ScanConfig(), DeliveryConfig()
    unknown = set(config) - {field.name for field in [*dataclasses.fields(scan), *dataclasses.fields(delivery)]}
    assert not unknown, f"no such config: {unknown}"
    clock = Clock(later(T0, 3600))
    return FakeStack(
        fake_deps(),
        dataclasses.replace(scan, **_fields_of(scan, config)),
        dataclasses.replace(delivery, **_fields_of(delivery, config)),
        clock,
    )


def _fields_of(config: Any, values: dict[str, Any]) -> dict[str, Any]:
    names = {field.name for field in dataclasses.fields(config)}
    return {name: value for name, value in values.items() if name in names}


@functools.cache
def _guide_verify() -> Any:
    spec = importlib.util.spec_from_file_location("guide_verify_docora", _GUIDE_VERIFY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.verify_docora
