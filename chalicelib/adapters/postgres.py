"""Postgres access: one connection per Lambda container, one transaction per unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg

from chalicelib import errors
from chalicelib.adapters.postgres_admin import PostgresAdmin
from chalicelib.adapters.postgres_apps import PostgresApps
from chalicelib.adapters.postgres_deliveries import PostgresDeliveries
from chalicelib.adapters.postgres_operations import PostgresOperations
from chalicelib.adapters.postgres_repositories import PostgresRepositories
from chalicelib.adapters.postgres_snapshots import PostgresSnapshots
from chalicelib.adapters.postgres_watches import PostgresWatches
from chalicelib.domain.deliveries import Attempt, Change
from chalicelib.ports import Transaction

_CONNECT_TIMEOUT_SECONDS = 5


class PostgresStore:
    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: psycopg.Connection | None = None
        self._unanswered = False  # an acknowledgement is sent and its answer not read yet

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with suppress(errors.NotFound):
            self.settle()  # an answer left unread by a job that stopped on an error: that job is over
        connection = self._connect()
        with _translated(), connection.transaction():
            yield Transaction(
                apps=PostgresApps(connection),
                repositories=PostgresRepositories(connection),
                watches=PostgresWatches(connection),
                snapshots=PostgresSnapshots(connection),
                deliveries=PostgresDeliveries(connection),
                operations=PostgresOperations(connection),
                admin=PostgresAdmin(connection),
            )

    def acknowledge(self, app_id: str, repository_id: str, change: Change, attempt: Attempt) -> bool:
        active = self.settle()
        connection = self._connect()
        with _translated():
            PostgresDeliveries(connection).send_acknowledgement(app_id, repository_id, change, attempt)
        self._unanswered = True
        return active

    def settle(self) -> bool:
        if not self._unanswered:
            return True
        self._unanswered = False
        with _translated():
            return PostgresDeliveries(self._connect()).read_acknowledgement()

    def ping(self) -> None:
        self.settle()
        with _translated():
            self._connect().execute("SELECT 1")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def _connect(self) -> psycopg.Connection:
        # Reused by warm invocations. psycopg notices a dead connection only when a call fails;
        # that call errors, and its retry finds `closed` and reconnects.
        if self._connection is None or self._connection.closed:
            with _translated():
                self._connection = psycopg.connect(self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECONDS)
        return self._connection


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as error:
        raise errors.Unavailable("the database is not available") from error
