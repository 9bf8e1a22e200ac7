"""The Redis epoch: the replication id, new at every start and every promotion of a replica."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from edu_domain.caching import CacheKey
from edu_infra.caching import ReadThroughCache
from edu_infra.redis import RedisCache
from tests.cache.servers import RedisClusterProcesses, RedisServer

TAG = "{" + str(uuid.uuid4()) + "}"
GENS, BASE = [f"{TAG}:gen:user", f"{TAG}:igen:user:1"], f"{TAG}:user:1"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def _cache(url: str) -> RedisCache:
    return RedisCache.from_url(url, connect_timeout_ms=1000, command_timeout_ms=1000)


async def _epoch(cache: RedisCache) -> str:
    found = await cache.get_versioned(GENS, BASE)
    assert found is not None
    return str(found[0][0])


async def test_a_restart_from_a_snapshot_changes_the_epoch_and_orphans_every_value(
    own_redis: RedisServer,
) -> None:
    cache = _cache(own_redis.url)
    try:
        epoch = await _epoch(cache)
        await cache.set(GENS[0], "g1")
        await cache.set(GENS[1], "g2")
        await cache.set(f"{BASE}@{epoch}.g1.g2", "cached")
        assert await cache.get_versioned(GENS, BASE) == ([epoch, "g1", "g2"], "cached")
        own_redis.cli_call("save")
        own_redis.stop()
        own_redis.start()  # loads the dump: every key is back
        assert any([await cache.health_check() for _ in range(3)]), "reconnected"
        assert await cache.get(f"{BASE}@{epoch}.g1.g2") == "cached", "the snapshot is loaded"
        found = await cache.get_versioned(GENS, BASE)
        assert found is not None
        assert found[0][0] != epoch
        assert found == ([found[0][0], "g1", "g2"], None)
    finally:
        await cache.aclose()


async def test_promoting_a_replica_changes_the_epoch(tmp_path: Path) -> None:
    primary, replica = RedisServer(tmp_path / "p"), RedisServer(tmp_path / "r")
    primary.start()
    replica.start()
    admin = Redis(port=replica.port)
    on_primary, on_replica = _cache(primary.url), _cache(replica.url)
    try:
        await admin.replicaof("127.0.0.1", primary.port)
        for _ in range(500):
            if (await admin.info("replication")).get("master_link_status") == "up":
                break
            await asyncio.sleep(0.01)
        epoch = await _epoch(on_primary)  # creates the generation keys on the primary
        writer = Redis(port=primary.port)
        try:  # the replica must have them before it is read: it cannot create them itself
            assert await writer.execute_command("WAIT", 1, 5000) == 1, "replicated"
        finally:
            await writer.aclose()
        assert await _epoch(on_replica) == epoch, "a replica shares its primary's history"
        primary.stop()
        await admin.replicaof("NO", "ONE")
        assert await _epoch(on_replica) != epoch
    finally:
        await admin.aclose()
        await on_primary.aclose()
        await on_replica.aclose()
        primary.stop()
        replica.stop()


@pytest.fixture
async def no_info(redis_url: str) -> AsyncIterator[RedisCache]:
    """A cache whose ACL user may not run INFO (`-@dangerous`, a common hardening)."""
    admin = Redis.from_url(redis_url)
    user, password = f"edu_noinfo_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await admin.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", "~*", "+@all", "-@dangerous"
    )
    url = make_url(redis_url).set(username=user, password=password)
    cache = _cache(url.render_as_string(hide_password=False))
    try:
        yield cache
    finally:
        await cache.aclose()
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


async def test_without_info_no_cached_value_is_served(
    no_info: RedisCache, caplog: pytest.LogCaptureFixture
) -> None:
    """Restarts could not be told apart: reads go to the loader, loudly, and never fail."""
    reads = ReadThroughCache(no_info)
    key = CacheKey("stats", uuid.uuid4())
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        return 7

    with caplog.at_level(logging.WARNING, logger="edu_infra.redis.cache"):
        assert [await reads.fetch(key, load, int) for _ in range(3)] == [7, 7, 7]
    assert calls == 3
    assert await no_info.get_versioned(GENS, BASE) is None
    assert any("refuses INFO" in r.getMessage() for r in caplog.records)
    await reads.aclose()


async def test_on_a_cluster_each_key_reads_the_epoch_of_its_own_node(
    redis_cluster: RedisClusterProcesses,
) -> None:
    cache = _cache(redis_cluster.url)
    try:
        epochs = {
            node.port: node.cli_call("info", "replication").split("master_replid:")[1][:16]
            for node in redis_cluster.nodes
        }
        assert len(set(epochs.values())) == len(epochs)
        seen = set()
        for i in range(30):
            tag = "{" + str(uuid.UUID(int=i + 1)) + "}"
            scripted = await cache.get_versioned([f"{tag}:g"], f"{tag}:v")
            node = cache.client.get_node_from_key(f"edu:{tag}:g")  # type: ignore[union-attr]
            cache._scripts_refused = True  # the MGET + GET path (an ACL without @scripting)
            plain = await cache.get_versioned([f"{tag}:g"], f"{tag}:v")
            cache._scripts_refused = False
            assert scripted is not None and plain is not None
            assert scripted[0][0] == plain[0][0] == epochs[node.port]
            seen.add(node.port)
        assert seen == set(epochs), "keys of every node were read"
    finally:
        await cache.aclose()


async def test_a_hit_is_one_script_call_that_writes_only_a_missing_generation(
    own_redis: RedisServer,
) -> None:
    """Counted by the test's own server (INFO commandstats counts commands run by scripts)."""
    cache = _cache(own_redis.url)
    reads = ReadThroughCache(cache)
    admin = Redis(port=own_redis.port)

    async def calls() -> dict[str, int]:
        stats = await admin.info("commandstats")
        return {name: int(v["calls"]) for name, v in stats.items()}

    async def load() -> str:
        return "v"

    key = CacheKey("user", uuid.uuid4(), ("1",))
    try:
        before = await calls()
        assert await reads.fetch(key, load, str) == "v"  # a miss: creates two generations
        after_miss = await calls()
        assert after_miss.get("cmdstat_set", 0) - before.get("cmdstat_set", 0) == 3
        for _ in range(5):
            assert await reads.fetch(key, load, str) == "v"
        after_hits = await calls()
        changed = {
            name: after_hits[name] - after_miss.get(name, 0)
            for name in after_hits
            if after_hits[name] != after_miss.get(name, 0) and name != "cmdstat_info"
        }
        assert changed == {"cmdstat_evalsha": 5, "cmdstat_get": 15}, changed
    finally:
        await admin.aclose()
        await reads.aclose()
        await cache.aclose()
