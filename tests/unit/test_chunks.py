"""The streaming base64 slicer against base64.b64encode, over many sizes and ways of cutting the input."""

from __future__ import annotations

import base64
import random
import tracemalloc

import pytest

from chalicelib.domain import chunks

SEED = 20240506


def pieces_of(data: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randrange(8)))
    return [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def test_slices_join_to_the_base64_of_the_whole_input_however_it_is_cut():
    rng = random.Random(SEED)  # noqa: S311 - reproducible, not secret
    for _ in range(2000):
        data = rng.randbytes(rng.choice([0, 1, 2, 3, 4, 5, rng.randrange(200), rng.randrange(5000)]))
        slice_chars = rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 64, rng.randrange(1, 300)])

        slices = list(chunks.base64_slices(pieces_of(data, rng), slice_chars))

        assert "".join(slices) == base64.b64encode(data).decode()
        assert all(len(piece) == slice_chars for piece in slices[:-1])
        assert all(0 < len(piece) <= slice_chars for piece in slices)
        assert len(slices) == chunks.slice_count(len(data), slice_chars)


def test_slicer_accepts_bytearrays_and_memoryviews():
    data = bytes(range(256)) * 10
    stream = [bytearray(data[:100]), memoryview(data[100:1001]), data[1001:]]

    slices = list(chunks.base64_slices(stream, 64))

    assert "".join(slices) == base64.b64encode(data).decode()


def test_a_large_input_piece_is_still_sliced_without_encoding_it_whole():
    data = random.Random(SEED).randbytes(3 * 1024 * 1024)  # noqa: S311 - reproducible, not secret

    slices = chunks.base64_slices([data], 524288)
    first = next(slices)

    assert first == base64.b64encode(data[: 524288 * 3 // 4]).decode()
    assert len(list(slices)) == chunks.slice_count(len(data), 524288) - 1


def test_memory_stays_within_a_few_slices_however_long_the_stream():
    piece = random.Random(SEED).randbytes(65536)  # noqa: S311 - reproducible, not secret
    slice_chars = 262144

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        total = sum(len(text) for text in chunks.base64_slices((piece for _ in range(256)), slice_chars))
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()

    assert total == chunks.base64_length(256 * 65536)
    assert peak < 4 * slice_chars


def test_empty_input_yields_no_slice():
    assert list(chunks.base64_slices([b"", b""], 8)) == []
    assert chunks.slice_count(0, 8) == 0


@pytest.mark.parametrize(
    ("size", "slice_chars", "expected"),
    [(1, 4, 1), (3, 4, 1), (4, 4, 2), (3 * 1024 * 1024, 524288, 8), (1048577, 524288, 3), (6, 3, 3)],
)
def test_slice_count_is_known_before_streaming(size, slice_chars, expected):
    assert chunks.slice_count(size, slice_chars) == expected


def test_slice_size_must_be_positive():
    with pytest.raises(ValueError):
        list(chunks.base64_slices([b"abc"], 0))


@pytest.mark.parametrize(
    ("is_binary", "size", "expected"),
    [(True, 1048577, True), (True, 1048576, False), (True, 10, False), (False, 50_000_000, False)],
    ids=["binary-over", "binary-exactly-threshold", "binary-small", "text-never"],
)
def test_only_binary_files_over_the_threshold_are_chunked(is_binary, size, expected):
    assert chunks.needs_chunks(is_binary, size, 1048576) is expected


def test_chunk_id_is_deterministic_per_delivery():
    assert chunks.chunk_id("dlv_1") == chunks.chunk_id("dlv_1")
    assert chunks.chunk_id("dlv_1") != chunks.chunk_id("dlv_2")
    assert chunks.chunk_id("dlv_1").startswith("chk_")


def test_each_slice_gets_its_own_delivery_id():
    assert chunks.slice_delivery_id("dlv_1", 0) != chunks.slice_delivery_id("dlv_1", 1)
