"""Text or binary, as docs/protocol.md §1.3 defines it: valid UTF-8 and isbinaryfile 5's heuristic both saying text."""

from __future__ import annotations

import pytest

from chalicelib.domain.binary_detection import SNIFF_BYTES, TextCheck, content_is_text, is_text, looks_binary

LATIN_1_PROSE = ("Le café est bon. " + "Il fait beau aujourd'hui, allons marcher. " * 3).encode("latin-1")

# (content, isbinaryfile's verdict, the verdict Docora delivers by)
CASES = {
    "empty": (b"", False, True),
    "ascii": (b"hello world\n", False, True),
    "accents": ("café, résumé, naïve, Zürich\n".encode(), False, True),
    "cjk": ("漢字とかなの文章です。中文字符测试。\n".encode(), False, True),
    "emoji": ("party 😀🎉 time 👩‍💻\n".encode(), False, True),
    "tabs and line endings": (b"a\tb\r\nc\x0bd\x0ce\n", False, True),
    "ansi colours": (b"\x1b[31mred\x1b[0m and plain text that goes on for a while\n", False, True),
    "nul byte": (b"abc\x00def", True, False),
    "nul after 512 bytes": (b"a" * 600 + b"\x00", False, True),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", True, False),
    "pdf magic that is ascii": (b"%PDF-1.4 but only text\n", True, False),
    "utf-8 bom": ("\ufeffhello\n".encode(), False, True),
    "utf-8 bom hides a nul": (b"\xef\xbb\xbfa\x00b", False, True),
    "utf-16 le bom": (b"\xff\xfe" + "hello\n".encode("utf-16-le"), False, False),
    "utf-16 be bom": (b"\xfe\xff" + "hello\n".encode("utf-16-be"), False, False),
    "utf-32 le bom": (b"\xff\xfe\x00\x00" + "hi".encode("utf-32-le"), False, False),
    "utf-32 be bom": (b"\x00\x00\xfe\xff" + "hi".encode("utf-32-be"), False, False),
    "gb18030 bom": (b"\x84\x31\x95\x33" + "汉字".encode("gb18030"), False, False),
    "10% control characters": (b"\x1b" * 5 + b"a" * 45, False, True),
    "12% control characters": (b"\x1b" * 6 + b"a" * 44, True, False),
    "latin-1 prose": (LATIN_1_PROSE, False, False),
    "latin-1 accent on every word": ("àé îô ûç ëï ".encode("latin-1") * 10, True, False),
    "invalid byte after 512": (b"a" * 550 + b"\xff" + b"a" * 49, False, False),
    "3-byte sequence across byte 512": (b"a" * 510 + "中".encode() + b"tail", False, True),
    "4-byte sequence across byte 512": (b"a" * 511 + "😀".encode() + b"tail", False, True),
    "truncated sequence at the end": (b"abc" + "中".encode()[:2], True, False),
    "truncated sequence after 512": (b"a" * 600 + "中".encode()[:2], False, False),
    "surrogate encoded as utf-8": (b"text \xed\xa0\x80 more text and more text here", False, False),
    "protobuf-shaped ascii": (b"\x1a0" + b"a" * 48 + b"\x1a0" + b"b" * 48, True, False),
}


@pytest.mark.parametrize(("content", "heuristic", "text"), CASES.values(), ids=CASES.keys())
def test_is_text_needs_valid_utf8_and_the_isbinaryfile_heuristic(content, heuristic, text):
    assert looks_binary(content) is heuristic
    assert is_text(content) is text


@pytest.mark.parametrize("chunk_size", [1, 2, 7, 512, 4096])
@pytest.mark.parametrize(("content", "heuristic", "text"), CASES.values(), ids=CASES.keys())
def test_a_streamed_file_gets_the_same_verdict_whatever_the_chunk_size(content, heuristic, text, chunk_size):
    check = TextCheck()

    for start in range(0, len(content), chunk_size):
        check.feed(content[start : start + chunk_size])

    assert check.is_text() is text


@pytest.mark.parametrize("chunk_bytes", [3, 1 << 20])
@pytest.mark.parametrize(("content", "heuristic", "text"), CASES.values(), ids=CASES.keys())
def test_a_whole_content_gets_the_same_verdict_in_one_go_or_in_chunks(content, heuristic, text, chunk_bytes):
    assert content_is_text(content, chunk_bytes=chunk_bytes) is text


def test_the_heuristic_reads_no_further_than_the_sniff_window():
    head = b"a" * SNIFF_BYTES

    assert looks_binary(head + b"\x00" * 1000) is False


def test_a_streamed_file_is_judged_on_its_first_bytes_only():
    check = TextCheck()
    check.feed(b"a" * 1000)

    check.feed(b"\x01" * 10_000)

    assert check.is_text() is True
