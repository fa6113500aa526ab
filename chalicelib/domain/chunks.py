"""Binary files too big for one webhook, cut into base64 slices as a stream (docs/protocol.md §1.4)."""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """Which slice of a transfer a request carries; `file.chunk` in the payload."""

    id: str
    index: int
    total: int


def needs_chunks(is_binary: bool, size: int, threshold: int) -> bool:
    """Whether a file goes out in slices; a file of exactly `threshold` bytes does not, nor any text file."""
    return is_binary and size > threshold


def base64_length(size: int) -> int:
    """Characters of padded base64 for `size` bytes."""
    return 4 * ((size + 2) // 3)


def slice_count(size: int, slice_chars: int) -> int:
    """How many slices `base64_slices` yields for `size` bytes, known before anything is read."""
    _check_slice_chars(slice_chars)
    return -(-base64_length(size) // slice_chars)


def chunk_id(delivery_id: str) -> str:
    """The transfer id shared by every slice; derived, so a retried transfer reuses it and overwrites its slices."""
    return "chk_" + hashlib.sha256(delivery_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def slice_delivery_id(delivery_id: str, index: int) -> str:
    """A per-slice X-Docora-Delivery, so a receiver that drops repeated delivery ids keeps every slice."""
    return f"{delivery_id}.{index}"


def base64_slices(stream: Iterable[bytes], slice_chars: int) -> Iterator[str]:
    """Base64 of the concatenated `stream` in slices of `slice_chars` characters, the last one shorter.

    Holds about two slices of text and one input window at a time, whatever the sizes of the input pieces.
    """
    _check_slice_chars(slice_chars)
    # A multiple of 3 bytes encodes to whole base64 quanta, so windows can be encoded independently.
    window = 3 * -(-slice_chars // 4)
    carry = b""
    pending: list[str] = []
    pending_chars = 0
    for data in stream:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), window):
            piece = carry + view[start : start + window]
            whole = len(piece) - len(piece) % 3
            # Up to 2 bytes wait for the next piece: encoding them now would put padding mid-stream.
            carry = piece[whole:]
            encoded = binascii.b2a_base64(piece[:whole], newline=False).decode("ascii")
            pending.append(encoded)
            pending_chars += len(encoded)
            if pending_chars >= slice_chars:
                text = "".join(pending)
                cut = len(text) - len(text) % slice_chars
                yield from _cut(text, slice_chars, cut)
                pending, pending_chars = [text[cut:]], len(text) - cut
    pending.append(binascii.b2a_base64(carry, newline=False).decode("ascii"))
    tail = "".join(pending)
    yield from _cut(tail, slice_chars, len(tail))


def _cut(text: str, slice_chars: int, end: int) -> Iterator[str]:
    for start in range(0, end, slice_chars):
        yield text[start : start + slice_chars]


def _check_slice_chars(slice_chars: int) -> None:
    if slice_chars <= 0:
        raise ValueError("slice_chars must be positive")
