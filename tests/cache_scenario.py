"""The scan a warm git cache and a cold one must agree on, defined once for the fakes and for the real stack."""

from __future__ import annotations

import hashlib
import os

LATIN = os.fsdecode(b"caf\xe9.txt")  # not UTF-8: git lists it, the snapshot records it as skipped
MAX_FILE_BYTES = 10
FIRST: dict[str, bytes | None] = {
    LATIN: b"latin", "keep.md": b"same", "edit.md": b"v1", "drop.md": b"bye", "move/old.md": b"moved",
    "big.bin": b"x" * 11, "shrinks.bin": b"y" * 11, "to-link.md": b"link me", "deep/a/b/c.md": b"c",
}  # fmt: skip
SECOND: dict[str, bytes | None] = {
    LATIN: None, "edit.md": b"v2", "drop.md": None, "move/old.md": None, "moved/new.md": b"moved",
    "grows.bin": b"z" * 11, "shrinks.bin": b"y", "to-link.md": None, "deep/a/b/c.md": b"c2",
}  # fmt: skip
LINKS = {"to-link.md": "keep.md"}  # committed after SECOND: a file turned into a symlink
# v2, y, z*11 and c2; "moved" is known. From nothing, big.bin too: the snapshot keeps no facts of skipped files.
BLOBS_READ = {"warm": 4, "cold": 5}


def _sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


SNAPSHOT = {  # path: (sha256, size, binary)
    "keep.md": (_sha(b"same"), 4, False),
    "edit.md": (_sha(b"v2"), 2, False),
    "moved/new.md": (_sha(b"moved"), 5, False),
    "shrinks.bin": (_sha(b"y"), 1, False),
    "deep/a/b/c.md": (_sha(b"c2"), 2, False),
}
SKIPPED = [  # path, reason, size
    ("big.bin", "larger than MAX_FILE_BYTES (10)", 11),
    ("grows.bin", "larger than MAX_FILE_BYTES (10)", 11),
]
