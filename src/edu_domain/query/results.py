"""What the reads return: a `Page` of entities, and the `Group`s and `Tally` of grouped counts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from attrs import field, frozen

T = TypeVar("T")


@frozen
class Page(Generic[T]):
    """One page of results; `next_cursor` continues after the last item, or is None."""

    items: tuple[T, ...]
    next_cursor: str | None = None

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]


@frozen
class Group:
    """One group of a grouped count: the key values, the row count, the extra measures."""

    key: tuple[Any, ...]
    count: int
    measures: Mapping[str, int] = field(factory=dict)


@frozen
class Tally:
    """A grouped count and the counts of other entities read with it (`UnitOfWork.tally`)."""

    groups: tuple[Group, ...]
    totals: Mapping[str, int] = field(factory=dict)
