"""The receiver guide's verification code: the same bytes as its files, and right about Docora's signed requests.

Both functions are run against requests signed by chalicelib.domain.webhooks itself, the Python one directly and
the Node.js one in a `node` subprocess, which must be installed: a guide whose JavaScript is never run could lie.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from chalicelib import __version__
from chalicelib.domain import chunks, webhooks
from chalicelib.domain.webhooks import RepositoryRef

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "receivers.md"
PYTHON_EXAMPLE = ROOT / "docs" / "examples" / "verify_docora.py"
NODE_EXAMPLE = ROOT / "docs" / "examples" / "verify-docora.js"
RECEIVER_COPY = ROOT / "examples" / "receiver" / "verify_docora.py"
BLOCK = re.compile(r"<!-- file: (\S+) [^\n]*-->\n```\w+\n(.*?)```\n", re.DOTALL)

KEY = "receiver-key-κλειδί-鍵-🔑"
OLD_KEY = "the-key-before-rotation-0123"
NOW = 1_790_000_000
REPO = RepositoryRef("repo_0123456789abcdef01234567", "https://github.com/acme/widgets", "acme", "widgets")
WHEN = datetime.fromtimestamp(NOW, UTC)
TEXT = 'Ça été déjà vu — 漢字 — 🚀 \u2028 "quoted" </script>\n'
RAW = TEXT.encode()
SHA = hashlib.sha256(RAW).hexdigest()


def load_python_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("guide_verify_docora", PYTHON_EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def signed(body: bytes, *, key: str = KEY, at: int = NOW, previous_key: str | None = None) -> dict[str, str]:
    return webhooks.headers("app_x", key, body, "create", "dlv_x", at, __version__, previous_key=previous_key)


def cases() -> list[tuple[str, bytes, dict[str, str], str, float, bool]]:
    """(name, body, headers, receiver's key, receiver's clock, expected) for both languages."""
    create = webhooks.create_body(REPO, "é/漢字/🚀.md", SHA, len(RAW), TEXT, None, "c" * 40, WHEN)
    binary = b"\x00\xff" * 40
    slices = list(chunks.base64_slices([binary], 30))
    chunk = chunks.Chunk("chk_1", 1, len(slices))
    slice_body = webhooks.create_body(
        REPO, "a.bin", hashlib.sha256(binary).hexdigest(), len(binary), slices[1], "base64", "c" * 40, WHEN, chunk
    )
    delete = webhooks.delete_body(REPO, "gone.md", SHA, "c" * 40, WHEN)
    good = signed(create)
    lower = {name.lower(): value for name, value in good.items()}
    return [
        ("signed create", create, good, KEY, NOW, True),
        ("signed slice", slice_body, signed(slice_body), KEY, NOW, True),
        ("signed delete", delete, signed(delete), KEY, NOW, True),
        ("lower-case header names", create, lower, KEY, NOW, True),
        ("299 s late", create, good, KEY, NOW + 299, True),
        ("300 s early", create, good, KEY, NOW - 300, True),
        ("301 s late", create, good, KEY, NOW + 301, False),
        ("301 s early", create, good, KEY, NOW - 301, False),
        ("one byte changed", create.replace(b"widgets", b"widgetz"), good, KEY, NOW, False),
        ("re-serialised by Python's defaults", json.dumps(json.loads(create)).encode(), good, KEY, NOW, False),
        ("another key", create, good, "not-the-key", NOW, False),
        ("timestamp header changed", create, {**good, "X-Docora-Timestamp": str(NOW + 1)}, KEY, NOW, False),
        ("timestamp not decimal", create, {**good, "X-Docora-Timestamp": f"+{NOW}"}, KEY, NOW, False),
        ("timestamp of 5000 digits", create, {**good, "X-Docora-Timestamp": "9" * 5000}, KEY, NOW, False),
        ("no timestamp", create, {k: v for k, v in good.items() if k != "X-Docora-Timestamp"}, KEY, NOW, False),
        ("no signature", create, {k: v for k, v in good.items() if k != "X-Docora-Signature"}, KEY, NOW, False),
        ("signature without prefix", create, {**good, "X-Docora-Signature": good["X-Docora-Signature"][7:]},
         KEY, NOW, False),
        ("non-ASCII signature", create, {**good, "X-Docora-Signature": "sha256=é" + "0" * 63}, KEY, NOW, False),
        ("rotation, receiver on the new key", create, signed(create, previous_key=OLD_KEY), KEY, NOW, True),
        ("rotation, receiver on the old key", create, signed(create, previous_key=OLD_KEY), OLD_KEY, NOW, True),
        ("rotation, receiver on a third key", create, signed(create, previous_key=OLD_KEY), "other", NOW, False),
        ("old key without a rotation", create, signed(create, key=OLD_KEY), KEY, NOW, False),
    ]  # fmt: skip


CASES = cases()
IDS = [case[0] for case in CASES]


def test_the_guide_shows_each_example_file_byte_for_byte():
    guide = GUIDE.read_text("utf-8")

    shown = {path: code for path, code in BLOCK.findall(guide)}

    assert sorted(shown) == ["docs/examples/verify-docora.js", "docs/examples/verify_docora.py"]
    for path, code in shown.items():
        assert code == (ROOT / path).read_text("utf-8"), f"the block for {path} differs from the file"


def test_the_reference_receiver_verifies_with_the_guides_own_function():
    assert RECEIVER_COPY.read_bytes() == PYTHON_EXAMPLE.read_bytes()


@pytest.mark.parametrize(("name", "body", "headers", "key", "now", "expected"), CASES, ids=IDS)
def test_the_python_function_accepts_exactly_what_docora_signed(name, body, headers, key, now, expected):
    verify_docora = load_python_example().verify_docora

    assert verify_docora(body, headers, key, now=now) is expected


def test_the_python_function_reads_the_clock_when_not_given_one():
    verify_docora = load_python_example().verify_docora
    body = b'{"fresh":true}'
    now = int(datetime.now(UTC).timestamp())

    assert verify_docora(body, signed(body, at=now), KEY) is True
    assert verify_docora(body, signed(body, at=now - 3600), KEY) is False


def test_the_node_function_accepts_exactly_what_docora_signed():
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required to test the guide's JavaScript: `node` is not on PATH")
    runner = (
        "const { verifyDocora } = require(process.argv[1]);"
        "const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "process.stdout.write(JSON.stringify(cases.map((c) =>"
        " verifyDocora(Buffer.from(c.body, 'base64'), c.headers, c.key, c.now))));"
    )
    # Node hands a handler its header names in lower case.
    payload = [
        {
            "body": base64.b64encode(body).decode(),
            "headers": {name.lower(): value for name, value in headers.items()},
            "key": key,
            "now": now,
        }
        for _, body, headers, key, now, _ in CASES
    ]

    result = subprocess.run(
        [node, "-e", runner, str(NODE_EXAMPLE)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert dict(zip(IDS, json.loads(result.stdout), strict=True)) == {case[0]: case[5] for case in CASES}


def test_the_node_function_reads_the_clock_when_not_given_one():
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is required to test the guide's JavaScript: `node` is not on PATH")
    body = b'{"fresh":true}'
    now = int(datetime.now(UTC).timestamp())
    fresh = {name.lower(): value for name, value in signed(body, at=now).items()}
    runner = (
        "const { verifyDocora } = require(process.argv[1]);"
        "const headers = JSON.parse(process.argv[2]);"
        "process.stdout.write(String(verifyDocora(Buffer.from(process.argv[3]), headers, process.argv[4])));"
    )

    result = subprocess.run(
        [node, "-e", runner, str(NODE_EXAMPLE), json.dumps(fresh), body.decode(), KEY],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert (result.returncode, result.stdout) == (0, "true"), result.stderr
