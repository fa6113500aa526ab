"""Moving from the original Docora: its database imported, then the real pipeline, without a single re-delivery."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from chalice.test import Client
from psycopg import sql

from chalicelib import import_original, wiring
from chalicelib.adapters.aes_cipher import AesGcmCipher
from chalicelib.domain import tokens
from docora_local.harness.receivers import PythonReceiver
from docora_local.harness.scan_stack import scan_stack
from tests.integration.original_docora import ORIGINAL_KEY, OriginalDocora, sha256
from tests.unit.test_aes_cipher import NODE_VECTORS

GITHUB_TOKEN, GITHUB_TOKEN_ENCRYPTED = NODE_VECTORS[0]
UNICODE_KEY, UNICODE_KEY_ENCRYPTED = NODE_VECTORS[1]
HEX_KEY, HEX_KEY_ENCRYPTED = NODE_VECTORS[3]
# The longest key the original could store: 66 + 2 x 217 = 500 characters of ciphertext.
LONGEST_STORABLE_KEY = "k" * 217
# The original accepted keys of up to 500 characters and then failed to store those over 217 bytes; an operator who
# widened the column has them.
WIDE_KEY = "w" * 500

MAIN, UNICODE, LONGEST, WIDE = ("app_" + digit * 24 for digit in "1234")
WIDGETS, SECRET = "repo_" + "a" * 24, "repo_" + "b" * 24
TOKENS = {app_id: tokens.new_bearer_token() for app_id in (MAIN, UNICODE, LONGEST, WIDE)}
BEFORE = {"a.md": b"alpha\n", "b.md": b"bravo\n", "c.md": b"charlie\n"}
SECRET_FILES = {"s.md": b"secret\n"}
ENV = {"ENCRYPTION_KEY": ORIGINAL_KEY.hex(), "ALLOW_PRIVATE_WEBHOOK_TARGETS": "true"}


@pytest.fixture
def original(admin_database_url):
    name = f"original_docora_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    source = OriginalDocora(psycopg.conninfo.make_conninfo(admin_database_url, dbname=name))
    source.create_schema()
    yield source
    with psycopg.connect(admin_database_url, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def receiver():
    server = PythonReceiver().start()
    yield server
    server.stop()


def as_url(conninfo: str) -> str:
    """DATABASE_URL as an operator writes it; the fixtures give key=value connection strings."""
    parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    password = f":{parts['password']}" if parts.get("password") else ""
    return f"postgresql://{parts['user']}{password}@{parts['host']}:{parts['port']}/{parts['dbname']}"


def run_import(original, database_url, *arguments, **environ):
    env = {**ENV, "DATABASE_URL": as_url(database_url), **environ}
    return import_original.main(["--from", as_url(original.url), *arguments], env)


def seed(original, base_url, *, widgets_commit=None, secret_commit=None):
    """Four apps, one with a non-ASCII name and ones with the longest keys; watches in every status; ledgers."""
    original.execute("ALTER TABLE apps ALTER COLUMN client_auth_key_encrypted TYPE varchar(1100)")
    cipher = original.cipher
    original.add_app(MAIN, token=TOKENS[MAIN], key_encrypted=HEX_KEY_ENCRYPTED, base_url=base_url, rounds=12)
    original.add_app(
        UNICODE, token=TOKENS[UNICODE], key_encrypted=UNICODE_KEY_ENCRYPTED, base_url=base_url, name="Dépôt ✓ ミラー 🚀"
    )
    longest = cipher.encrypt(LONGEST_STORABLE_KEY)
    assert len(longest) == 500
    original.add_app(LONGEST, token=TOKENS[LONGEST], key_encrypted=longest, base_url=base_url + "/")
    original.add_app(WIDE, token=TOKENS[WIDE], key_encrypted=cipher.encrypt(WIDE_KEY), base_url=base_url)
    original.add_repository(WIDGETS, "Acme", "Widgets", commit=widgets_commit)
    original.add_repository(SECRET, "acme", "secret", private=True, commit=secret_commit)
    delivered = {path: sha256(content) for path, content in BEFORE.items()}
    original.add_watch(MAIN, WIDGETS, "synced")
    original.add_ledger(MAIN, WIDGETS, delivered)
    original.add_watch(WIDE, WIDGETS, "synced")
    original.add_ledger(WIDE, WIDGETS, delivered)
    original.add_watch(UNICODE, SECRET, "failed", token_encrypted=GITHUB_TOKEN_ENCRYPTED, retry_count=3,
                       last_error="HTTP 500 from the receiver")  # fmt: skip
    original.add_ledger(UNICODE, SECRET, {path: sha256(content) for path, content in SECRET_FILES.items()})
    original.add_watch(LONGEST, WIDGETS, "pending_snapshot")
    original.add_watch(LONGEST, SECRET, "scanning", token_encrypted=cipher.encrypt(GITHUB_TOKEN))


def verifies(request, key: str) -> bool:
    timestamp = request.headers["X-Docora-Timestamp"]
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), request.headers["X-Docora-Signature"])


def received(receiver, app_id):
    return [r for r in receiver.requests if r.headers["X-Docora-App-Id"] == app_id]


def events(requests):
    return [(r.path, json.loads(r.body)["file"]["path"]) for r in requests]


def test_after_the_import_the_pipeline_sends_only_what_changed_signed_with_the_original_keys(
    tmp_path, database_url, redis_url, monkeypatch, original, receiver
):
    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, encryption_key=ORIGINAL_KEY) as stack:
        widgets, secret = stack.make_repo("Acme/Widgets"), stack.make_repo("acme/secret")
        first = widgets.commit(BEFORE)
        seed(original, receiver.url, widgets_commit=first, secret_commit=secret.commit(SECRET_FILES))
        widgets.commit({"b.md": b"bravo, changed since\n", "c.md": None})  # while the original was stopped

        assert run_import(original, database_url) == 0
        stack.sweep(at=datetime.now(UTC))
        assert sorted(request.repository_id for request in stack.scans_requested()) == [WIDGETS, SECRET]
        stack.scan(WIDGETS, at=datetime.now(UTC))
        stack.git_server.require_token(GITHUB_TOKEN)  # the private repository reads with the imported token
        stack.scan(SECRET, at=datetime.now(UTC))
        stack.git_server.require_token(None)
        for app_id, repository_id in stack.deliveries_requested():
            stack.deliver(app_id, repository_id)

        for app_id, key in ((MAIN, HEX_KEY), (WIDE, WIDE_KEY)):
            assert events(received(receiver, app_id)) == [("/delete", "c.md"), ("/update", "b.md")]
            assert all(verifies(request, key) for request in received(receiver, app_id))
        assert received(receiver, UNICODE) == []  # its ledger matches the repository
        assert sorted(events(received(receiver, LONGEST))) == [("/create", "a.md"), ("/create", "b.md"),
                                                               ("/create", "s.md")]  # fmt: skip
        assert all(verifies(request, LONGEST_STORABLE_KEY) for request in received(receiver, LONGEST))
        repository = {"repository_id": WIDGETS, "github_url": "https://github.com/Acme/Widgets", "owner": "Acme",
                      "name": "Widgets"}  # fmt: skip
        prefix = '{"repository":' + json.dumps(repository, separators=(",", ":"), ensure_ascii=False)
        assert received(receiver, MAIN)[0].body.startswith(prefix.encode())  # what the original sent, byte for byte
        assert stack.rows("SELECT DISTINCT max_in_flight FROM apps") == [(1,)]


def test_an_original_bearer_token_works_and_then_goes_by_its_lookup_key(
    tmp_path, database_url, redis_url, monkeypatch, original, receiver
):
    seed(original, receiver.url)
    assert run_import(original, database_url) == 0

    with scan_stack(tmp_path, database_url, redis_url, monkeypatch, encryption_key=ORIGINAL_KEY) as stack:
        monkeypatch.setattr(wiring, "deps", lambda: stack.deps)
        import app

        with Client(app.app) as client:
            headers = {"Authorization": f"Bearer {TOKENS[MAIN]}"}
            reply = client.http.get("/api/repositories", headers=headers)
            again = client.http.get("/api/repositories", headers=headers)
            wrong = client.http.get(
                "/api/repositories", headers={"Authorization": f"Bearer {tokens.new_bearer_token()}"}
            )

        assert (reply.status_code, again.status_code, wrong.status_code) == (200, 200, 401)
        (watch,) = reply.json_body["repositories"]
        assert (watch["repository_id"], watch["github_url"], watch["status"]) == (
            WIDGETS,
            "https://github.com/Acme/Widgets",
            "synced",
        )
        assert stack.rows("SELECT id FROM apps WHERE token_lookup IS NOT NULL") == [(MAIN,)]


def table_rows(database_url):
    queries = {
        "apps": "SELECT id, app_name, base_url, token_lookup, token_hash, client_auth_key_encrypted, delivery_state,"
        " max_in_flight, created_at, imported_at FROM apps ORDER BY id",
        "repositories": "SELECT * FROM repositories ORDER BY id",
        "watches": "SELECT * FROM watches ORDER BY app_id, repository_id",
        "ledger": "SELECT * FROM delivered_files ORDER BY app_id, repository_id, path",
    }
    with psycopg.connect(database_url) as connection:
        return {name: connection.execute(query).fetchall() for name, query in queries.items()}


def test_the_import_keeps_the_originals_rows_and_a_second_run_changes_nothing(original, database_url, capsys):
    seed(original, "http://127.0.0.1:9")
    assert run_import(original, database_url) == 0
    first = table_rows(database_url)
    capsys.readouterr()

    assert run_import(original, database_url) == 0

    assert table_rows(database_url) == first
    assert capsys.readouterr().out.count("already imported; left alone") == 4
    watches = {(row[0], row[1]): row[3:6] for row in first["watches"]}
    assert watches == {
        (MAIN, WIDGETS): ("synced", 0, None),
        (WIDE, WIDGETS): ("synced", 0, None),
        (UNICODE, SECRET): ("failed", 3, "HTTP 500 from the receiver"),
        (LONGEST, WIDGETS): ("pending", 0, None),
        (LONGEST, SECRET): ("pending", 0, None),
    }
    apps = {row[0]: row for row in first["apps"]}
    assert apps[UNICODE][1] == "Dépôt ✓ ミラー 🚀"
    assert apps[LONGEST][2] == "http://127.0.0.1:9"  # the trailing / is not doubled later
    assert apps[MAIN][5] == HEX_KEY_ENCRYPTED  # kept as it is, and it decrypts here
    assert AesGcmCipher(ORIGINAL_KEY).decrypt(apps[WIDE][5]) == WIDE_KEY
    assert len(first["ledger"]) == 7
    assert [(row[1], row[4]) for row in first["repositories"]] == [
        ("https://github.com/Acme/Widgets", "main"),
        ("https://github.com/acme/secret", "main"),
    ]


def test_a_dry_run_reports_what_would_be_imported_and_writes_nothing(original, database_url, capsys):
    seed(original, "http://127.0.0.1:9")

    assert run_import(original, database_url, "--dry-run") == 0

    out = capsys.readouterr().out
    assert "would import 4 app(s) (0 paused), 2 repositories, 5 watch(es), 7 ledger row(s)" in out
    assert all(rows == [] for rows in table_rows(database_url).values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("ALTER TABLE apps DROP COLUMN client_auth_key_encrypted",
         "table apps lacks column(s) client_auth_key_encrypted"),
        ("DROP TABLE app_delivered_files", "table app_delivered_files is missing (changeset 006-01)"),
        ("ALTER TABLE app_repositories DROP COLUMN status, DROP COLUMN retry_count",
         "table app_repositories lacks column(s) status, retry_count"),
    ],
    ids=["before 004", "before 006", "before 003"],
)  # fmt: skip
def test_a_source_that_is_not_the_originals_final_schema_is_refused_by_name(
    original, database_url, capsys, change, message
):
    original.execute(change)

    assert run_import(original, database_url) == 1

    assert message in capsys.readouterr().err
    assert table_rows(database_url)["apps"] == []


def test_a_source_whose_values_do_not_decrypt_with_this_key_is_refused(original, database_url, capsys):
    seed(original, "http://127.0.0.1:9")

    assert run_import(original, database_url, ENCRYPTION_KEY="ab" * 32) == 1

    err = capsys.readouterr().err
    assert "none of the source's 6 encrypted values decrypts with this ENCRYPTION_KEY" in err
    assert table_rows(database_url)["apps"] == []


def test_rows_docora_cannot_take_are_skipped_or_imported_paused_each_with_its_reason(original, database_url, capsys):
    good, private, refused_key = ("app_" + digit * 24 for digit in "567")
    original.add_app(good, token=TOKENS[MAIN], key_encrypted=HEX_KEY_ENCRYPTED, base_url="https://93.184.216.34/h")
    original.add_app(private, token=TOKENS[MAIN], key_encrypted=HEX_KEY_ENCRYPTED, base_url="https://10.1.2.3/hooks")
    original.add_app(refused_key, token=TOKENS[MAIN], key_encrypted="00" * 16 + ":" + "00" * 16 + ":00",
                     base_url="https://93.184.216.34/h")  # fmt: skip
    original.add_app(
        "app_NOT-HEX", token=TOKENS[MAIN], key_encrypted=HEX_KEY_ENCRYPTED, base_url="https://93.184.216.34"
    )
    original.add_repository(WIDGETS, "acme", "widgets")
    original.add_repository(SECRET, "acme", "secret", private=True)
    original.add_watch(good, WIDGETS, "synced")
    original.add_ledger(good, WIDGETS, {"a.md": sha256(b"a"), "b.md": "not-a-sha256"})
    original.add_watch(good, SECRET, "synced", token_encrypted=UNICODE_KEY_ENCRYPTED[:-2] + "00")
    original.add_repository("repo_" + "c" * 24, "Acme", "Widgets")  # the original compared URLs exactly
    original.add_watch(private, "repo_" + "c" * 24, "synced")

    status = run_import(original, database_url, ALLOW_PRIVATE_WEBHOOK_TARGETS="false")

    out = capsys.readouterr().out
    assert status == 2
    assert f"app {good}: imported, 1 watch(es), 1 ledger row(s)" in out
    assert f"watch {good}/{SECRET}: skipped: github_token_encrypted does not decrypt" in out
    assert f"ledger {good}/{WIDGETS}: a row's file_sha is not a SHA-256; that file will be sent again" in out
    assert f"app {private}: imported, 0 watch(es), 0 ledger row(s); imported paused: Docora refuses its base_url" in out
    assert (
        f"watch {private}/repo_{'c' * 24}: skipped: Docora already has this repository and branch as {WIDGETS}" in out
    )
    assert f"app {refused_key}: skipped: client_auth_key_encrypted does not decrypt" in out
    assert "app app_NOT-HEX: skipped: app_id is not app_ followed by 24 hex characters" in out
    assert "10.1.2.3" not in out  # a base_url may carry credentials: never printed
    for secret in (HEX_KEY, UNICODE_KEY, GITHUB_TOKEN, TOKENS[MAIN], HEX_KEY_ENCRYPTED):
        assert secret not in out
    states = dict(
        (row[0], row[6]) for row in table_rows(database_url)["apps"]
    )  # only the two imported, one of them paused
    assert states == {good: "active", private: "paused"}


def test_a_source_that_cannot_be_reached_or_read_is_refused_without_echoing_its_url(database_url, capsys):
    unreachable = "postgresql://importer:hunter2-secret@127.0.0.1:1/original"
    malformed = "host=127.0.0.1 password=hunter2-secret broken"
    env = {**ENV, "DATABASE_URL": as_url(database_url)}

    statuses = [import_original.main(["--from", url], env) for url in (unreachable, malformed)]

    err = capsys.readouterr().err
    assert statuses == [1, 1]
    assert "refused: cannot connect to the original's database" in err
    assert "refused: the URL of the original's database is not a valid Postgres connection URL" in err
    assert "hunter2" not in err


def test_an_unmigrated_docora_database_is_refused(original, capsys):
    seed(original, "http://127.0.0.1:9")

    assert import_original.main(["--from", as_url(original.url)], {**ENV, "DATABASE_URL": as_url(original.url)}) == 1

    assert "Docora's database is not migrated: run `make migrate` first" in capsys.readouterr().err
