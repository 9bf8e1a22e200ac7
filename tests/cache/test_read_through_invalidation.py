"""`ReadThroughCache`'s invalidation in detail: the key layout every instance must share, the
TTLs of generations, how pending invalidations are delivered and settled, and which loads a
read may join after an invalidation. Over the in-memory cache with a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import pytest

from edu_domain.caching import CacheKey
from edu_infra.caching import ReadThroughCache
from edu_infra.caching.keys import escape
from edu_infra.memory.cache import InMemoryCache
from edu_infra.memory.fakes import ManualClock
from tests.cache.test_coherence import FakeTime, Source, SwitchableCache

T1 = UUID("00000000-0000-0000-0000-0000000000a1")
T2 = UUID("00000000-0000-0000-0000-0000000000b2")
USER = CacheKey("user", T1, ("1",))
GEN_TTL = 86_400.0


def memory() -> SwitchableCache:
    return SwitchableCache(clock=ManualClock())


# -- the key layout: every instance (and every version) must build the same keys -----------


def test_escape_keeps_separators_and_its_own_escapes_apart() -> None:
    assert escape("50%:a@b") == "50%25%3Aa%40b"
    assert escape("a:b") != escape("a%3Ab")


def test_generation_and_storage_keys_have_a_fixed_layout() -> None:
    reads = ReadThroughCache(InMemoryCache())
    key = CacheKey("user", T1, ("a", "b:c"))
    tag = "{" + str(T1) + "}"
    assert reads.namespace_generation_key(T1, "user") == f"{tag}:gen:user"
    assert reads.item_generation_key(key) == f"{tag}:igen:user:a:b%3Ac"
    assert reads.generation_keys(key) == [f"{tag}:gen:user", f"{tag}:igen:user:a:b%3Ac"]
    assert reads.storage_key(key, ["e", "g1", "g2"]) == f"{tag}:user:a:b%3Ac@e.g1.g2"
    assert reads.storage_base(CacheKey("org", T1)) == f"{tag}:org"


# -- generations: fresh, with their TTL, and still cacheable afterwards ----------------------


async def test_invalidated_generations_expire_like_every_generation() -> None:
    cache = memory()
    reads = ReadThroughCache(cache, generation_ttl=GEN_TTL)
    assert await reads.invalidate(USER) is True  # never read: its namespace's generation is new
    assert await reads.invalidate_namespace(T2, "stats") is True
    for key in [*reads.generation_keys(USER), reads.namespace_generation_key(T2, "stats")]:
        assert cache.ttl(key) == GEN_TTL, key


async def test_after_an_invalidation_reads_are_cached_again() -> None:
    reads = ReadThroughCache(memory())
    source = Source("old")
    await reads.fetch(USER, source, str)
    for invalidate in (reads.invalidate(USER), reads.invalidate_namespace(T1, "user")):
        source.value = "new" if source.value == "old" else "old"
        assert await invalidate is True
        assert [await reads.fetch(USER, source, str) for _ in range(3)] == [source.value] * 3
    assert source.loads == 3, "one load per invalidation, then hits"


async def test_no_entry_outlives_half_a_generation_ttl() -> None:
    cache = memory()
    reads = ReadThroughCache(cache, generation_ttl=1000)
    await reads.fetch(USER, Source("v"), str, expire=900)
    stored = [k for k in cache.stored_keys() if "@" in k]
    assert [cache.ttl(k.removeprefix(cache.prefix)) for k in stored] == [500]


async def test_an_entry_that_does_not_decode_is_dropped_even_when_the_reload_caches_nothing() -> (
    None
):
    cache = memory()
    reads = ReadThroughCache(cache)
    found = await cache.get_versioned(reads.generation_keys(USER), reads.storage_base(USER))
    assert found is not None
    storage_key = reads.storage_key(USER, found[0])
    await cache.set(storage_key, {"not": "a number"})
    assert await reads.fetch(USER, Source(None), int) is None
    assert cache.prefix + storage_key not in cache.stored_keys()


async def test_an_adapter_that_names_no_generation_serves_every_read_from_the_loader() -> None:
    class Nameless(InMemoryCache):
        async def get_versioned(
            self, generation_keys: Sequence[str], base: str, generation_ttl: float | None = None
        ) -> tuple[list[Any | None], Any | None] | None:
            return [None] * (len(generation_keys) + 1), None

    cache = Nameless(clock=ManualClock())
    reads = ReadThroughCache(cache)
    source = Source(7)
    assert [await reads.fetch(USER, source, int) for _ in range(2)] == [7, 7]
    assert source.loads == 2
    assert cache.stored_keys() == []


# -- delivery of failed invalidations ------------------------------------------------------


async def test_a_delivery_while_the_cache_is_down_keeps_everything_pending() -> None:
    cache = memory()
    reads = ReadThroughCache(cache, retry_interval=3600)
    cache.down = True
    await reads.invalidate(USER)
    await reads.invalidate_namespace(T2, "stats")
    assert await reads.flush_pending() is False
    assert reads.pending_invalidations == 2
    cache.down = False
    assert await reads.flush_pending() is True
    await reads.aclose()


async def test_a_large_backlog_is_delivered_in_batches_each_target_once() -> None:
    class Recording(SwitchableCache):
        batches: list[Mapping[str, Any]] = []

        async def set_many(self, items: Mapping[str, Any], expire: float | None = None) -> bool:
            if not self.down:
                self.batches.append(dict(items))
            return await super().set_many(items, expire)

    cache = Recording(clock=ManualClock())
    reads = ReadThroughCache(cache, retry_interval=3600, generation_ttl=GEN_TTL)
    tenants = [UUID(int=n + 1) for n in range(1_200)]
    cache.down = True
    for tenant in tenants:
        await reads.invalidate_namespace(tenant, "stats")
    cache.down = False
    assert await reads.flush_pending() is True
    assert reads.pending_invalidations == 0
    assert [len(b) for b in cache.batches] == [500, 500, 200]
    bumped = sorted(k for batch in cache.batches for k in batch)
    assert bumped == sorted(reads.namespace_generation_key(t, "stats") for t in tenants)
    assert {cache.ttl(k) for k in bumped} == {GEN_TTL}
    await reads.aclose()


async def test_a_later_namespace_invalidation_settles_an_older_failed_one() -> None:
    cache = memory()
    reads = ReadThroughCache(cache, retry_interval=3600)
    cache.down = True
    assert await reads.invalidate_namespace(T1, "stats") is False
    cache.down = False
    assert await reads.invalidate_namespace(T1, "stats") is True
    assert reads.pending_invalidations == 0
    await reads.aclose()


async def test_closing_while_the_cache_stays_down_gives_up_after_the_grace() -> None:
    cache = memory()
    reads = ReadThroughCache(cache, retry_interval=0.01, close_grace=0.05)
    cache.down = True
    await reads.invalidate(USER)
    async with asyncio.timeout(10):  # a hang guard, not a measurement
        await reads.aclose()
    assert reads.pending_invalidations == 1


# -- single flight after an invalidation -----------------------------------------------------


class BlindCache(InMemoryCache):
    """Versioned reads fail (the reader's outage path), writes and invalidations work."""

    async def get_versioned(
        self, generation_keys: Sequence[str], base: str, generation_ttl: float | None = None
    ) -> tuple[list[Any | None], Any | None] | None:
        return None


@pytest.mark.parametrize("op", ["item", "namespace"])
async def test_a_read_that_starts_after_an_invalidation_never_joins_an_older_load(op: str) -> None:
    reads = ReadThroughCache(BlindCache(clock=ManualClock()))
    gate, value = asyncio.Event(), {"now": "old"}

    async def invalidate() -> None:
        if op == "item":
            assert await reads.invalidate(USER) is True
        else:
            assert await reads.invalidate_namespace(T1, "user") is True

    async def slow_old() -> str:
        await gate.wait()
        return "old"

    async def current() -> str:
        return value["now"]

    await invalidate()
    older = asyncio.create_task(reads.fetch(USER, slow_old, str))
    await asyncio.sleep(0)  # the older load is in flight
    value["now"] = "new"
    await invalidate()
    first = asyncio.create_task(reads.fetch(USER, current, str))
    await asyncio.sleep(0)
    await reads.invalidate_namespace(T2, "stats")
    second = asyncio.create_task(reads.fetch(USER, current, str))
    await asyncio.sleep(0)
    gate.set()
    assert [await older, await first, await second] == ["old", "new", "new"]
    await reads.aclose()


# -- single flight where no generation can be read ------------------------------------------


async def _reads_on(path: str) -> ReadThroughCache:
    """A cache whose next reads take `path`: no versioned read (outage), generations no
    adapter named (nameless), or values distrusted after an outage (fenced)."""
    if path == "outage":
        return ReadThroughCache(BlindCache(clock=ManualClock()))
    if path == "nameless":

        class Nameless(InMemoryCache):
            async def get_versioned(
                self, keys: Sequence[str], base: str, ttl: float | None = None
            ) -> tuple[list[Any | None], Any | None] | None:
                return [None] * (len(keys) + 1), None

        return ReadThroughCache(Nameless(clock=ManualClock()))
    cache = memory()
    reads = ReadThroughCache(cache, monotonic=FakeTime())  # the fence never ends
    cache.down = True
    await reads.fetch(CacheKey("org", T2), Source("x"), str)
    cache.down = False
    return reads


@pytest.mark.parametrize("path", ["outage", "nameless", "fenced"])
async def test_concurrent_reads_without_generations_share_only_their_own_key(path: str) -> None:
    reads = await _reads_on(path)
    gate, loads = asyncio.Event(), []

    def loader(value: UUID) -> Any:
        async def load() -> UUID:
            loads.append(value)
            await gate.wait()
            return value

        return load

    keys = [CacheKey("user", T1, (str(n),)) for n in (1, 2)]
    values = [UUID(int=1), UUID(int=2)]
    tasks = [
        asyncio.create_task(reads.fetch(keys[0], loader(values[0]), UUID)),
        asyncio.create_task(reads.fetch(keys[0], loader(values[0]), UUID)),
        asyncio.create_task(reads.fetch(keys[1], loader(values[1]), UUID)),
    ]
    await asyncio.sleep(0.01)
    gate.set()
    got = [await t for t in tasks]
    assert got == [values[0], values[0], values[1]]
    assert all(isinstance(v, UUID) for v in got)
    assert sorted(loads) == values, "one load per key"
    await reads.aclose()
