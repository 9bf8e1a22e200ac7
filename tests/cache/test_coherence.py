"""Coherence when the cache fails: failed invalidations, the outage fence, the epoch.

Unit tests over the in-memory cache (which can play dead, and restart from a snapshot);
`tests/reliability/test_cache_coherence.py` runs the same attacks on real Redis servers
with two application instances.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import pytest

from edu_domain.caching import CacheKey
from edu_infra.caching import Invalidation, Namespace, PendingInvalidations, ReadThroughCache
from edu_infra.memory.cache import InMemoryCache
from edu_infra.memory.fakes import ManualClock

T1 = UUID("00000000-0000-0000-0000-0000000000a1")
T2 = UUID("00000000-0000-0000-0000-0000000000b2")
USER = CacheKey("user", T1, ("1",))


class SwitchableCache(InMemoryCache):
    """A memory cache that can play dead: reads miss, writes fail, like an unreachable Redis."""

    down = False

    async def get(self, key: str) -> Any | None:
        return None if self.down else await super().get(key)

    async def try_get_many(self, keys: Sequence[str]) -> list[Any | None] | None:
        return None if self.down else await super().try_get_many(keys)

    async def get_versioned(
        self, generation_keys: Sequence[str], base: str, generation_ttl: float | None = None
    ) -> tuple[list[Any | None], Any | None] | None:
        if self.down:
            return None
        return await super().get_versioned(generation_keys, base, generation_ttl)

    async def set(self, key: str, value: Any, expire: float | None = None) -> bool:
        return False if self.down else await super().set(key, value, expire)

    async def set_many(self, items: Mapping[str, Any], expire: float | None = None) -> bool:
        return False if self.down else await super().set_many(items, expire)

    async def add(self, key: str, value: Any, expire: float | None = None) -> bool | None:
        return None if self.down else await super().add(key, value, expire)

    async def delete(self, key: str) -> int:
        return 0 if self.down else await super().delete(key)

    async def health_check(self) -> bool:
        return not self.down


class Source:
    """The database: `value` is what a load returns now; `loads` counts them."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.loads = 0

    async def __call__(self) -> Any:
        self.loads += 1
        return self.value


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait for a background task's effect (the bound is a hang guard, not a measurement)."""
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


# -- failed invalidations are delivered in the background ----------------------------------


async def test_a_writer_that_never_reads_delivers_its_failed_invalidations() -> None:
    cache = SwitchableCache(clock=ManualClock())
    writer = ReadThroughCache(cache, retry_interval=0.01)
    reader = ReadThroughCache(cache)  # another instance: it saw nothing
    source = Source("old")
    assert await reader.fetch(USER, source, str) == "old"
    cache.down = True
    source.value = "new"  # committed while the cache is unreachable
    assert await writer.invalidate(USER) is False
    assert await writer.invalidate_namespace(T1, "stats") is False
    assert writer.pending_invalidations == 2
    await asyncio.sleep(0.05)  # several retries while down: nothing lands, nothing is lost
    assert writer.pending_invalidations == 2
    cache.down = False
    await eventually(lambda: writer.pending_invalidations == 0)
    assert await reader.fetch(USER, source, str) == "new"
    await writer.aclose()


async def test_while_an_invalidation_is_pending_the_writer_neither_reads_nor_stores_the_key() -> (
    None
):
    cache = SwitchableCache(clock=ManualClock())
    writer = ReadThroughCache(cache, retry_interval=3600, outage_fence=0)
    source = Source("old")
    await writer.fetch(USER, source, str)
    cache.down = True
    await writer.invalidate(USER)
    cache.down = False  # back, with the old entry still in it; no retry yet
    source.value = "new"
    assert [await writer.fetch(USER, source, str) for _ in range(2)] == ["new", "new"]
    assert source.loads == 3, "read from the loader each time, never stored"
    assert await ReadThroughCache(cache).fetch(USER, source, str) == "old", "not delivered yet"
    assert await writer.flush_pending() is True
    assert await ReadThroughCache(cache).fetch(USER, source, str) == "new"
    await writer.aclose()


async def test_too_many_failed_invalidations_collapse_into_their_namespaces() -> None:
    cache = SwitchableCache(clock=ManualClock())
    writer = ReadThroughCache(cache, max_pending=2, retry_interval=3600, outage_fence=0)
    users = [CacheKey("user", T1, (str(i),)) for i in range(4)]
    elsewhere = CacheKey("user", T2, ("0",))
    for key in [*users, elsewhere]:
        await writer.fetch(key, Source("old"), str)
    cache.down = True
    for key in users[:3]:
        assert await writer.invalidate(key) is False
    assert writer.pending_invalidations == 1, "one namespace instead of three users"
    cache.down = False
    source = Source("new")
    assert await writer.fetch(users[3], source, str) == "new", "covered by its namespace"
    assert await writer.fetch(elsewhere, source, str) == "old", "another tenant is untouched"
    assert await writer.flush_pending() is True
    other = ReadThroughCache(cache)
    assert [await other.fetch(key, source, str) for key in users] == ["new"] * 4
    assert await other.fetch(elsewhere, source, str) == "old"
    await writer.aclose()


async def test_an_invalidation_repeated_during_a_delivery_is_not_forgotten() -> None:
    gate = asyncio.Event()
    delivered: list[list[Invalidation]] = []

    async def deliver(targets: Sequence[Invalidation]) -> int:
        delivered.append(list(targets))
        await gate.wait()
        return len(targets)

    async def probe() -> bool:
        return True

    pending = PendingInvalidations(deliver, probe, retry_interval=3600, max_items=10)
    pending.add(USER)
    pending.add(Namespace(T1, "stats"))
    flush = asyncio.create_task(pending.flush())
    await eventually(lambda: bool(delivered))
    pending.add(USER)  # a later commit failed again while the first delivery is in flight
    gate.set()
    assert await flush is False
    assert len(pending) == 1 and pending.covers(USER)
    assert await pending.flush() is True
    assert delivered == [[USER, Namespace(T1, "stats")], [USER]]
    await pending.aclose()


async def test_a_later_successful_invalidation_settles_an_older_failed_one() -> None:
    cache = SwitchableCache(clock=ManualClock())
    writer = ReadThroughCache(cache, retry_interval=3600)
    cache.down = True
    await writer.invalidate(USER)
    cache.down = False
    assert await writer.invalidate(USER) is True
    assert writer.pending_invalidations == 0
    await writer.aclose()


async def test_closing_makes_a_last_delivery_and_stops_the_task() -> None:
    cache = SwitchableCache(clock=ManualClock())
    writer = ReadThroughCache(cache, retry_interval=3600)
    cache.down = True
    await writer.invalidate_namespace(T1, "stats")
    tasks = [t for t in asyncio.all_tasks() if t.get_name() == "edu-cache-pending-invalidations"]
    assert len(tasks) == 1
    cache.down = False
    await writer.aclose()
    assert writer.pending_invalidations == 0
    assert tasks[0].done()


# -- the outage fence ---------------------------------------------------------------------


async def test_after_an_outage_stored_values_are_distrusted_for_the_fence() -> None:
    """The instance saw Redis fail: another writer may not have delivered its invalidation."""
    clock = FakeTime()
    cache = SwitchableCache(clock=ManualClock())
    reads = ReadThroughCache(cache, outage_fence=0.5, monotonic=clock)
    source = Source("old")
    assert await reads.fetch(USER, source, str) == "old"
    cache.down = True
    source.value = "new"  # another instance commits; its invalidation does not land
    assert await reads.fetch(USER, source, str) == "new"  # from the loader: Redis is down
    cache.down = False  # Redis is back, still holding "old"
    assert [await reads.fetch(USER, source, str) for _ in range(3)] == ["new"] * 3
    assert source.loads == 5, "every read in the fence loads"
    clock.now += 0.5
    assert await reads.fetch(USER, source, str) == "new", "what the fence stored is served"
    assert source.loads == 5


async def test_a_failed_invalidation_also_raises_the_fence() -> None:
    clock = FakeTime()
    cache = SwitchableCache(clock=ManualClock())
    reads = ReadThroughCache(cache, outage_fence=0.5, retry_interval=3600, monotonic=clock)
    other = CacheKey("user", T1, ("2",))
    source = Source("old")
    await reads.fetch(other, source, str)
    cache.down = True
    await reads.invalidate(USER)
    cache.down = False
    source.value = "new"
    assert await reads.fetch(other, source, str) == "new"
    clock.now += 0.5
    assert await reads.fetch(other, source, str) == "new"
    assert source.loads == 2
    await reads.aclose()


async def test_a_reader_that_saw_nothing_has_no_fence() -> None:
    cache = SwitchableCache(clock=ManualClock())
    reads = ReadThroughCache(cache)
    source = Source("v")
    assert [await reads.fetch(USER, source, str) for _ in range(3)] == ["v"] * 3
    assert source.loads == 1


# -- the epoch ----------------------------------------------------------------------------


@pytest.mark.parametrize("invalidated", ["item", "namespace"])
async def test_a_restart_from_an_older_snapshot_serves_nothing_stored_before(
    invalidated: str,
) -> None:
    """The invalidation landed, then the server came back from a snapshot taken before it."""
    cache = InMemoryCache(clock=ManualClock())
    writer, reader = ReadThroughCache(cache), ReadThroughCache(cache)
    source = Source("v1")
    assert await reader.fetch(USER, source, str) == "v1"
    snapshot = cache.snapshot()
    source.value = "v2"
    if invalidated == "item":
        assert await writer.invalidate(USER) is True
    else:
        assert await writer.invalidate_namespace(T1, "user") is True
    assert await reader.fetch(USER, source, str) == "v2"
    epoch = cache.epoch
    cache.restart(snapshot)  # "v1" and its generations are back
    assert cache.epoch != epoch
    assert await reader.fetch(USER, source, str) == "v2"
    assert await reader.fetch(USER, source, str) == "v2"
    assert source.loads == 3, "reloaded once after the restart, then cached again"


async def test_a_restart_without_a_snapshot_is_empty() -> None:
    cache = InMemoryCache(clock=ManualClock())
    await cache.set("k", 1)
    cache.restart()
    assert await cache.get("k") is None
