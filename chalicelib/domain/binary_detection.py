"""Whether a file is delivered as text or base64 (docs/protocol.md §1.3), decided the way the original Docora did.

A file is text only when all of it is valid UTF-8 *and* the `isbinaryfile` npm package (v5) says text. Receivers
built for the original compare what they get with what it sent, so the heuristic is a faithful port of
isbinaryfile 5's `isBinaryCheck`, quirks included: it reads the first 512 bytes (plus 3, so a UTF-8 sequence that
starts inside the window is judged whole), treats a BOM as text and `%PDF-` as binary, any NUL as binary, and more
than 10% "suspicious" bytes as binary; with two or more suspicious bytes it also calls a file binary when its start
parses as protobuf messages.

The two conditions disagree on purpose in one place: isbinaryfile calls a UTF-16 or UTF-32 file with a BOM text,
but such content is never valid UTF-8, so it ends up binary here (sent as base64, which loses nothing). A UTF-8
BOM is valid UTF-8 and stays text.

Callers streaming a blob feed its chunks to a `TextCheck`; callers holding the bytes call `is_text(data)`.
"""

from __future__ import annotations

import codecs
import re

SCAN_BYTES = 512
# isbinaryfile reads 3 bytes past the window so a multibyte sequence starting at byte 509-511 can be checked whole.
SNIFF_BYTES = SCAN_BYTES + 3

_TEXT_BOMS = (
    b"\xef\xbb\xbf",  # UTF-8
    b"\x00\x00\xfe\xff",  # UTF-32 BE
    b"\xff\xfe\x00\x00",  # UTF-32 LE
    b"\x84\x31\x95\x33",  # GB 18030
    b"\xfe\xff",  # UTF-16 BE
    b"\xff\xfe",  # UTF-16 LE
)
_PDF_MAGIC = b"%PDF-"
# isbinaryfile's "suspicious" bytes: all but 7-14 (bell to shift-out) and 32-127. NUL is one of them.
_SUSPICIOUS_BYTE = re.compile(rb"[\x00-\x06\x0f-\x1f\x80-\xff]")
# (lowest lead byte, highest lead byte, continuation bytes) as isbinaryfile 5 accepts them; it does not reject
# overlong forms or surrogates, which the UTF-8 validity check catches instead.
_SEQUENCES = ((0xC0, 0xDF, 1), (0xE0, 0xEF, 2), (0xF0, 0xF7, 3))


def content_is_text(content: bytes, *, chunk_bytes: int = 1 << 20) -> bool:
    """The verdict for a whole file, decoded a chunk at a time when it is big: decoding a 100 MB file at once would
    hold all of its text in memory. A small one is decoded in one go, the cheapest way for the many small files."""
    if len(content) <= chunk_bytes:
        return is_text(content)
    check, view = TextCheck(), memoryview(content)
    for start in range(0, len(content), chunk_bytes):
        check.feed(view[start : start + chunk_bytes])
    return check.is_text()


def is_text(data: bytes) -> bool:
    """The verdict for a whole file held in memory."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not looks_binary(data)


def looks_binary(head: bytes) -> bool:
    """isbinaryfile 5's verdict on a file that starts with `head`; bytes after SNIFF_BYTES are not read."""
    buffer = head[:SNIFF_BYTES]
    if not buffer or buffer.startswith(_TEXT_BOMS):
        return False
    if buffer.startswith(_PDF_MAGIC):
        return True
    scan = min(len(buffer), SCAN_BYTES)
    suspicious = 0
    i = 0
    # Runs of ordinary bytes are skipped by the regex engine: a Python loop over every byte of every file's first
    # 512 cost about 100 ms per thousand files, most of an initial scan's CPU after the fetch.
    while (found := _SUSPICIOUS_BYTE.search(buffer, i, scan)) is not None:
        i = found.start()
        if buffer[i] == 0:
            return True
        step, counted = _multibyte_step(buffer, i)
        suspicious += counted
        i += step
    if suspicious * 10 > scan:
        return True
    return suspicious > 1 and _parses_as_protobuf(buffer[:scan])


class TextCheck:
    """The text/binary verdict for content fed chunk by chunk, holding only its first SNIFF_BYTES bytes."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._valid_utf8 = True

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
        if self._valid_utf8:
            try:
                self._decoder.decode(chunk)
            except UnicodeDecodeError:
                self._valid_utf8 = False

    def is_text(self) -> bool:
        """Call once, after the last chunk: a file that ends inside a UTF-8 sequence is not valid UTF-8."""
        if self._valid_utf8:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self._valid_utf8 = False
        return self._valid_utf8 and not looks_binary(bytes(self._head))


def _multibyte_step(buffer: bytes, i: int) -> tuple[int, bool]:
    """How far isbinaryfile moves past the byte at `i`, and whether it counts that byte as suspicious.

    A well-formed sequence (judged against bytes up to SNIFF_BYTES) is skipped whole. A lead byte with bad
    continuations counts once and, as in isbinaryfile, also skips the byte after it.
    """
    for low, high, continuations in _SEQUENCES:
        if low <= buffer[i] <= high and i + continuations < len(buffer):
            if all(0x80 <= byte <= 0xBF for byte in buffer[i + 1 : i + 1 + continuations]):
                return continuations + 1, False
            return 2, True
    return 1, True


def _parses_as_protobuf(buffer: bytes) -> bool:
    """isbinaryfile's `isBinaryProto`: the window reads as one or more protobuf fields up to a short read."""
    reader = _ProtoReader(buffer)
    messages = 0
    while True:
        parsed = reader.message()
        if reader.error:
            return messages > 0
        if not parsed:
            return False
        messages += 1


class _ProtoReader:
    """isbinaryfile's non-raising reader: reading past the end sets `error` instead."""

    def __init__(self, buffer: bytes) -> None:
        self._buffer = buffer
        self._offset = 0
        self.error = False

    def message(self) -> bool:
        wire_type = self._varint() & 0x7
        if wire_type == 0:
            self._varint()
        elif wire_type == 1:
            self._skip(8)
        elif wire_type == 2:
            self._skip(self._varint())
        elif wire_type == 5:
            self._skip(4)
        else:
            return False
        return True

    def _byte(self) -> int:
        if self.error or self._offset == len(self._buffer):
            self.error = True
            return 0xFF
        byte = self._buffer[self._offset]
        self._offset += 1
        return byte

    def _skip(self, count: int) -> None:
        # A negative count skips nothing, as JavaScript's `for (i = 0; i < len; i++)` does.
        if count > len(self._buffer) - self._offset:
            self.error = True
        elif count > 0:
            self._offset += count

    def _varint(self) -> int:
        # JavaScript's `|` and `<<` work on 32-bit signed integers and take the shift count modulo 32; lengths
        # and wire types computed here must wrap the same way to reach the same verdict.
        value = 0
        index = 0
        while not self.error:
            byte = self._byte()
            value = _int32(value | _int32((byte & 0x7F) << ((7 * index) & 31)))
            if not byte & 0x80:
                break
            if index >= 10:
                self.error = True
                break
            index += 1
        return value


def _int32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31
