"""Invalidation after commit: which changes drop what, rollback drops nothing, no stale reads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edu_domain.caching import CacheKey
from edu_domain.model import (
    EducationalContent,
    LoginSession,
    Organization,
    User,
    UserProfile,
    UserToken,
)
from edu_domain.ports import Change, ChangeKind
from edu_infra.caching import CacheInvalidator, Namespace, ReadThroughCache
from edu_infra.memory.cache import InMemoryCache
from edu_infra.memory.fakes import ManualClock
from edu_infra.redis import RedisCache

T1 = UUID("00000000-0000-0000-0000-0000000000a1")
T2 = UUID("00000000-0000-0000-0000-0000000000b2")
U1 = UUID("00000000-0000-0000-0000-000000000001")


def change(entity: type, id_: UUID = U1, tenant: UUID | None = T1, kind: str = "update") -> Change:
    return Change(entity, id_, tenant, ChangeKind(kind))


@pytest.fixture
def reads() -> ReadThroughCache:
    return ReadThroughCache(InMemoryCache(clock=ManualClock()))


@pytest.fixture
def invalidator(reads: ReadThroughCache) -> CacheInvalidator:
    return CacheInvalidator(reads)


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (change(User), [CacheKey("user", T1, (str(U1),)), Namespace(T1, "stats")]),
        (change(User, kind="delete"), [CacheKey("user", T1, (str(U1),)), Namespace(T1, "stats")]),
        (change(User, kind="insert"), [Namespace(T1, "stats")]),
        (change(LoginSession), [Namespace(T1, "stats")]),
        (change(EducationalContent, kind="insert"), [Namespace(T1, "content_slug")]),
        (change(Organization, id_=T2, tenant=T2), [Namespace(T2, "org")]),
        (change(Organization, id_=T2, tenant=None), [Namespace(T2, "org")]),
        (change(UserProfile), []),
        (change(UserToken), []),
        (change(User, tenant=None), []),
    ],
)
def test_what_each_change_invalidates(
    invalidator: CacheInvalidator, changed: Change, expected: list[Any]
) -> None:
    assert invalidator.targets([changed]) == expected


def test_one_commit_invalidates_each_target_once(invalidator: CacheInvalidator) -> None:
    changes = [change(User), change(User), change(LoginSession), change(LoginSession, tenant=T2)]
    assert invalidator.targets(changes) == [
        CacheKey("user", T1, (str(U1),)),
        Namespace(T1, "stats"),
        Namespace(T2, "stats"),
    ]


async def test_a_committed_change_makes_the_next_read_reload(
    reads: ReadThroughCache, invalidator: CacheInvalidator
) -> None:
    source = {"user": "v1", "stats": 1, "slug": "s1", "org": "o1", "other": "x1"}
    keys = {
        "user": CacheKey("user", T1, (str(U1),)),
        "stats": CacheKey("stats", T1, ("users",)),
        "slug": CacheKey("content_slug", T1, ("intro",)),
        "org": CacheKey("org", T1),
        "other": CacheKey("user", T1, ("someone-else",)),
    }

    async def read(name: str) -> Any:
        async def load() -> Any:
            return source[name]

        return await reads.fetch(keys[name], load, Any)

    for name in keys:
        await read(name)
    source.update(user="v2", stats=2, slug="s2", org="o2", other="x2")
    await invalidator.committed([change(User)])
    assert [await read(n) for n in keys] == ["v2", 2, "s1", "o1", "x1"]
    await invalidator.committed([change(EducationalContent), change(Organization, T1, T1)])
    assert [await read(n) for n in keys] == ["v2", 2, "s2", "o2", "x1"]


async def test_the_listener_never_raises(reads: ReadThroughCache) -> None:
    class Exploding(ReadThroughCache):
        async def invalidate_namespace(self, tenant: UUID, namespace: str) -> bool:
            raise RuntimeError("boom")

    invalidator = CacheInvalidator(Exploding(InMemoryCache()))
    await invalidator.committed([change(LoginSession), change(EducationalContent)])


async def test_custom_rules_replace_the_defaults(reads: ReadThroughCache) -> None:
    def profile_rule(c: Change, tenant: UUID) -> list[Namespace]:
        return [Namespace(tenant, "profiles")]

    invalidator = CacheInvalidator(reads, {UserProfile: profile_rule})
    assert invalidator.targets([change(UserProfile), change(User)]) == [Namespace(T1, "profiles")]


def test_a_change_that_names_no_tenant_is_skipped_and_the_rest_still_count(
    invalidator: CacheInvalidator,
) -> None:
    changes = [change(User, tenant=None), change(LoginSession)]
    assert invalidator.targets(changes) == [Namespace(T1, "stats")]


async def test_a_large_commit_applies_every_target_once_in_bounded_batches() -> None:
    class Counting(ReadThroughCache):
        in_flight = peak = 0
        applied: list[Any] = []

        async def apply(self, target: Any) -> bool:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            await asyncio.sleep(0)
            self.applied.append(target)
            self.in_flight -= 1
            return True

    reads = Counting(InMemoryCache(clock=ManualClock()))
    invalidator = CacheInvalidator(reads, concurrency=10)
    tenants = [uuid4() for _ in range(45)]
    await invalidator.committed([change(LoginSession, tenant=t) for t in tenants])
    assert sorted(map(str, reads.applied)) == sorted(str(Namespace(t, "stats")) for t in tenants)
    assert reads.peak == 10


# -- with the in-memory unit of work ------------------------------------------------------


async def test_with_the_unit_of_work_commit_invalidates_and_rollback_does_not() -> None:
    from edu_infra.memory import InMemoryUnitOfWorkFactory

    cache = InMemoryCache(clock=ManualClock())
    reads = ReadThroughCache(cache)
    factory = InMemoryUnitOfWorkFactory(clock=ManualClock(), listeners=[CacheInvalidator(reads)])
    org = Organization(name="School", slug="school")
    async with factory.unscoped() as uow:
        await uow.add(org)
        await uow.commit()
    user = User(
        organization_id=org.id, email="ada@example.org", username="ada", hashed_password="h",
        full_name="Ada",
    )  # fmt: skip
    async with factory(tenant=org.id) as uow:
        await uow.add(user)
        await uow.commit()

    loads = 0

    async def get_user() -> User:
        async def load() -> User:
            nonlocal loads
            loads += 1
            async with factory(tenant=org.id) as uow:
                return await uow.require(User, user.id)

        return await reads.fetch(CacheKey("user", org.id, (str(user.id),)), load, User)

    assert (await get_user()).full_name == "Ada"
    assert (await get_user()).full_name == "Ada"
    assert loads == 1

    async with factory(tenant=org.id) as uow:
        (await uow.require(User, user.id)).rename("Ada Rolled Back")
        await uow.rollback()
    async with factory(tenant=org.id) as uow:
        (await uow.require(User, user.id)).rename("Ada Never Committed")
    assert (await get_user()).full_name == "Ada"
    assert loads == 1, "a rollback invalidates nothing"

    async with factory(tenant=org.id) as uow:
        (await uow.require(User, user.id)).rename("Ada King")
        await uow.commit()
    assert (await get_user()).full_name == "Ada King"
    assert loads == 2


# -- the staleness property ---------------------------------------------------------------

ITEMS = ("a", "b")


class Source:
    """The "database": per-item versions; a write commits, then its listener runs."""

    def __init__(self) -> None:
        self.versions = dict.fromkeys(ITEMS, 0)
        self.visible = dict.fromkeys(ITEMS, 0)  # committed *and* invalidated

    def stats(self) -> dict[str, int]:
        return dict(self.versions)


async def ticks(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.sampled_from(ITEMS), st.integers(0, 6), st.integers(0, 6)),
        st.tuples(st.just("stats"), st.just("-"), st.integers(0, 6), st.integers(0, 6)),
        st.tuples(st.just("write"), st.sampled_from(ITEMS), st.integers(0, 6), st.integers(0, 4)),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=150)
@given(ops=operations, lock=st.booleans())
async def test_no_read_returns_data_older_than_a_completed_commit(
    ops: Sequence[tuple[str, str, int, int]], lock: bool
) -> None:
    """Reads and committed writes interleave at random; a read that starts after a write's
    commit (and listener) finished must see that write, whatever loads were in flight."""
    cache = InMemoryCache(clock=ManualClock())
    reads = ReadThroughCache(cache, cross_process_lock=lock, lock_poll=0.0001)
    assert await interleave(reads, ops) == []


@settings(max_examples=25)
@given(ops=operations)
async def test_no_stale_read_through_redis_either(
    redis_url: str, ops: Sequence[tuple[str, str, int, int]]
) -> None:
    cache = RedisCache.from_url(redis_url, connect_timeout_ms=1000, command_timeout_ms=1000)
    try:
        reads = ReadThroughCache(cache)
        assert await interleave(reads, ops) == []
    finally:
        await cache.delete_pattern("*")
        await cache.aclose()


async def interleave(
    reads: ReadThroughCache, ops: Sequence[tuple[str, str, int, int]]
) -> list[str]:
    """Run the operations concurrently; return every read that saw data older than allowed."""
    invalidator = CacheInvalidator(reads)
    source = Source()
    tenant = uuid4()
    ids = {item: uuid4() for item in ITEMS}
    violations: list[str] = []

    async def write(item: str, delay: int, gap: int) -> None:
        await ticks(delay)
        source.versions[item] += 1
        version = source.versions[item]
        await ticks(gap)  # committed, listener not yet run: reads may still see old data
        await invalidator.committed([Change(User, ids[item], tenant, ChangeKind.UPDATE)])
        source.visible[item] = max(source.visible[item], version)

    async def read(item: str, delay: int, load_time: int) -> None:
        await ticks(delay)
        floor = source.visible[item]

        async def load() -> int:
            version = source.versions[item]
            await ticks(load_time)  # a slow query: its result is returned late
            return version

        got = await reads.fetch(CacheKey("user", tenant, (str(ids[item]),)), load, int)
        if got < floor:
            violations.append(f"{item}: read {got} after version {floor} was committed")

    async def stats(delay: int, load_time: int) -> None:
        await ticks(delay)
        floor = dict(source.visible)

        async def load() -> dict[str, int]:
            snapshot = source.stats()
            await ticks(load_time)
            return snapshot

        got = await reads.fetch(CacheKey("stats", tenant, ("users",)), load, dict[str, int])
        for item in ITEMS:
            if got[item] < floor[item]:
                violations.append(f"stats[{item}]: {got[item]} after {floor[item]} committed")

    tasks = []
    for kind, item, delay, extra in ops:
        if kind == "read":
            tasks.append(read(item, delay, extra))
        elif kind == "stats":
            tasks.append(stats(delay, extra))
        else:
            tasks.append(write(item, delay, extra))
    await asyncio.gather(*tasks)
    # After everything settled, every read must see the last committed version.
    await read("a", 0, 0)
    await read("b", 0, 0)
    await stats(0, 0)
    return violations
