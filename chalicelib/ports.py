"""What the services need from the outside world, as structural types; adapters and fakes provide them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from chalicelib.domain.apps import App, AppChanges, NewApp, PausedBy
from chalicelib.domain.bundles import BundleSlot, NewContent, StoredContent, StoredObjects
from chalicelib.domain.circuit_breaker import Circuit
from chalicelib.domain.deliveries import Attempt, Change, Retry
from chalicelib.domain.head_checks import CheckRecord, CheckTarget, HeadProbe, ProbedHead
from chalicelib.domain.operations import ListPage, ListQuery, Operation
from chalicelib.domain.operator_sessions import FailedFilter, OperatorSession
from chalicelib.domain.original_docora import AppImport, LedgerEntry, OriginalApp, OriginalRepository, OriginalWatch
from chalicelib.domain.repositories import NewRepository, NewWatch, Repository, Watch, WatchStatus
from chalicelib.domain.snapshots import BlobFacts, FetchedTree, SnapshotDelta, SnapshotFile


class Apps(Protocol):
    def add(self, app: NewApp) -> App: ...

    def get(self, app_id: str) -> App | None: ...

    def get_many(self, app_ids: list[str]) -> dict[str, App]: ...

    def by_token_lookup(self, token_lookup: bytes) -> App | None: ...

    def awaiting_token_lookup(self) -> list[App]:
        """Apps imported from the original Docora whose token has not authenticated here yet (no lookup key)."""
        ...

    def claim_token_lookup(self, app_id: str, token_lookup: bytes) -> bool:
        """Store the lookup key of an imported app's token, once: False when it already has one."""
        ...

    def record_receiver_answer(self, app_id: str, *, succeeded: bool, timed_out: bool, at: datetime) -> datetime | None:
        """How the app's receiver last answered a job; since when it has taken nothing (None: it takes what is sent)."""
        ...

    def pause(self, app_id: str, *, reason: str, by: PausedBy) -> None:
        """Stop deliveries to the app until they are resumed (an operator, or what its receiver did)."""
        ...

    def resume(self, app_id: str) -> None: ...

    def set_token(self, app_id: str, *, token_lookup: bytes, token_hash: str) -> None: ...

    def rotate_key(self, app_id: str, *, key_encrypted: str, previous_until: datetime) -> None:
        """Make `key_encrypted` the signing key; the one it replaces stays valid until `previous_until`."""
        ...

    def update(self, app_id: str, changes: AppChanges) -> None: ...

    def delete(self, app_id: str) -> bool:
        """The app with its watches, ledger and attempt log."""
        ...


class Repositories(Protocol):
    def get(self, repository_id: str) -> Repository | None: ...

    def find(self, github_url: str, branch: str) -> Repository | None: ...

    def add(self, repository: NewRepository) -> Repository:
        """Insert it, or return the row already there for the same URL and branch."""
        ...

    def delete_if_unwatched(self, repository_id: str) -> bool: ...

    def record_scan(self, repository_id: str, *, scanned_at: datetime) -> None:
        """A scan that probed the head at `scanned_at` is done: requests made before it are covered."""
        ...

    def record_push(self, repository_id: str, *, at: datetime) -> None:
        """A verified GitHub push arrived: for a while, polling the repository is only a fallback."""
        ...

    def record_success(self, repository_id: str, *, head: str) -> None:
        """The head is snapshotted; the circuit closes."""
        ...

    def record_failure(self, repository_id: str, *, circuit: Circuit, error: str) -> None: ...

    def claim_due_checks(self, *, now: datetime, until: datetime, limit: int) -> list[CheckTarget]:
        """Watched repositories whose check is due and whose circuit lets one through, oldest first, each claimed
        until `until` (rows another caller holds are skipped)."""
        ...

    def record_checks(self, records: Sequence[CheckRecord], *, checked_at: datetime) -> None:
        """Write a batch of checks, which also ends their claims."""
        ...

    def oldest_due_check(self, *, now: datetime) -> datetime | None:
        """When the longest-waiting due check fell due; None when none is due."""
        ...

    def reset_circuit(self, repository_id: str) -> bool: ...


class Watches(Protocol):
    def get(self, app_id: str, repository_id: str) -> Watch | None: ...

    def get_many(self, repository_id: str, app_ids: list[str]) -> dict[str, Watch]: ...

    def add(self, watch: NewWatch) -> Watch:
        """Insert it, or return the watch already there for the same app and repository."""
        ...

    def delete(self, app_id: str, repository_id: str) -> bool: ...

    def set_github_token(self, app_id: str, repository_id: str, token_encrypted: str | None) -> None: ...

    def status(self, app_id: str, repository_id: str) -> WatchStatus | None: ...

    def statuses(self, app_id: str) -> list[WatchStatus]: ...

    def of_repository(self, repository_id: str) -> list[Watch]: ...

    def needing_delivery(self, repository_id: str, *, now: datetime) -> list[str]:
        """The active apps whose ledger differs from the snapshot and that wait on no retry, marked pending."""
        ...

    def due_retries(self, *, now: datetime, limit: int) -> list[tuple[str, str]]:
        """(app, repository) of watches whose next attempt has come."""
        ...

    def left_behind(self, *, updated_before: datetime, now: datetime, limit: int) -> list[tuple[str, str]]:
        """Watches still pending or syncing since `updated_before`: a crashed job or a lost message."""
        ...

    def reset_for_retry(self, app_id: str, repository_id: str) -> bool: ...

    def touch(self, app_id: str, repository_id: str) -> None: ...

    def owe_sync_failed(self, repository_id: str, *, opened_at: datetime) -> list[str]:
        """Record that every watching app is owed one sync_failed for this opening; return their ids."""
        ...

    def start_sync(self, app_id: str, repository_id: str) -> None: ...

    def finish_sync(self, app_id: str, repository_id: str, *, commit: str | None, at: datetime) -> None:
        """The app holds the whole snapshot: synced, attempts and error cleared."""
        ...

    def record_delivery_failure(self, app_id: str, repository_id: str, *, retry: Retry, error: str) -> None: ...

    def take_sync_failed(self, app_id: str, repository_id: str) -> datetime | None:
        """The circuit opening this app is owed a sync_failed for, if any; taking it clears it."""
        ...


class Deliveries(Protocol):
    def pending(self, app_id: str, repository_id: str) -> list[Change]:
        """Snapshot minus ledger, in protocol order."""
        ...

    def forget_all(self, app_id: str, repository_id: str) -> None: ...

    def forget_snapshot_paths(self, app_id: str, repository_id: str) -> None:
        """Drop the ledger rows of paths the snapshot has, so every file is sent again (a resync)."""
        ...

    def log_attempt(self, app_id: str, repository_id: str, attempt: Attempt) -> None: ...

    def trim_attempts(self, app_id: str, repository_id: str, *, keep: int) -> None: ...

    def attempts(self, app_id: str, repository_id: str, *, limit: int, before: int | None) -> list[Attempt]:
        """Newest first; `before` is the id of the last attempt of the previous page."""
        ...


class Snapshots(Protocol):
    def commit(self, repository_id: str) -> str | None: ...

    def contents_only_in(self, repository_ids: list[str]) -> StoredObjects:
        """The objects in the bucket that no other repository's snapshot refers to."""
        ...

    def files(self, repository_id: str, paths: list[str] | None = None) -> dict[str, SnapshotFile]:
        """The current snapshot's files by path, all or those at `paths`; empty when never snapshotted."""
        ...

    def blob_facts(self, repository_id: str, blob_ids: list[str]) -> dict[str, BlobFacts]:
        """What the current snapshot knows of these blobs, whichever paths hold them."""
        ...

    def apply(self, repository_id: str, *, commit: str, delta: SnapshotDelta, taken_at: datetime) -> None:
        """Make `commit` the repository's snapshot by applying `delta` to the stored one."""
        ...


class Operations(Protocol):
    def create(
        self, operation_id: str, *, kind: str, app_id: str | None, watches: list[tuple[str, str]], now: datetime
    ) -> None: ...

    def get(self, operation_id: str) -> Operation | None: ...

    def take(self, operation_id: str, *, count: int, now: datetime) -> list[tuple[str, str]]:
        """The next watches of a running operation, counted as done; [] once it is done or cancelled."""
        ...

    def cancel(self, operation_id: str, *, now: datetime) -> bool: ...

    def running(self, *, limit: int) -> list[str]: ...

    def recent(self, *, limit: int) -> list[Operation]:
        """The newest operations first."""
        ...


class AdminViews(Protocol):
    """Read models of the operator API, kept in SQL; the in-memory fake is held to it by a contract test."""

    def counts(self, *, now: datetime, hour_ago: datetime) -> dict[str, Any]: ...

    def page(self, name: str, query: ListQuery) -> ListPage: ...

    def sortable(self, name: str) -> tuple[str, ...]: ...

    def failed_watches(self, app_id: str | None) -> list[tuple[str, str]]: ...

    def watches_of_app(self, app_id: str) -> list[tuple[str, str]]: ...

    def failed_page(self, matching: FailedFilter, *, limit: int, offset: int) -> ListPage:
        """Failed watches whose app, repository and error contain the filter's texts, newest failure first."""
        ...

    def failed_matching(self, matching: FailedFilter) -> list[tuple[str, str]]: ...


@dataclass(frozen=True)
class Transaction:
    apps: Apps
    repositories: Repositories
    watches: Watches
    snapshots: Snapshots
    deliveries: Deliveries
    operations: Operations
    admin: AdminViews


class Store(Protocol):
    def transaction(self) -> AbstractContextManager[Transaction]: ...

    def acknowledge(self, app_id: str, repository_id: str, change: Change, attempt: Attempt) -> bool:
        """Log `attempt`, which delivered `change`, and write its ledger row (remove it for a delete), as one unit of
        work of its own, sent at once. Its answer is read by the next `acknowledge` or `settle`, which return it:
        whether the app's deliveries were still active (not paused) then; or raise NotFound when that earlier
        acknowledgement found the watch gone. (`transaction` reads an answer left unread too, and ignores it: the
        job that sent it stopped on an error.)

        Not durable when it returns: a crash of the database (not of the caller) within a fraction of a second may
        undo it; the database's next flush of its log, or any durable commit after it, makes it durable.
        """
        ...

    def settle(self) -> bool:
        """Read the answer to the last acknowledgement, if it is still unread (True when there is none): whether the
        app's deliveries were still active; NotFound when the watch was gone.
        """
        ...

    def ping(self) -> None:
        """Raise Unavailable when the database does not answer."""
        ...


class GitRemote(Protocol):
    """A git server over smart HTTP; failures are NotFound, Unprocessable (token) or Unavailable."""

    def head(self, url: str, branch: str, token: str | None) -> str | None: ...

    def fetch_tree(
        self, url: str, branch: str, token: str | None, since: str | None = None, *, commit: str | None = None
    ) -> FetchedTree:
        """The files of the branch's tip, or of `commit` (the head the caller just read: one request less); only those
        changed since `since` when the adapter's cache still holds that commit."""
        ...

    def read_blobs(self, url: str, token: str | None, blob_ids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Fetch these blobs and yield each (blob id, content), one content in memory at a time, in no set order.

        Fails as a whole, mid-iteration included, with the errors above.
        """
        ...

    def ignore_filter(self, patterns: bytes) -> Callable[[bytes], bool]: ...


class HeadChecker(Protocol):
    def heads(self, probes: Iterable[HeadProbe]) -> Iterator[ProbedHead]:
        """Each probe's branch head, many at once, as they complete (in no set order); a failure is an answer too."""
        ...


class Contents(Protocol):
    """File contents, written by the scan and read by delivery; small ones many to an object (see domain.bundles)."""

    def put_many(self, contents: Iterable[NewContent]) -> dict[str, BundleSlot | None]:
        """Store each content; where each now is, by SHA-256 (hex): a bundle slot, or None for an object of its own.

        `contents` is consumed lazily, so a caller can read contents one at a time.
        """
        ...

    def open(self, content: StoredContent) -> BinaryIO:
        """A stream of the content; NotFound when the bucket does not have it."""
        ...

    def read_each(self, contents: Iterable[StoredContent]) -> AbstractContextManager[Iterator[bytes]]:
        """Each content whole, in order, a few read ahead meanwhile; NotFound on reaching one the bucket lacks, or
        one that does not match its SHA-256.

        Meant for small contents: memory holds those read ahead.
        """
        ...

    def delete_many(self, objects: StoredObjects) -> None: ...

    def ping(self) -> None: ...


class HeldLocks(Protocol):
    @property
    def held(self) -> frozenset[str]:
        """The names taken; the others are held by someone else."""
        ...

    def release(self, name: str) -> None:
        """Let go of one before the block ends (once a lane is done, say); the rest stay held."""
        ...


class Locks(Protocol):
    def hold(self, name: str) -> AbstractContextManager[bool]:
        """Hold `name` for as long as the block runs (renewed meanwhile); False when someone else holds it."""
        ...

    def hold_each(self, names: list[str]) -> AbstractContextManager[HeldLocks]:
        """Hold each of `names` that is free, until the block ends or it is released (renewed meanwhile)."""
        ...

    def claim(self, name: str, *, seconds: int) -> bool:
        """True for the first caller within `seconds`; False for the others (deduplication)."""
        ...

    def ask_again(self, name: str, requested_at: datetime) -> None:
        """Leave word for the holder of `name` that work was requested at `requested_at`."""
        ...

    def asked_again_since(self, name: str, since: datetime) -> datetime | None:
        """The latest word left after `since`, if any; reading clears it."""
        ...


@dataclass(frozen=True)
class SlotLease:
    name: str
    lease_id: str
    granted: int


@dataclass(frozen=True)
class SlotRequest:
    name: str
    want: int
    limit: int


class Slots(Protocol):
    """Capacity shared by concurrent jobs: at most `limit` slots of one name are out at once, over all of them."""

    def take(self, requests: Sequence[SlotRequest], *, now: datetime, seconds: int) -> list[SlotLease]:
        """For each request, up to `want` slots while fewer than `limit` are out (0 when none is free), in one round
        trip; each lease lapses `seconds` after `now` unless renewed, so a job that dies gives its slots back."""
        ...

    def renew(self, leases: Sequence[SlotLease], *, now: datetime, seconds: int) -> None:
        """These leases lapse `seconds` after `now` instead (a lapsed one stays lapsed)."""
        ...

    def give_back(self, lease: SlotLease) -> None: ...


class DeliveryQueue(Protocol):
    def request_delivery(self, app_id: str, repository_id: str, delay_seconds: int = 0) -> None: ...

    def request_deliveries(self, watches: Sequence[tuple[str, str]]) -> None:
        """Deliveries for these (app, repository) pairs: one message per repository, naming its apps (up to 50)."""
        ...

    def working_on(self, receipt_handle: str) -> AbstractContextManager[None]:
        """Keep a received message hidden while the block runs, a short while at a time, so that it reappears soon
        after a job that dies."""
        ...

    def depth(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class WebhookResult:
    status_code: int | None  # None: no HTTP answer at all, and `error` says why
    retry_after: str | None
    error: str | None
    duration_ms: int


class Webhooks(Protocol):
    def send(self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = 30.0) -> WebhookResult:
        """POST once, never following redirects; never raises for what the network or the receiver does."""
        ...


class Cipher(Protocol):
    """AES-256-GCM in the original Docora's text format."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, value: str) -> str: ...


class TokenHasher(Protocol):
    """bcrypt for bearer tokens: slow on purpose; and a keyed digest of each token, to find its row."""

    def lookup_key(self, token: str) -> bytes: ...

    def hash(self, token: str) -> str: ...

    def verify(self, token: str, token_hash: str) -> bool: ...


@dataclass(frozen=True)
class GitHubRepository:
    owner: str
    name: str
    is_private: bool
    default_branch: str


class GitHub(Protocol):
    def repository(self, owner: str, name: str, token: str | None) -> GitHubRepository:
        """Raise NotFound, Unprocessable (token rejected) or Unavailable (rate limit, outage)."""
        ...

    def has_branch(self, owner: str, name: str, branch: str, token: str | None) -> bool: ...


class ScanQueue(Protocol):
    def request_scan(self, repository_id: str, requested_at: datetime, *, refresh: bool = False) -> None: ...

    def request_scans(self, repository_ids: Sequence[str], requested_at: datetime) -> None:
        """One request per repository, sent in batches."""
        ...

    def ping(self) -> None: ...

    def depth(self) -> dict[str, int]:
        """Messages waiting, in flight and delayed, as SQS estimates them."""
        ...


class RateLimiter(Protocol):
    def acquire(self, key: str, per_minute: int) -> int | None:
        """Take one token from `key`'s bucket; None when allowed, else seconds until one is free."""
        ...

    def acquire_many(self, key: str, per_minute: int, *, up_to: int) -> tuple[int, int | None]:
        """Take as many of `up_to` tokens as the bucket holds: (taken, None), or (0, seconds until one is free)."""
        ...

    def ping(self) -> None: ...


class Sessions(Protocol):
    """The operator's dashboard sessions, each kept until it expires or is ended."""

    def put(self, session: OperatorSession, *, now: datetime) -> None: ...

    def get(self, session_id: str) -> OperatorSession | None: ...

    def end(self, session_id: str) -> None: ...


class Resolver(Protocol):
    def addresses(self, host: str) -> list[str]:
        """Every address `host` resolves to; an empty list when it does not resolve."""
        ...


class OriginalDocora(Protocol):
    """The original TypeScript Docora's database, read only (python -m chalicelib.import_original)."""

    def columns(self) -> dict[str, set[str]]:
        """The columns of each table the importer reads, as the database has them."""
        ...

    def apps(self) -> list[OriginalApp]: ...

    def repositories(self) -> list[OriginalRepository]: ...

    def watches(self) -> list[OriginalWatch]: ...

    def ledger(self, app_id: str) -> list[LedgerEntry]: ...


class ImportTarget(Protocol):
    """Docora's database as the importer writes it: whole apps, ids kept."""

    def is_migrated(self) -> bool:
        """Whether the migrations the import needs are applied."""
        ...

    def present_apps(self, app_ids: list[str]) -> dict[str, bool]:
        """Which of these apps are here already, each with whether it was imported."""
        ...

    def repository_ids(self) -> dict[tuple[str, str], str]:
        """Every repository's id by (github_url, branch)."""
        ...

    def write(self, plan: AppImport, *, now: datetime) -> bool:
        """Write the app and what hangs off it in one transaction; False when the app is there already."""
        ...


@dataclass(frozen=True)
class Deps:
    """The ports every service may use. Settings are not here: each service takes a small config of its own."""

    store: Store
    cipher: Cipher
    token_hasher: TokenHasher
    github: GitHub
    scan_queue: ScanQueue
    rate_limiter: RateLimiter
    resolver: Resolver
    git: GitRemote
    heads: HeadChecker
    contents: Contents
    locks: Locks
    slots: Slots
    delivery_queue: DeliveryQueue
    webhooks: Webhooks
    sessions: Sessions
    # The delivery job's sender threads: a transfer runs there while the job's thread starts others and acknowledges.
    workers: Executor
