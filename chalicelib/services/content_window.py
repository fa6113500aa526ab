"""The contents a delivery job reads ahead for its lanes: the small ones, read once whatever the number of apps that
need them, in the order the lanes reach them (a few reads ahead, as S3Contents.read_each plans them), and each kept
only until the last lane that needs it has taken it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from chalicelib import errors
from chalicelib.domain.bundles import StoredContent
from chalicelib.ports import Contents


class ContentWindow:
    def __init__(self, contents: Contents, needed: Iterable[StoredContent]) -> None:
        """`needed` holds one entry per change that will take a content, in the order the lanes will take them."""
        wanted = list(needed)
        self._uses = Counter(item.sha256 for item in wanted)
        self._plan = list({item.sha256: item for item in wanted}.values())  # first need first
        self._contents = contents
        self._held: dict[str, bytes] = {}
        self._read = 0  # self._plan[:_read] have been read (or found missing)
        self._missing: set[str] = set()
        self._reading: Iterator[bytes] | None = None
        self._opened = contents.read_each(self._plan)

    def __enter__(self) -> ContentWindow:
        self._reading = self._opened.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._opened.__exit__(*exc_info)
        self._held.clear()

    @property
    def bytes_held(self) -> int:
        return sum(len(content) for content in self._held.values())

    def take(self, item: StoredContent) -> bytes | None:
        """The content, read now if it was not yet; None when the bucket lacks it (or it does not match its hash)."""
        while item.sha256 not in self._held and item.sha256 not in self._missing and self._read < len(self._plan):
            self._read_next()
        content = self._held.get(item.sha256)
        self.give_up(item)
        return content

    def give_up(self, item: StoredContent) -> None:
        """A lane will not take this content after all (it stopped): forget it once no one else needs it."""
        self._uses[item.sha256] -= 1
        if self._uses[item.sha256] <= 0:
            self._held.pop(item.sha256, None)

    def _read_next(self) -> None:
        item = self._plan[self._read]
        self._read += 1
        try:
            content = next(self._reading) if self._reading is not None else self._contents.open(item).read()
        except errors.NotFound:
            # The planned reads stop at the first missing content; the rest are read one at a time instead.
            self._missing.add(item.sha256)
            self._reading = None
            return
        if self._uses[item.sha256] > 0:
            self._held[item.sha256] = content
