"""Bundles: many small contents stored as one object, so a scan writes, and a delivery reads, many in one request.

A repository's first scan of 20,000 files would otherwise make 20,000 PUTs, and each delivery 20,000 GETs: on S3
each is a round trip and a billed request, and in the client each costs more work than the webhook it feeds. A
scan packs its new small contents in path order, the order deliveries send them, so a delivery reads a run of
neighbours with one ranged GET. Bundles are named by their own SHA-256 and, like contents, never change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BundleSlot:
    """Where a content sits: in the bundle named `bundle` (its SHA-256, hex), from byte `offset` on."""

    bundle: str
    offset: int


@dataclass(frozen=True, slots=True)
class NewContent:
    """A content a scan has just read, with the path of the first file that holds it (bundles follow paths)."""

    sha256: str
    content: bytes
    path: str


@dataclass(frozen=True, slots=True)
class StoredContent:
    """A content to read back: in a bundle, or, when `slot` is None, an object of its own named by its SHA-256."""

    sha256: str
    size: int
    slot: BundleSlot | None


@dataclass(frozen=True, slots=True)
class Part:
    """One content within a read: its bytes are `size` long from `start`, counted from the read's first byte."""

    sha256: str
    start: int
    size: int


@dataclass(frozen=True)
class Read:
    """One GET: bytes [first, end) of a bundle, or (`bundle` None) the whole object of one content."""

    bundle: str | None
    first: int
    end: int
    parts: list[Part] = field(default_factory=list)


@dataclass(frozen=True)
class StoredObjects:
    """Objects in the bucket: contents stored on their own and bundles, each by its SHA-256 (hex)."""

    contents: list[str] = field(default_factory=list)
    bundles: list[str] = field(default_factory=list)

    def without(self, kept: StoredObjects) -> StoredObjects:
        return StoredObjects(
            sorted(set(self.contents) - set(kept.contents)), sorted(set(self.bundles) - set(kept.bundles))
        )


def bundle_groups(sizes: Sequence[int], *, max_bytes: int) -> list[range]:
    """Cut contents of these sizes, kept in their order, into runs of at most `max_bytes` (or one content)."""
    groups: list[range] = []
    start, filled = 0, 0
    for index, size in enumerate(sizes):
        if index > start and filled + size > max_bytes:
            groups.append(range(start, index))
            start, filled = index, 0
        filled += size
    if start < len(sizes):
        groups.append(range(start, len(sizes)))
    return groups


def plan_reads(contents: Iterable[StoredContent], *, max_gap: int, max_span: int) -> list[Read]:
    """The GETs that read these contents, in their order: neighbours in one bundle share a ranged read.

    A read grows by the next content when that one lies in the same bundle, starts at most `max_gap` bytes past
    what the read covers (bytes skipped cost less than another round trip) and keeps the read within `max_span`
    bytes (what memory holds per read). Reading the parts of each read in turn gives the contents in order.
    """
    reads: list[Read] = []
    current: Read | None = None
    for content in contents:
        slot = content.slot
        if slot is None:
            current = None
            reads.append(Read(None, 0, content.size, [Part(content.sha256, 0, content.size)]))
            continue
        end = slot.offset + content.size
        if (
            current is not None
            and current.bundle == slot.bundle
            and current.first <= slot.offset <= current.end + max_gap
            and max(end, current.end) - current.first <= max_span
        ):
            grown = Read(current.bundle, current.first, max(end, current.end), current.parts)
            reads[-1] = current = grown
        else:
            current = Read(slot.bundle, slot.offset, end)
            reads.append(current)
        current.parts.append(Part(content.sha256, slot.offset - current.first, content.size))
    return reads
