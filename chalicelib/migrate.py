"""Applies sql/migrations in order, once each, one transaction per file: `python -m chalicelib.migrate`.

It runs outside the request path (Chalice does not deploy `sql/`), before traffic, and tests build
their databases with it. An applied file whose text has changed is refused rather than re-run.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "sql" / "migrations"

# Any constant works; it only has to be the same for every runner of this schema.
_ADVISORY_LOCK_ID = 0x646F636F7261

_CREATE_LEDGER = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        name        text PRIMARY KEY,
        checksum    text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
    )
"""
_SELECT_APPLIED = "SELECT name, checksum FROM schema_migrations"
_RECORD = "INSERT INTO schema_migrations (name, checksum) VALUES (%(name)s, %(checksum)s)"


class MigrationError(Exception):
    """The migrations on disk disagree with what the database says it applied."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    return [Migration(path.name, path.read_text()) for path in sorted(directory.glob("*.sql"))]


def migrate(database_url: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is not applied yet; return the names applied now."""
    migrations = load() if migrations is None else migrations
    applied_now = []
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(_CREATE_LEDGER)
        # Two runners at once (two deploys) must not both apply the same file.
        connection.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_ID,))
        try:
            applied = dict(connection.execute(_SELECT_APPLIED).fetchall())
            for migration in _pending(migrations, applied):
                with connection.transaction():
                    connection.execute(migration.sql)
                    connection.execute(_RECORD, {"name": migration.name, "checksum": migration.checksum})
                applied_now.append(migration.name)
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_ID,))
    return applied_now


def _pending(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    pending = []
    for migration in migrations:
        checksum = applied.get(migration.name)
        if checksum is None:
            pending.append(migration)
        elif checksum != migration.checksum:
            raise MigrationError(f"{migration.name} was changed after it was applied; add a new migration instead")
    return pending


def main(environ: dict[str, str] | None = None) -> int:
    from chalicelib.config import ConfigurationError, database_url_from_env

    try:
        url = database_url_from_env(environ)
        names = migrate(url)
    except (ConfigurationError, MigrationError, psycopg.Error) as error:
        print(f"migrate: {error}", file=sys.stderr)
        return 1
    print(f"migrate: applied {len(names)} migration(s)" + (": " + ", ".join(names) if names else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
