"""The cache's decode memo attacked (review 13b): a hit must give what a fresh decode gives."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any
from uuid import UUID

import pytest
from attrs import define, field, frozen

from edu_domain.caching import CacheKey
from edu_domain.model import EducationalContent
from edu_infra.caching import ReadThroughCache
from edu_infra.caching.decoded import DecodedValues
from edu_infra.codec import dumps, from_json, loads, to_json
from edu_infra.memory.cache import InMemoryCache

T1 = UUID("00000000-0000-0000-0000-0000000000b1")


class Loader:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    async def __call__(self) -> Any:
        self.calls += 1
        return self.value


@frozen(slots=False)
class Snapshot:
    """A frozen value with a list: a cached read model an application may keep."""

    name: str
    items: list[int] = field(factory=list)


@define(slots=False)
class Indexed:
    """State derived in `__attrs_post_init__`, not a field."""

    names: tuple[str, ...]

    def __attrs_post_init__(self) -> None:
        self.position = {name: i for i, name in enumerate(self.names)}


async def test_a_frozen_value_with_a_list_is_served_from_the_cache() -> None:
    reads = ReadThroughCache(InMemoryCache())
    value = Snapshot("a", [1, 2])
    load = Loader(value)
    key = CacheKey("snapshot", T1, ("a",))
    assert await reads.fetch(key, load, Snapshot) == value
    hit = await reads.fetch(key, load, Snapshot)
    assert hit == value and load.calls == 1


async def test_a_hit_has_the_state_attrs_post_init_derives() -> None:
    reads = ReadThroughCache(InMemoryCache())
    load = Loader(Indexed(("x", "y")))
    key = CacheKey("indexed", T1, ("a",))
    await reads.fetch(key, load, Indexed)
    hit = await reads.fetch(key, load, Indexed)
    assert load.calls == 1
    assert hit.position == {"x": 0, "y": 1}


def a_content(number: int, metadata: dict[str, Any]) -> Any:
    content = EducationalContent(
        organization_id=T1, author_id=T1, title=f"t{number}", slug=f"s-{number}",
        metadata=metadata,
    )  # fmt: skip
    return loads(dumps(to_json(content, EducationalContent)))


def test_the_memo_keeps_little_memory_for_large_hostile_values() -> None:
    hostile = {"x": [{} for _ in range(20_000)]}  # under METADATA_MAX_BYTES as JSON
    rows = [a_content(n, hostile) for n in range(24)]
    decoded = DecodedValues()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for row in rows:
            decoded.decode(row, EducationalContent)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # the texts alone are 24 x 60 KB; a byte-bounded memo would keep a few MB at most
    assert kept < 8 * 1024 * 1024, f"memo keeps {kept} bytes for 24 values"


def test_a_copy_is_what_a_fresh_decode_gives_and_independent_at_every_depth() -> None:
    decoded = DecodedValues()
    metadata = {"a": [{"b": [1, {"c": "d"}]}], "e": {"f": {"g": [True, None, 1.5]}}}
    data = a_content(1, metadata)
    first = decoded.decode(data, EducationalContent)
    first.metadata["a"][0]["b"][1]["c"] = "changed"
    first.metadata["e"]["f"]["g"].append(3)
    second = decoded.decode(data, EducationalContent)
    fresh = from_json(data, EducationalContent)
    assert to_json(second, EducationalContent) == to_json(fresh, EducationalContent)
    assert second.metadata == metadata
    assert data["metadata"] == metadata, "the cached data itself was not changed"


def test_events_recorded_on_a_copy_stay_on_that_copy() -> None:
    decoded = DecodedValues()
    data = a_content(2, {})
    first = decoded.decode(data, EducationalContent)
    first.record(object())  # type: ignore[arg-type]
    second = decoded.decode(data, EducationalContent)
    assert first.has_events() and not second.has_events()


def test_another_type_under_the_same_text_is_decoded_as_that_type() -> None:
    @define(slots=False)
    class A:
        name: str

    @define(slots=False)
    class B:
        name: str = field()

        @name.validator
        def _short(self, _attribute: Any, value: str) -> None:
            if len(value) > 3:
                raise ValueError("too long")

    decoded = DecodedValues()
    assert type(decoded.decode({"name": "long"}, A)) is A
    with pytest.raises(Exception, match="does not fit"):
        decoded.decode({"name": "long"}, B)
