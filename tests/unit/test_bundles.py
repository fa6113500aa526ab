"""Cutting contents into bundles, and reading them back with as few requests as the gaps allow."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.bundles import BundleSlot, Part, Read, StoredContent, StoredObjects, bundle_groups, plan_reads


def in_bundle(name: str, offset: int, size: int, sha: str = "") -> StoredContent:
    return StoredContent(sha or f"{name}@{offset}", size, BundleSlot(name, offset))


def spans(reads: list[Read]) -> list[tuple[str | None, int, int]]:
    return [(read.bundle, read.first, read.end) for read in reads]


def test_groups_fill_up_to_the_limit_and_a_big_content_goes_alone():
    assert bundle_groups([4, 4, 4, 10, 1], max_bytes=8) == [range(0, 2), range(2, 3), range(3, 4), range(4, 5)]
    assert bundle_groups([], max_bytes=8) == []
    assert bundle_groups([0, 0, 8], max_bytes=8) == [range(0, 3)]


def test_neighbours_share_a_read_and_small_gaps_are_read_through():
    reads = plan_reads(
        [in_bundle("a", 0, 10), in_bundle("a", 10, 5), in_bundle("a", 40, 5), in_bundle("a", 100, 1)],
        max_gap=30,
        max_span=1000,
    )

    assert spans(reads) == [("a", 0, 45), ("a", 100, 101)]
    assert reads[0].parts == [Part("a@0", 0, 10), Part("a@10", 10, 5), Part("a@40", 40, 5)]
    assert reads[1].parts == [Part("a@100", 0, 1)]


def test_a_read_stops_at_its_span_another_bundle_or_a_content_of_its_own():
    contents = [
        in_bundle("a", 0, 6),
        in_bundle("a", 6, 6),  # would make the read 12 bytes, over the span of 10
        in_bundle("b", 12, 1),
        StoredContent("own", 7, None),
        in_bundle("b", 13, 1),
    ]

    reads = plan_reads(contents, max_gap=100, max_span=10)

    assert spans(reads) == [("a", 0, 6), ("a", 6, 12), ("b", 12, 13), (None, 0, 7), ("b", 13, 14)]
    assert reads[3].parts == [Part("own", 0, 7)]


def test_a_content_behind_the_read_or_the_same_one_again_stays_in_it():
    # Two paths with one content, or an update after the creates: behind the read's start, a new read.
    reads = plan_reads([in_bundle("a", 10, 5), in_bundle("a", 10, 5), in_bundle("a", 0, 5)], max_gap=100, max_span=100)

    assert spans(reads) == [("a", 10, 15), ("a", 0, 5)]
    assert [part.start for part in reads[0].parts] == [0, 0]


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.integers(0, 200), st.integers(0, 50)), max_size=40),
    st.integers(0, 60),
    st.integers(1, 120),
)
def test_reading_the_parts_in_turn_gives_every_content_in_order(items, max_gap, max_span):
    contents = [
        StoredContent(f"c{index}", size, BundleSlot(bundle, offset) if bundle else None)
        for index, (bundle, offset, size) in enumerate(items)
    ]

    reads = plan_reads(contents, max_gap=max_gap, max_span=max_span)

    parts = [(read, part) for read in reads for part in read.parts]
    assert [part.sha256 for _, part in parts] == [content.sha256 for content in contents]
    for (read, part), content in zip(parts, contents, strict=True):
        assert part.size == content.size
        assert read.first + part.start == (content.slot.offset if content.slot else 0)
        assert part.start + part.size <= read.end - read.first
        assert read.end - read.first <= max(max_span, part.size)


def test_objects_kept_elsewhere_are_not_deleted():
    mine = StoredObjects(["c1", "c2"], ["b1", "b2"])
    kept = StoredObjects(["c2", "c3"], ["b2"])

    assert mine.without(kept) == StoredObjects(["c1"], ["b1"])
