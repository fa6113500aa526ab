"""Payload bytes, signatures, delivery ids and URLs, checked against literals and against Node.js itself."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.domain import webhooks
from chalicelib.domain.chunks import Chunk
from chalicelib.domain.webhooks import RepositoryRef

REPO = RepositoryRef("repo_0123456789abcdef01234567", "https://github.com/octo/hello", "octo", "hello")
WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
SHA = "a" * 64
OLD_SHA = "b" * 64
COMMIT = "c" * 40
REPO_JSON = (
    '{"repository_id":"repo_0123456789abcdef01234567","github_url":"https://github.com/octo/hello",'
    '"owner":"octo","name":"hello"}'
)


def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("Node.js is required: these tests compare with JavaScript itself, and `node` is not on PATH")
    return path


def run_node(script: str, stdin: bytes) -> str:
    done = subprocess.run([node(), "-e", script], input=stdin, capture_output=True, check=True, timeout=30)
    return done.stdout.decode()


def test_create_body_is_compact_json_in_protocol_key_order():
    body = webhooks.create_body(REPO, "docs/readme.md", SHA, 5, "hello", None, COMMIT, WHEN)

    expected = (
        '{"repository":' + REPO_JSON + ',"file":{"path":"docs/readme.md","sha":"' + SHA + '","size":5,'
        '"content":"hello"},"commit_sha":"' + COMMIT + '","timestamp":"2024-05-06T07:08:09.123Z"}'
    )
    assert body == expected.encode()


def test_binary_create_body_says_base64_and_puts_the_chunk_last_in_file():
    chunk = Chunk(id="chk_1", index=2, total=3)

    body = webhooks.create_body(REPO, "img.png", SHA, 9, "AAEC", "base64", COMMIT, WHEN, chunk=chunk)

    expected = (
        '{"repository":' + REPO_JSON + ',"file":{"path":"img.png","sha":"' + SHA + '","size":9,"content":"AAEC",'
        '"content_encoding":"base64","chunk":{"id":"chk_1","index":2,"total":3}},"commit_sha":"' + COMMIT + '",'
        '"timestamp":"2024-05-06T07:08:09.123Z"}'
    )
    assert body == expected.encode()


def test_update_body_puts_previous_sha_between_file_and_commit_sha():
    body = webhooks.update_body(REPO, "a.txt", SHA, 1, "x", None, OLD_SHA, COMMIT, WHEN)

    expected = (
        '{"repository":' + REPO_JSON + ',"file":{"path":"a.txt","sha":"' + SHA + '","size":1,"content":"x"},'
        '"previous_sha":"' + OLD_SHA + '","commit_sha":"' + COMMIT + '","timestamp":"2024-05-06T07:08:09.123Z"}'
    )
    assert body == expected.encode()


def test_delete_body_carries_only_path_and_sha():
    body = webhooks.delete_body(REPO, "gone.txt", OLD_SHA, COMMIT, WHEN)

    expected = (
        '{"repository":' + REPO_JSON + ',"file":{"path":"gone.txt","sha":"' + OLD_SHA + '"},'
        '"commit_sha":"' + COMMIT + '","timestamp":"2024-05-06T07:08:09.123Z"}'
    )
    assert body == expected.encode()


def test_sync_failed_body_starts_with_the_event_and_describes_the_open_circuit():
    cooldown = WHEN + timedelta(minutes=30)

    body = webhooks.sync_failed_body(REPO, "clone failed: timeout", 5, 5, cooldown, 2, WHEN)

    expected = (
        '{"event":"sync_failed","repository":' + REPO_JSON + ',"error":{"type":"git_failure",'
        '"message":"clone failed: timeout"},"circuit_breaker":{"status":"open","consecutive_failures":5,'
        '"threshold":5,"cooldown_until":"2024-05-06T07:38:09.123Z"},"retry_count":2,'
        '"timestamp":"2024-05-06T07:08:09.123Z"}'
    )
    assert body == expected.encode()


def test_non_ascii_is_written_as_utf8_not_as_escapes():
    body = webhooks.create_body(REPO, "café/漢字.md", SHA, 1, "é 漢 😀 \u2028", None, COMMIT, WHEN)

    assert "café/漢字.md".encode() in body
    assert "é 漢 😀 \u2028".encode() in body
    assert b"\\u" not in body


def test_unknown_content_encoding_is_refused():
    with pytest.raises(ValueError):
        webhooks.create_body(REPO, "a", SHA, 1, "x", "gzip", COMMIT, WHEN)


def test_lone_surrogates_are_escaped_and_pairs_joined_as_javascript_does():
    body = webhooks.create_body(REPO, "a", SHA, 1, "x\udc80y\ud83d\ude00z", None, COMMIT, WHEN)

    assert '"content":"x\\udc80y😀z"'.encode() in body


def test_javascript_reserialises_every_body_to_the_same_bytes():
    contents = [
        "accents: éàüñç",
        "CJK: 漢字かなカナ한국어",
        "emoji: 😀👍🏽👨‍👩‍👧",
        "separators: \u2028 \u2029",
        "controls: " + "".join(chr(code) for code in range(0x20)) + "\x7f",
        'quotes and slashes: " \\ / \\" \\\\',
        "lone: \ud800 \udfff",
        "\ufeff BOM and \u00a0 and \u0085",
    ]
    bodies = [webhooks.create_body(REPO, f"f{n}", SHA, 1, c, None, COMMIT, WHEN) for n, c in enumerate(contents)]
    script = (
        "const bodies = require('fs').readFileSync(0, 'utf8').split('\\n');"
        "process.stdout.write(JSON.stringify(bodies.map(b => JSON.stringify(JSON.parse(b)) === b)));"
    )

    # Compact JSON never contains a raw newline, so one per line is unambiguous.
    same = json.loads(run_node(script, b"\n".join(bodies)))

    assert same == [True] * len(contents)


def test_format_timestamp_truncates_to_milliseconds_in_utc():
    paris = timezone(timedelta(hours=2))

    formatted = webhooks.format_timestamp(datetime(2024, 1, 2, 5, 4, 5, 999999, tzinfo=paris))

    assert formatted == "2024-01-02T03:04:05.999Z"


def test_format_timestamp_refuses_a_naive_datetime():
    with pytest.raises(ValueError):
        webhooks.format_timestamp(datetime(2024, 1, 2))


def test_signature_matches_a_known_vector():
    body = '{"a":"é😀"}'.encode()

    signed = webhooks.signature("s3cret-κλειδί", 1700000000, body)

    assert signed == "sha256=add0eb3b50cebcdd7e00413c3ddb95ca20bf3e04cadd5f5a998a3882d20f746a"


def test_signature_matches_node_crypto_over_the_reserialised_body():
    body = webhooks.create_body(REPO, "a.md", SHA, 3, "é\u2028😀\x01", None, COMMIT, WHEN)
    script = (
        "const raw = require('fs').readFileSync(0, 'utf8');"
        "const text = `1700000000.${JSON.stringify(JSON.parse(raw))}`;"
        "process.stdout.write(require('crypto').createHmac('sha256', 'k€y').update(text).digest('hex'));"
    )

    from_node = run_node(script, body)

    assert webhooks.signature("k€y", 1700000000, body) == "sha256=" + from_node


def test_delivery_id_is_stable_for_one_change():
    first = webhooks.delivery_id("app_1", "repo_1", "a/b.txt", SHA, "create")
    again = webhooks.delivery_id("app_1", "repo_1", "a/b.txt", SHA, "create")

    assert first == again
    assert first.startswith("dlv_")
    assert len(first) == 4 + 32
    int(first[4:], 16)


@pytest.mark.parametrize(
    "other",
    [
        ("app_2", "repo_1", "a/b.txt", SHA, "create"),
        ("app_1", "repo_2", "a/b.txt", SHA, "create"),
        ("app_1", "repo_1", "a/c.txt", SHA, "create"),
        ("app_1", "repo_1", "a/b.txt", OLD_SHA, "create"),
        ("app_1", "repo_1", "a/b.txt", SHA, "update"),
    ],
    ids=["app", "repository", "path", "sha", "event"],
)
def test_delivery_id_differs_when_any_field_differs(other):
    assert webhooks.delivery_id(*other) != webhooks.delivery_id("app_1", "repo_1", "a/b.txt", SHA, "create")


def test_delivery_id_fields_cannot_run_into_each_other():
    assert webhooks.delivery_id("app", "repo", "a/b", "c", "create") != webhooks.delivery_id(
        "app", "repo", "a", "b/c", "create"
    )


@pytest.mark.parametrize("base_url", ["https://hooks.example.com/docora", "https://hooks.example.com/docora/"])
def test_event_url_does_not_double_a_trailing_slash(base_url):
    assert webhooks.event_url(base_url, "sync_failed") == "https://hooks.example.com/docora/sync_failed"


def test_event_url_refuses_an_unknown_event():
    with pytest.raises(ValueError):
        webhooks.event_url("https://hooks.example.com", "../admin")


def test_headers_sign_the_body_and_name_the_event_delivery_and_version():
    body = b'{"x":1}'

    sent = webhooks.headers("app_1", "key-1", body, "create", "dlv_1", 1700000000, "1.2.3")

    assert sent == {
        "Content-Type": "application/json",
        "X-Docora-App-Id": "app_1",
        "X-Docora-Timestamp": "1700000000",
        "X-Docora-Signature": "sha256=" + hmac.new(b"key-1", b'1700000000.{"x":1}', hashlib.sha256).hexdigest(),
        "X-Docora-Event": "create",
        "X-Docora-Delivery": "dlv_1",
        "User-Agent": "Docora/1.2.3",
    }


def test_headers_add_a_signature_with_the_previous_key_during_rotation():
    body = b'{"x":1}'

    sent = webhooks.headers("app_1", "new-key", body, "delete", "dlv_1", 1700000000, "1.2.3", previous_key="old-key")

    assert sent["X-Docora-Signature"] == webhooks.signature("new-key", 1700000000, body)
    assert sent["X-Docora-Signature-Previous"] == webhooks.signature("old-key", 1700000000, body)
