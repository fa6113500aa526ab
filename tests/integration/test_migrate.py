"""The migration runner: in order, once each, one transaction per file, refusing edited history."""

from __future__ import annotations

import psycopg
import pytest

from chalicelib import migrate
from chalicelib.migrate import Migration, MigrationError


def applied(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM schema_migrations ORDER BY name")]


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows}


@pytest.fixture
def empty_database(admin_database_url):
    import uuid

    from psycopg import sql

    name = f"docora_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(admin_database_url, dbname=name)
    with psycopg.connect(admin_database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_repository_migrations_build_the_whole_schema(empty_database):
    names = migrate.migrate(empty_database)

    assert names == [m.name for m in migrate.load()]
    assert {"apps", "repositories", "watches", "snapshots", "snapshot_files", "delivered_files"} <= tables(
        empty_database
    )
    assert "delivery_attempts" in tables(empty_database)


def test_running_twice_applies_nothing_the_second_time(empty_database):
    migrate.migrate(empty_database)

    assert migrate.migrate(empty_database) == []


def test_a_changed_applied_migration_is_refused(empty_database):
    migrate.migrate(empty_database, [Migration("0001_a.sql", "CREATE TABLE a (id int)")])

    with pytest.raises(MigrationError, match="0001_a.sql"):
        migrate.migrate(empty_database, [Migration("0001_a.sql", "CREATE TABLE a (id bigint)")])


def test_a_failing_migration_leaves_nothing_of_itself_and_keeps_earlier_ones(empty_database):
    good = Migration("0001_good.sql", "CREATE TABLE good (id int)")
    bad = Migration("0002_bad.sql", "CREATE TABLE half (id int); SELECT * FROM missing_table")

    with pytest.raises(psycopg.errors.UndefinedTable):
        migrate.migrate(empty_database, [good, bad])

    assert applied(empty_database) == ["0001_good.sql"]
    assert "half" not in tables(empty_database)


def test_new_migrations_are_applied_in_name_order(empty_database):
    first = Migration("0001_a.sql", "CREATE TABLE a (id int)")
    second = Migration("0002_b.sql", "ALTER TABLE a ADD COLUMN b int")
    migrate.migrate(empty_database, [first])

    assert migrate.migrate(empty_database, [first, second]) == ["0002_b.sql"]


def test_the_command_names_a_missing_database_url(capsys):
    assert migrate.main({}) == 1
    assert "DATABASE_URL" in capsys.readouterr().err
