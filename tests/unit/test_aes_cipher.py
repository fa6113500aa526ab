"""AES-GCM secrets must stay readable by and from the original Node.js Docora."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from chalicelib import errors
from chalicelib.adapters.aes_cipher import AesGcmCipher

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
OTHER_KEY = bytes(32)

# Written by Node.js 20: crypto.createCipheriv('aes-256-gcm', KEY, iv) with the IV shown, tag from getAuthTag().
NODE_VECTORS = [
    (
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf:0624735518964adb25fecd7ffa95a4bc:"
        "4dcb53e379afae12a6f878d9847ee6fcef2b2c090f4622d888641dce604f16b63ea2d256a3e48784",
    ),
    (
        "héllo wörld ✓ 🚀",
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf:a491caa0a7006f7dc30365abc4550a59:42608ad074a2ed0100286ddd89346f0c1165b3e6e4b4",
    ),
    ("", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf:022f841c702b66b0bec8111f67de221d:"),
    (
        "5f" * 32,
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0:2baac1d0e0fccfca574f20e30574a6dd:"
        "bf9b60c7312170933b7cb545037e3ca2caedb0ed83a8b1d2c634af13e12c98b4"
        "4359cb1e7f775ed8ca2506e119158a7af78daa5bf5d2f99c303fa86a845e9f85",
    ),
]
VECTOR_IDS = ["token", "unicode", "empty", "hex-key"]

NODE_DECRYPT = """
const crypto = require('crypto');
const [key, value] = process.argv.slice(1);
const [iv, tag, ciphertext] = value.split(':').map((part) => Buffer.from(part, 'hex'));
const decipher = crypto.createDecipheriv('aes-256-gcm', Buffer.from(key, 'hex'), iv);
decipher.setAuthTag(tag);
process.stdout.write(Buffer.concat([decipher.update(ciphertext), decipher.final()]));
"""


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        # Failing, not skipping: without Node this test cannot prove compatibility with the original Docora.
        pytest.fail("node is not on PATH; install Node.js to check AES-GCM compatibility with the original Docora")
    return node


def _fixed_iv(iv_hex: str):
    return lambda size: bytes.fromhex(iv_hex)[:size]


def _flip_last_hex_digit(field: str) -> str:
    return field[:-1] + ("0" if field[-1] != "0" else "1")


@pytest.mark.parametrize(("plaintext", "value"), NODE_VECTORS, ids=VECTOR_IDS)
def test_values_written_by_node_decrypt(plaintext, value):
    assert AesGcmCipher(KEY).decrypt(value) == plaintext


@pytest.mark.parametrize(("plaintext", "value"), NODE_VECTORS, ids=VECTOR_IDS)
def test_encrypting_with_nodes_iv_gives_nodes_value(plaintext, value):
    cipher = AesGcmCipher(KEY, random_bytes=_fixed_iv(value.split(":")[0]))

    assert cipher.encrypt(plaintext) == value


@pytest.mark.parametrize("plaintext", ["ghp_" + "A" * 36, "héllo wörld ✓ 🚀", ""], ids=["token", "unicode", "empty"])
def test_values_written_here_decrypt_in_node(plaintext):
    value = AesGcmCipher(KEY).encrypt(plaintext)

    result = subprocess.run(
        [_node(), "-e", NODE_DECRYPT, KEY.hex(), value], capture_output=True, check=True, timeout=30
    )

    assert result.stdout.decode("utf-8") == plaintext


def test_each_encryption_uses_a_fresh_iv():
    cipher = AesGcmCipher(KEY)

    first, second = cipher.encrypt("same"), cipher.encrypt("same")

    assert first != second
    assert first.split(":")[0] != second.split(":")[0]


def test_encrypted_value_has_the_original_layout():
    iv, tag, ciphertext = AesGcmCipher(KEY).encrypt("abc").split(":")

    assert (len(iv), len(tag), len(ciphertext)) == (32, 32, 6)


@pytest.mark.parametrize("plaintext", ["plain", "émoji 🚀 and 中文", "x" * 10_000])
def test_round_trip(plaintext):
    cipher = AesGcmCipher(KEY)

    assert cipher.decrypt(cipher.encrypt(plaintext)) == plaintext


def _tampered(part: int) -> str:
    fields = NODE_VECTORS[0][1].split(":")
    fields[part] = _flip_last_hex_digit(fields[part])
    return ":".join(fields)


@pytest.mark.parametrize(
    "value",
    [
        _tampered(0),
        _tampered(1),
        _tampered(2),
        NODE_VECTORS[0][1] + "00",
        NODE_VECTORS[0][1][:-2],
    ],
    ids=["iv", "tag", "ciphertext", "appended-byte", "truncated"],
)
def test_tampered_values_are_refused(value):
    with pytest.raises(errors.Unprocessable):
        AesGcmCipher(KEY).decrypt(value)


def test_a_value_under_another_key_is_refused():
    with pytest.raises(errors.Unprocessable):
        AesGcmCipher(OTHER_KEY).decrypt(NODE_VECTORS[0][1])


IV, TAG, CIPHERTEXT = NODE_VECTORS[0][1].split(":")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not encrypted",
        f"{IV}:{TAG}",
        f"{IV}:{TAG}:{CIPHERTEXT}:00",
        f"{IV[:24]}:{TAG}:{CIPHERTEXT}",
        f"{IV}:{TAG[:24]}:{CIPHERTEXT}",
        f"{IV}:{TAG}:{CIPHERTEXT[:-1]}",
        f"{IV}:{TAG}:zz{CIPHERTEXT[2:]}",
        f"{IV}:{TAG}:{CIPHERTEXT[:2]} {CIPHERTEXT[2:]}",
    ],
    ids=["empty", "text", "two-fields", "four-fields", "short-iv", "short-tag", "odd-hex", "not-hex", "space"],
)
def test_malformed_values_are_refused(value):
    with pytest.raises(errors.Unprocessable):
        AesGcmCipher(KEY).decrypt(value)


def test_refusal_message_reveals_neither_value_nor_key():
    with pytest.raises(errors.Unprocessable) as refused:
        AesGcmCipher(OTHER_KEY).decrypt(NODE_VECTORS[0][1])

    message = str(refused.value)
    assert CIPHERTEXT not in message
    assert OTHER_KEY.hex() not in message


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_keys_other_than_32_bytes_are_refused(size):
    with pytest.raises(ValueError, match="32-byte"):
        AesGcmCipher(bytes(size))
