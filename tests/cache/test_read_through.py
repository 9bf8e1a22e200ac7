"""Read-through caching: keys, TTLs, generations, single flight, the decorator, fail-open."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import attrs
import pytest
from redis.asyncio import RedisCluster

from edu_domain.caching import Cache, CacheKey, NoReadCache, ReadCache
from edu_domain.errors import NotFound
from edu_domain.model import User
from edu_infra.caching import ReadThroughCache, cache_result
from edu_infra.memory.cache import InMemoryCache
from edu_infra.memory.fakes import ManualClock
from edu_infra.redis import RedisCache
from tests.cache.conftest import CacheHarness
from tests.cache.servers import RedisClusterProcesses

T1 = UUID("00000000-0000-0000-0000-0000000000a1")
T2 = UUID("00000000-0000-0000-0000-0000000000b2")


def a_user(name: str = "Ada", tenant: UUID = T1) -> User:
    return User(
        organization_id=tenant, email="ada@example.org", username="ada", hashed_password="h",
        full_name=name,
    )  # fmt: skip


class Loader:
    """A loader that counts calls and returns the current value of a fake source."""

    def __init__(self, value: Any, *, gate: asyncio.Event | None = None) -> None:
        self.value = value
        self.calls = 0
        self.gate = gate

    async def __call__(self) -> Any:
        self.calls += 1
        value = self.value
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(value, Exception):
            raise value
        return value


@pytest.fixture
def memory() -> InMemoryCache:
    return InMemoryCache(clock=ManualClock())


@pytest.fixture
def reads(memory: InMemoryCache) -> ReadThroughCache:
    return ReadThroughCache(memory)


def user_key(user: User) -> CacheKey:
    return CacheKey("user", user.organization_id, (str(user.id),))


def test_read_caches_satisfy_the_port(memory: InMemoryCache) -> None:
    def accepts(reads: ReadCache, cache: Cache) -> None: ...

    accepts(ReadThroughCache(memory), memory)
    accepts(NoReadCache(), memory)


async def test_no_read_cache_always_loads() -> None:
    load = Loader(7)
    assert await NoReadCache().fetch(CacheKey("stats", T1), load, int) == 7
    assert await NoReadCache().fetch(CacheKey("stats", T1), load, int) == 7
    assert load.calls == 2


async def test_caches_a_loaded_entity_and_serves_detached_copies(harness: CacheHarness) -> None:
    reads = ReadThroughCache(harness.cache)
    user = a_user()
    load = Loader(user)
    first = await reads.fetch(user_key(user), load, User)
    second = await reads.fetch(user_key(user), load, User)
    third = await reads.fetch(user_key(user), load, User)
    assert load.calls == 1
    assert first is user
    assert second is not user and third is not second
    assert attrs.asdict(second) == attrs.asdict(user) == attrs.asdict(third)


async def test_key_layout_has_prefix_tenant_hash_tag_and_generations(
    harness: CacheHarness,
) -> None:
    reads = ReadThroughCache(harness.cache)
    user = a_user()
    keys = [user_key(user), CacheKey("stats", T1), CacheKey("content_slug", T1, ("a:b@c",))]
    await reads.fetch(keys[0], Loader(user), User)
    await reads.fetch(keys[1], Loader({"n": 1}), dict[str, int])
    await reads.fetch(keys[2], Loader(1), int)
    epoch, user_ns, user_item = await harness.generations(reads, keys[0])
    _, stats_ns, stats_item = await harness.generations(reads, keys[1])
    _, slug_ns, slug_item = await harness.generations(reads, keys[2])
    assert await harness.raw_keys() == sorted(
        [
            f"edu:{{{T1}}}:user:{user.id}@{epoch}.{user_ns}.{user_item}",
            f"edu:{{{T1}}}:stats@{epoch}.{stats_ns}.{stats_item}",
            f"edu:{{{T1}}}:content_slug:a%3Ab%40c@{epoch}.{slug_ns}.{slug_item}",
            f"edu:{{{T1}}}:gen:user",
            f"edu:{{{T1}}}:igen:user:{user.id}",
            f"edu:{{{T1}}}:gen:stats",
            f"edu:{{{T1}}}:igen:stats:",
            f"edu:{{{T1}}}:gen:content_slug",
            f"edu:{{{T1}}}:igen:content_slug:a%3Ab%40c",
        ]
    )
    generations = {user_ns, user_item, stats_ns, stats_item, slug_ns, slug_item}
    assert len(generations) == 6, "every generation is drawn at random, none is a constant"
    assert all(len(g) == 16 and int(g, 16) >= 0 for g in generations)


async def test_ttl_follows_the_namespace(harness: CacheHarness) -> None:
    reads = ReadThroughCache(harness.cache, ttls={"org": 900}, default_ttl=30)
    for namespace in ("user", "content_slug", "stats", "org", "other"):
        await reads.fetch(CacheKey(namespace, T1, ("x",)), Loader(1), int)
    await reads.fetch(CacheKey("stats", T1, ("y",)), Loader(1), int, expire=5)
    expected = {"user": 300, "content_slug": 300, "stats": 60, "org": 900, "other": 30}
    for namespace, ttl in expected.items():
        key = CacheKey(namespace, T1, ("x",))
        left = await harness.ttl(reads.storage_key(key, await harness.generations(reads, key)))
        assert left is not None and ttl - 2 < left <= ttl, namespace
        created = await harness.ttl(reads.item_generation_key(key))
        assert created is not None and reads.generation_ttl - 2 < created <= reads.generation_ttl
    key = CacheKey("stats", T1, ("y",))
    left = await harness.ttl(reads.storage_key(key, await harness.generations(reads, key)))
    assert left is not None and 3 < left <= 5


async def test_entries_expire_with_their_ttl(memory: InMemoryCache) -> None:
    clock = ManualClock()
    cache = InMemoryCache(clock=clock)
    reads = ReadThroughCache(cache)
    load = Loader(1)
    await reads.fetch(CacheKey("stats", T1), load, int)
    clock.advance(seconds=59)
    await reads.fetch(CacheKey("stats", T1), load, int)
    assert load.calls == 1
    clock.advance(seconds=2)
    await reads.fetch(CacheKey("stats", T1), load, int)
    assert load.calls == 2


async def test_tenants_never_share_entries(reads: ReadThroughCache) -> None:
    assert await reads.fetch(CacheKey("stats", T1), Loader(1), int) == 1
    assert await reads.fetch(CacheKey("stats", T2), Loader(2), int) == 2
    assert await reads.fetch(CacheKey("stats", T1), Loader(99), int) == 1


async def test_invalidating_a_namespace_orphans_only_that_tenants_entries(
    harness: CacheHarness,
) -> None:
    reads = ReadThroughCache(harness.cache)
    keys = [CacheKey("stats", T1, ("a",)), CacheKey("stats", T1, ("b",)), CacheKey("stats", T2)]
    others = [CacheKey("user", T1, ("u",))]
    for key in keys + others:
        await reads.fetch(key, Loader(1), int)
    assert await reads.invalidate_namespace(T1, "stats") is True
    loads = [Loader(2) for _ in keys + others]
    results = [await reads.fetch(k, ld, int) for k, ld in zip(keys + others, loads, strict=True)]
    assert results == [2, 2, 1, 1]
    assert [ld.calls for ld in loads] == [1, 1, 0, 0]
    generation = await harness.cache.get(reads.namespace_generation_key(T1, "stats"))
    assert isinstance(generation, str) and generation != "0"


async def test_invalidating_an_item_deletes_its_entry_and_bumps_its_generation(
    harness: CacheHarness,
) -> None:
    reads = ReadThroughCache(harness.cache)
    ada, bob = a_user("Ada"), a_user("Bob")
    await reads.fetch(user_key(ada), Loader(ada), User)
    await reads.fetch(user_key(bob), Loader(bob), User)
    assert await reads.invalidate(user_key(ada)) is True
    keys = await harness.raw_keys()
    assert not any(k.startswith(f"edu:{{{T1}}}:user:{ada.id}@") for k in keys)
    assert any(k.startswith(f"edu:{{{T1}}}:user:{bob.id}@") for k in keys)
    renamed = a_user("Ada King")
    fresh = await reads.fetch(user_key(ada), Loader(renamed), User)
    assert fresh.full_name == "Ada King"
    assert (await reads.fetch(user_key(bob), Loader(None), User)).full_name == "Bob"


async def test_generations_and_values_of_a_tenant_share_a_cluster_slot(
    redis_cluster: RedisClusterProcesses,
) -> None:
    redis_cluster.flush()
    cache = RedisCache.from_url(redis_cluster.url, connect_timeout_ms=500, command_timeout_ms=500)
    assert isinstance(cache.client, RedisCluster)
    try:
        reads = ReadThroughCache(cache)
        key = CacheKey("user", T1, ("42",))
        await reads.fetch(key, Loader(1), int)
        await reads.invalidate(key)
        await reads.invalidate_namespace(T1, "user")
        await reads.fetch(key, Loader(2), int)
        keys = [k async for k in cache.client.scan_iter(match="*")]
        assert len(keys) == 3  # namespace generation, item generation, value
        assert {cache.client.keyslot(k) for k in keys} == {cache.client.keyslot(f"{{{T1}}}")}
    finally:
        await cache.aclose()


async def test_none_is_not_cached(reads: ReadThroughCache) -> None:
    load = Loader(None)
    assert await reads.fetch(CacheKey("user", T1, ("x",)), load, User) is None
    assert await reads.fetch(CacheKey("user", T1, ("x",)), load, User) is None
    assert load.calls == 2


async def test_loader_errors_propagate_and_nothing_is_cached(reads: ReadThroughCache) -> None:
    load = Loader(NotFound("User", "x"))
    with pytest.raises(NotFound):
        await reads.fetch(CacheKey("user", T1, ("x",)), load, User)
    load.value = 5
    assert await reads.fetch(CacheKey("user", T1, ("x",)), load, int) == 5
    assert load.calls == 2


@pytest.mark.parametrize("stored", [b"\xff garbage", b'{"unexpected": "shape"}', b"[1, 2]"])
async def test_a_stored_value_that_does_not_decode_is_a_miss_and_is_replaced(
    harness: CacheHarness, stored: bytes
) -> None:
    reads = ReadThroughCache(harness.cache)
    user = a_user()
    epoch = await harness.epoch(reads.tenant_tag(T1))
    storage_key = reads.storage_key(user_key(user), [epoch, None, None])
    await harness.put_raw(storage_key, stored)
    load = Loader(user)
    assert attrs.asdict(await reads.fetch(user_key(user), load, User)) == attrs.asdict(user)
    assert load.calls == 1
    again = await reads.fetch(user_key(user), load, User)
    assert load.calls == 1 and again.full_name == "Ada"


async def test_a_value_the_codec_cannot_encode_is_returned_but_not_cached(
    reads: ReadThroughCache,
) -> None:
    class Opaque:
        pass

    load = Loader(Opaque())
    assert isinstance(await reads.fetch(CacheKey("stats", T1), load, Opaque), Opaque)
    assert isinstance(await reads.fetch(CacheKey("stats", T1), load, Opaque), Opaque)
    assert load.calls == 2


def test_generation_ttl_must_outlive_every_entry(memory: InMemoryCache) -> None:
    with pytest.raises(ValueError, match="generation_ttl"):
        ReadThroughCache(memory, ttls={"stats": 3600}, generation_ttl=3600)


# -- single flight ------------------------------------------------------------------------


async def test_concurrent_misses_of_one_key_load_once(harness: CacheHarness) -> None:
    reads = ReadThroughCache(harness.cache)
    gate = asyncio.Event()
    user = a_user()
    load = Loader(user, gate=gate)
    tasks = [asyncio.create_task(reads.fetch(user_key(user), load, User)) for _ in range(25)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert load.calls == 1
    assert len({id(r) for r in results}) == 25, "every caller gets its own object"
    assert all(attrs.asdict(r) == attrs.asdict(user) for r in results)


class StallingCache(InMemoryCache):
    """Its next `get` reads now but answers only when released: a slow straggler's miss."""

    def __init__(self) -> None:
        super().__init__(clock=ManualClock())
        self.stall_next = False
        self.release = asyncio.Event()

    async def get(self, key: str) -> Any | None:
        value = await super().get(key)
        if self.stall_next:
            self.stall_next = False
            await self.release.wait()
        return value


async def test_a_straggler_that_missed_before_the_store_does_not_load_again() -> None:
    cache = StallingCache()
    reads = ReadThroughCache(cache)
    load = Loader(8)
    key = CacheKey("stats", T1)
    cache.stall_next = True
    straggler = asyncio.create_task(reads.fetch(key, load, int))
    await asyncio.sleep(0)  # the straggler has seen a miss and is still on its way
    assert await reads.fetch(key, load, int) == 8  # another caller loads and stores
    cache.release.set()
    assert await straggler == 8
    assert load.calls == 1


async def test_different_keys_load_independently(reads: ReadThroughCache) -> None:
    loads = [Loader(i) for i in range(5)]
    results = await asyncio.gather(
        *(reads.fetch(CacheKey("stats", T1, (str(i),)), ld, int) for i, ld in enumerate(loads))
    )
    assert results == [0, 1, 2, 3, 4]
    assert [ld.calls for ld in loads] == [1] * 5


async def test_a_loader_error_reaches_every_waiter_and_nothing_is_cached(
    reads: ReadThroughCache,
) -> None:
    gate = asyncio.Event()
    load = Loader(NotFound("User", "x"), gate=gate)
    key = CacheKey("user", T1, ("x",))
    tasks = [asyncio.create_task(reads.fetch(key, load, User)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert load.calls == 1
    assert all(isinstance(r, NotFound) for r in results)
    load.value, load.gate = 3, None
    assert await reads.fetch(key, load, int) == 3


async def test_waiters_survive_the_cancellation_of_the_leader(reads: ReadThroughCache) -> None:
    gate = asyncio.Event()
    load = Loader(5, gate=gate)
    key = CacheKey("stats", T1)
    leader = asyncio.create_task(reads.fetch(key, load, int))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(reads.fetch(key, load, int)) for _ in range(3)]
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiters) == [5, 5, 5]
    assert leader.cancelled()
    assert load.calls == 2  # the cancelled leader's, then one new leader's


async def test_a_read_after_an_invalidation_does_not_join_an_older_load(
    reads: ReadThroughCache,
) -> None:
    gate = asyncio.Event()
    old = Loader(1, gate=gate)
    key = CacheKey("stats", T1)
    before = asyncio.create_task(reads.fetch(key, old, int))
    await asyncio.sleep(0)
    await reads.invalidate_namespace(T1, "stats")  # a commit happened meanwhile
    after = await reads.fetch(key, Loader(2), int)
    gate.set()
    assert (await before, after) == (1, 2)
    assert await reads.fetch(key, Loader(3), int) == 2


async def test_a_value_loaded_before_a_commit_is_never_served_after_it(
    harness: CacheHarness,
) -> None:
    """The staleness rule: the store goes under the generation read before loading."""
    reads = ReadThroughCache(harness.cache)
    gate = asyncio.Event()
    key = CacheKey("user", T1, ("7",))
    slow_old_read = asyncio.create_task(reads.fetch(key, Loader("old", gate=gate), str))
    await asyncio.sleep(0.01)
    await reads.invalidate(key)  # the write commits, its listener runs...
    gate.set()  # ...and only then does the old read finish and store
    assert await slow_old_read == "old"
    load = Loader("new")
    assert await reads.fetch(key, load, str) == "new"
    assert await reads.fetch(key, load, str) == "new"
    assert load.calls == 1


# -- cross-process lock -------------------------------------------------------------------


async def test_the_lock_lets_one_process_load_and_the_other_wait(harness: CacheHarness) -> None:
    one = ReadThroughCache(harness.cache, cross_process_lock=True, lock_poll=0.005)
    two = ReadThroughCache(harness.cache, cross_process_lock=True, lock_poll=0.005)
    gate = asyncio.Event()
    load = Loader(10, gate=gate)
    key = CacheKey("stats", T1)
    first = asyncio.create_task(one.fetch(key, load, int))
    await asyncio.sleep(0.02)
    second = asyncio.create_task(two.fetch(key, load, int))
    await asyncio.sleep(0.02)
    gate.set()
    assert list(await asyncio.gather(first, second)) == [10, 10]
    assert load.calls == 1
    assert not any(k.endswith(":lock") for k in await harness.raw_keys())


async def test_a_waiter_loads_itself_when_the_lock_holder_is_too_slow(
    reads: ReadThroughCache, memory: InMemoryCache
) -> None:
    other = ReadThroughCache(memory, cross_process_lock=True, lock_wait=0.03, lock_poll=0.005)
    key = CacheKey("stats", T1)
    await memory.set(reads.storage_key(key, [memory.epoch, None, None]) + ":lock", "x", expire=10)
    load = Loader(4)
    assert await other.fetch(key, load, int) == 4
    assert load.calls == 1


# -- the decorator ------------------------------------------------------------------------


@attrs.frozen
class Dashboard:
    tenant: UUID
    period: str
    total: int


class FakeSession:
    """Stands for a database session: not a plain value, so it must be ignored."""


async def test_cache_result_keys_by_tenant_and_arguments(reads: ReadThroughCache) -> None:
    calls: list[tuple[UUID, str]] = []

    @cache_result(reads, prefix="stats", expire=600, tenant="org_id", ignore=("session",))
    async def dashboard(session: FakeSession, org_id: UUID, period: str = "week") -> Dashboard:
        calls.append((org_id, period))
        return Dashboard(org_id, period, len(calls))

    first = await dashboard(FakeSession(), T1)
    assert await dashboard(FakeSession(), T1, period="week") == first
    assert await dashboard(FakeSession(), T1, "month") != first
    assert (await dashboard(FakeSession(), T2)).tenant == T2
    assert calls == [(T1, "week"), (T1, "month"), (T2, "week")]
    assert isinstance(first, Dashboard)
    assert dashboard.__name__ == "dashboard"

    assert await reads.invalidate_namespace(T1, "stats")
    assert (await dashboard(FakeSession(), T1)).total == 4
    assert (await dashboard(FakeSession(), T2)).total == 3


async def test_cache_result_uses_the_given_expiry(memory: InMemoryCache) -> None:
    reads = ReadThroughCache(memory)

    @reads.cached(prefix="stats", expire=600)
    async def total(tenant: UUID) -> int:
        return 1

    await total(T1)
    (key,) = [k for k in memory.stored_keys() if ":stats:" in k and "@" in k]
    left = memory.ttl(key.removeprefix("edu:"))
    assert left == pytest.approx(600)


async def test_cache_result_refuses_unkeyable_arguments(reads: ReadThroughCache) -> None:
    @cache_result(reads, prefix="stats")
    async def count(tenant: UUID, session: FakeSession) -> int:
        return 1

    with pytest.raises(TypeError, match="session"):
        await count(T1, FakeSession())


def test_cache_result_needs_a_tenant_argument(reads: ReadThroughCache) -> None:
    with pytest.raises(TypeError, match="tenant"):

        @cache_result(reads, prefix="stats")
        async def count(org: UUID) -> int:
            return 1


async def test_cache_result_keys_never_collide_across_types_and_separators() -> None:

    from edu_infra.caching import ReadThroughCache, cache_result
    from edu_infra.memory.cache import InMemoryCache

    reads = ReadThroughCache(InMemoryCache())
    calls: list[object] = []

    @cache_result(reads, prefix="collide", expire=60, type_=str)
    async def echo(tenant: object, value: object) -> str:
        calls.append(value)
        return repr(value)

    tenant = uuid4()
    pairs = [(["a,b"], ["a", "b"]), ("1", 1), (None, "None")]
    for left, right in pairs:
        assert await echo(tenant, left) == repr(left)
        assert await echo(tenant, right) == repr(right)
    assert len(calls) == 6
