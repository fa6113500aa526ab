"""AES-256-GCM for secrets at rest, in the original Node.js Docora's `hex(iv):hex(tag):hex(ciphertext)` format.

The original used a 16-byte IV (`createCipheriv('aes-256-gcm', key, iv16)`) rather than GCM's usual 12;
values it wrote must still decrypt, so this keeps the same IV length and layout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chalicelib import errors

_IV_BYTES = 16
_TAG_BYTES = 16
_KEY_BYTES = 32
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")


class AesGcmCipher:
    def __init__(self, key: bytes, *, random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        """`random_bytes` is a seam for fixed test vectors; production uses the default."""
        if len(key) != _KEY_BYTES:
            # AESGCM would quietly accept a 16- or 24-byte key and give AES-128 or AES-192.
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)
        self._random_bytes = random_bytes

    def encrypt(self, plaintext: str) -> str:
        iv = self._random_bytes(_IV_BYTES)
        sealed = self._aead.encrypt(iv, plaintext.encode("utf-8"), None)
        ciphertext, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
        return f"{iv.hex()}:{tag.hex()}:{ciphertext.hex()}"

    def decrypt(self, value: str) -> str:
        iv, tag, ciphertext = _parse(value)
        try:
            return self._aead.decrypt(iv, ciphertext + tag, None).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise _undecryptable() from None


def _parse(value: str) -> tuple[bytes, bytes, bytes]:
    fields = value.split(":") if isinstance(value, str) else []
    # Checked before bytes.fromhex, which would also accept spaces between bytes; the format has none.
    if len(fields) != 3 or not all(_HEX.fullmatch(field) for field in fields):
        raise _undecryptable()
    iv, tag, ciphertext = (bytes.fromhex(field) for field in fields)
    if len(iv) != _IV_BYTES or len(tag) != _TAG_BYTES:
        raise _undecryptable()
    return iv, tag, ciphertext


def _undecryptable() -> errors.Unprocessable:
    # Neither the value nor the key goes in the message: both are secrets, and the message may reach a caller.
    return errors.Unprocessable("stored secret cannot be decrypted with ENCRYPTION_KEY")
