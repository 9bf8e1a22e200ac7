"""The Cache port's contract, run against every adapter: memory, Redis and Redis Cluster."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from edu_infra.memory.cache import InMemoryCache
from edu_infra.redis import RedisCache
from tests.cache.conftest import CacheHarness

JSON_VALUES = [
    {"name": "Ada", "tags": ["a", "b"], "nested": {"n": 1, "f": 1.5, "ok": True, "none": None}},
    ["x", 1, 2.25, False, None],
    "plain text with ünïcödé",
    0,
    -(2**63),
    3.14159,
    True,
]


@pytest.mark.parametrize("value", JSON_VALUES)
async def test_stores_and_returns_json_values(harness: CacheHarness, value: object) -> None:
    assert await harness.cache.set("k", value) is True
    assert await harness.cache.get("k") == value


async def test_returns_a_copy_not_the_stored_object(harness: CacheHarness) -> None:
    await harness.cache.set("k", {"items": [1]})
    first = await harness.cache.get("k")
    assert first is not None
    first["items"].append(2)
    assert await harness.cache.get("k") == {"items": [1]}


async def test_missing_key_is_none_and_counts_a_miss(harness: CacheHarness) -> None:
    assert await harness.cache.get("absent") is None
    stats = harness.cache.stats()
    assert (stats.misses, stats.hits, stats.errors) == (1, 0, 0)


async def test_keys_carry_the_namespace_prefix(harness: CacheHarness) -> None:
    await harness.cache.set("user:1", 1)
    assert await harness.raw_keys() == ["edu:user:1"]


async def test_caches_with_other_prefixes_do_not_see_each_other(harness: CacheHarness) -> None:
    cache = harness.cache
    other: InMemoryCache | RedisCache
    if isinstance(cache, InMemoryCache):
        other = InMemoryCache(clock=harness.clock, prefix="other:")
        other._entries = cache._entries  # one store, two prefixes, as on one Redis
    else:
        other = RedisCache(cache.client, prefix="other:")
    await cache.set("k", "mine")
    assert await other.get("k") is None
    await other.set("k", "theirs")
    assert await cache.get("k") == "mine"
    assert await other.delete_pattern("*") == 1
    assert await cache.get("k") == "mine"


async def test_overwrites_and_deletes(harness: CacheHarness) -> None:
    cache = harness.cache
    await cache.set("k", 1)
    await cache.set("k", 2)
    assert await cache.get("k") == 2
    assert await cache.exists("k") is True
    assert await cache.delete("k") == 1
    assert await cache.delete("k") == 0
    assert await cache.exists("k") is False


async def test_expiry_removes_the_value(harness: CacheHarness) -> None:
    cache = harness.cache
    assert await cache.set("short", "v", expire=0.1)
    assert await cache.set("long", "v", expire=30)
    ttl = await harness.ttl("short")
    assert ttl is not None and 0 < ttl <= 0.1
    await harness.pass_time(0.15)
    assert await cache.get("short") is None
    assert await cache.exists("short") is False
    assert await cache.get("long") == "v"


async def test_without_expiry_a_value_persists(harness: CacheHarness) -> None:
    await harness.cache.set("k", 1)
    assert await harness.ttl("k") is None
    assert await harness.cache.exists("k")


@pytest.mark.parametrize("expire", [0, -1])
async def test_rejects_non_positive_expiry(harness: CacheHarness, expire: float) -> None:
    with pytest.raises(ValueError, match="expire"):
        await harness.cache.set("k", 1, expire=expire)


async def test_add_stores_only_when_absent(harness: CacheHarness) -> None:
    assert await harness.cache.add("lock", "a", expire=5) is True
    assert await harness.cache.add("lock", "b", expire=5) is False
    assert await harness.cache.get("lock") == "a"


async def test_increment_counts_from_zero_and_keeps_the_ttl(harness: CacheHarness) -> None:
    cache = harness.cache
    assert await cache.increment("n") == 1
    assert await cache.increment("n", 5) == 6
    assert await cache.increment("n", -2) == 4
    assert await cache.get("n") == 4
    assert await harness.ttl("n") is None
    assert await cache.increment("m", expire=30) == 1
    assert await cache.increment("m") == 2
    ttl = await harness.ttl("m")
    assert ttl is not None and 25 < ttl <= 30


async def test_increment_of_a_non_integer_fails_open(harness: CacheHarness) -> None:
    await harness.cache.set("text", "hello")
    assert await harness.cache.increment("text") is None
    assert harness.cache.stats().errors == 1
    assert await harness.cache.get("text") == "hello"


async def test_batch_get_and_set(harness: CacheHarness) -> None:
    cache = harness.cache
    assert await cache.set_many({"a": 1, "b": {"x": [1]}, "c": None}, expire=30)
    assert await cache.get_many(["a", "missing", "b", "c"]) == [1, None, {"x": [1]}, None]
    assert await cache.try_get_many(["a", "missing"]) == [1, None]
    assert await cache.get_many([]) == []
    ttl = await harness.ttl("b")
    assert ttl is not None and 25 < ttl <= 30


async def test_set_many_of_nothing_succeeds(harness: CacheHarness) -> None:
    assert await harness.cache.set_many({}) is True


async def test_delete_pattern_uses_redis_glob_rules(harness: CacheHarness) -> None:
    cache = harness.cache
    names = ["user:1", "user:2", "user:10", "users", "stats:a", "x*y", "xzy", "ab", "bb", "cb"]
    await cache.set_many(dict.fromkeys(names, 1))
    assert await cache.delete_pattern("user:?") == 2
    assert await cache.delete_pattern("x\\*y") == 1
    assert await cache.delete_pattern("[^a]b") == 2
    assert await cache.delete_pattern("nothing*") == 0
    left = await cache.get_many(names)
    assert [n for n, v in zip(names, left, strict=True) if v is not None] == [
        "user:10",
        "users",
        "stats:a",
        "xzy",
        "ab",
    ]
    assert await cache.delete_pattern("*") == 5


async def test_delete_pattern_reaches_every_tenant_slot(harness: CacheHarness) -> None:
    """Tenants hash to different cluster nodes; the pattern must find all of them."""
    tenants = [uuid.UUID(int=i) for i in range(1, 41)]
    await harness.cache.set_many({f"{{{t}}}:user:{n}": n for t in tenants for n in range(3)})
    await harness.cache.set(f"{{{tenants[0]}}}:stats:x", 1)
    assert await harness.cache.delete_pattern("{*}:user:*") == 120
    assert await harness.raw_keys() == [f"edu:{{{tenants[0]}}}:stats:x"]


async def test_delete_pattern_of_one_tenant_leaves_the_others(harness: CacheHarness) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    await harness.cache.set_many({f"{{{a}}}:user:1": 1, f"{{{a}}}:user:2": 2, f"{{{b}}}:user:1": 3})
    assert await harness.cache.delete_pattern(f"{{{a}}}:*") == 2
    assert await harness.cache.get(f"{{{b}}}:user:1") == 3


@pytest.mark.parametrize("garbage", [b"\x80\x81not json", b"{'python': 'repr'}", b"\x80\x04K\x01."])
async def test_undecodable_value_is_a_miss_and_is_dropped(
    harness: CacheHarness, garbage: bytes
) -> None:
    await harness.put_raw("bad", garbage)
    assert await harness.cache.get("bad") is None
    assert await harness.cache.exists("bad") is False
    stats = harness.cache.stats()
    assert (stats.decode_errors, stats.misses, stats.errors) == (1, 1, 0)


async def test_undecodable_value_in_a_batch_is_a_miss(harness: CacheHarness) -> None:
    await harness.cache.set("good", 1)
    await harness.put_raw("bad", b"\xff")
    assert await harness.cache.get_many(["good", "bad"]) == [1, None]
    assert await harness.cache.exists("bad") is False


async def test_a_value_that_is_not_json_is_not_stored(harness: CacheHarness) -> None:
    assert await harness.cache.set("k", {"a": object()}) is False
    assert await harness.cache.set("k", {1, 2}) is False
    assert await harness.cache.set_many({"a": 1, "b": 2**64}) is False
    assert await harness.cache.exists("k") is False
    assert harness.cache.stats().errors == 3


async def test_health_check_passes(harness: CacheHarness) -> None:
    assert await harness.cache.health_check() is True


async def test_counts_hits_misses_sets_and_latency(harness: CacheHarness) -> None:
    cache = harness.cache
    await cache.set("a", 1)
    await cache.set_many({"b": 2, "c": 3})
    await cache.get("a")
    await cache.get("zzz")
    await cache.get_many(["b", "c", "d"])
    await cache.delete("a")
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.sets, stats.deletes) == (3, 2, 3, 1)
    assert stats.errors == 0
    assert stats.operations >= 6
    assert sum(stats.latency_buckets) == stats.operations
    assert stats.latency_total_ms > 0
    assert 0 < stats.latency_avg_ms <= stats.latency_max_ms
    assert stats.hit_ratio == pytest.approx(0.6)


async def test_get_versioned_reads_generations_and_the_key_they_select(
    harness: CacheHarness,
) -> None:
    cache = harness.cache
    tag = "{" + str(uuid.uuid4()) + "}"  # one cluster slot, as the read-through cache keys
    gens, base = [f"{tag}:gen:user", f"{tag}:igen:user:1"], f"{tag}:user:1"
    epoch = await harness.epoch(tag)
    await cache.set(gens[0], "a1b2")
    await cache.set(gens[1], "c3")
    assert await cache.get_versioned(gens, base) == ([epoch, "a1b2", "c3"], None)
    await cache.set(f"{base}@{epoch}.a1b2.c3", {"v": 2})
    assert await cache.get_versioned(gens, base) == ([epoch, "a1b2", "c3"], {"v": 2})
    await cache.set(f"{base}@0.a1b2.c3", {"v": "no epoch"})
    await cache.set(gens[1], "c4")
    assert await cache.get_versioned(gens, base) == ([epoch, "a1b2", "c4"], None)


async def test_an_absent_generation_is_created_fresh_and_never_comes_back(
    harness: CacheHarness,
) -> None:
    """Absent (never set, deleted, expired) is never a fixed "0": a value filed under a lost
    generation stays orphaned."""
    cache = harness.cache
    tag = "{" + str(uuid.uuid4()) + "}"
    gens, base = [f"{tag}:gen:user", f"{tag}:igen:user:1"], f"{tag}:user:1"
    found = await cache.get_versioned(gens, base, 100)
    assert found is not None
    (epoch, first_ns, first_item), value = found
    assert value is None
    assert isinstance(first_ns, str) and isinstance(first_item, str) and first_ns != first_item
    assert await cache.get(gens[0]) == first_ns and await cache.get(gens[1]) == first_item
    for key in gens:
        ttl = await harness.ttl(key)
        assert ttl is not None and 98 < ttl <= 100
    await cache.set(f"{base}@{epoch}.{first_ns}.{first_item}", "old")
    assert await cache.get_versioned(gens, base, 100) == ([epoch, first_ns, first_item], "old")
    seen = {first_ns, first_item}
    for _ in range(3):
        await cache.delete(gens[0])  # FLUSHDB, delete_pattern, eviction, expiry
        await cache.delete(gens[1])
        again = await cache.get_versioned(gens, base, 100)
        assert again is not None
        (_, ns, item), value = again
        assert value is None, "a lost generation was reused"
        assert ns not in seen and item not in seen
        seen |= {ns, item}
    await cache.set(gens[1], 7)  # not a string: replaced like an absent one
    replaced = await cache.get_versioned(gens, base)
    assert replaced is not None
    assert isinstance(replaced[0][2], str) and replaced[0][2] not in seen
    assert await cache.get(gens[1]) == replaced[0][2]
    assert await harness.ttl(gens[1]) is None  # no generation_ttl given: no expiry


async def test_an_expired_generation_comes_back_as_a_new_one(harness: CacheHarness) -> None:
    cache = harness.cache
    tag = "{" + str(uuid.uuid4()) + "}"
    gens, base = [f"{tag}:g"], f"{tag}:item"
    found = await cache.get_versioned(gens, base, 0.2)
    assert found is not None
    (epoch, generation), _ = found
    await cache.set(f"{base}@{epoch}.{generation}", "old")
    await harness.pass_time(0.3)
    again = await cache.get_versioned(gens, base, 0.2)
    assert again is not None and again[0][1] != generation and again[1] is None


async def test_the_epoch_is_64_random_bits_that_stay_put_while_the_backend_lives(
    harness: CacheHarness,
) -> None:
    tag = "{" + str(uuid.uuid4()) + "}"
    epochs = {await harness.epoch(tag) for _ in range(5)}
    assert len(epochs) == 1
    (epoch,) = epochs
    assert len(epoch) == 16 and int(epoch, 16) >= 0


async def test_get_versioned_agrees_with_plain_reads_for_odd_generations(
    harness: CacheHarness,
) -> None:
    """A generation with separators in it still selects the key Python would build."""
    cache = harness.cache
    tag = "{" + str(uuid.uuid4()) + "}"
    gens, base = [f"{tag}:g1", f"{tag}:g2"], f"{tag}:item"
    epoch = await harness.epoch(tag)
    await cache.set(gens[0], "7")
    await cache.set(gens[1], "x@y.z")
    await cache.set(f"{base}@{epoch}.7.x@y.z", "found")
    assert await cache.get_versioned(gens, base) == ([epoch, "7", "x@y.z"], "found")


async def test_concurrent_readers_agree_on_a_created_generation(harness: CacheHarness) -> None:
    cache = harness.cache
    tag = "{" + str(uuid.uuid4()) + "}"
    gens, base = [f"{tag}:gen:user", f"{tag}:igen:user:1"], f"{tag}:user:1"
    found = await asyncio.gather(*(cache.get_versioned(gens, base, 100) for _ in range(20)))
    assert all(f is not None for f in found)
    assert len({tuple(f[0]) for f in found if f is not None}) == 1
