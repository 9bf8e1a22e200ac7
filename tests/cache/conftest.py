"""Cache fixtures: one harness per adapter (memory, Redis db 15, a test-started cluster).

The contract suite takes `harness` and runs once per adapter. Redis is flushed before each
test; the cluster (three `redis-server` processes) is started once per session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from attrs import define
from redis.asyncio import RedisCluster

from edu_infra.memory.cache import InMemoryCache
from edu_infra.memory.fakes import ManualClock
from edu_infra.redis import RedisCache
from tests.cache.servers import RedisClusterProcesses


@define
class CacheHarness:
    """An adapter under test plus the few backdoors the contract needs."""

    name: str
    cache: InMemoryCache | RedisCache
    clock: ManualClock | None = None

    async def put_raw(self, key: str, raw: bytes) -> None:
        """Store bytes without the codec (a corrupt or foreign value)."""
        if isinstance(self.cache, InMemoryCache):
            self.cache.put_raw(key, raw)
        else:
            await self.cache.client.set(self.cache.prefix + key, raw)

    async def ttl(self, key: str) -> float | None:
        """Seconds left before `key` expires (None: absent or no expiry)."""
        if isinstance(self.cache, InMemoryCache):
            return self.cache.ttl(key)
        millis = await self.cache.client.pttl(self.cache.prefix + key)
        return None if millis < 0 else millis / 1000

    async def pass_time(self, seconds: float) -> None:
        """Memory: move the clock. Redis: really wait (keep `seconds` small)."""
        if self.clock is not None:
            self.clock.advance(seconds=seconds)
        else:
            await asyncio.sleep(seconds)

    async def epoch(self, tag: str) -> str:
        """The backend's epoch as seen by keys with hash tag `tag` (a cluster node has its own)."""
        found = await self.cache.get_versioned([f"{tag}:epoch-probe"], f"{tag}:probe")
        assert found is not None, "the backend did not answer"
        await self.cache.delete(f"{tag}:epoch-probe")  # the generation the read created
        return str(found[0][0])

    async def generations(self, reads: Any, key: Any) -> list[str]:
        """The (epoch, namespace, item) generations `reads` files `key` under right now."""
        found = await self.cache.get_versioned(
            reads.generation_keys(key), reads.storage_base(key), reads.generation_ttl
        )
        assert found is not None, "the backend did not answer"
        return [str(g) for g in found[0]]

    async def raw_keys(self) -> list[str]:
        """Every stored key, prefix included (for assertions about the key layout)."""
        if isinstance(self.cache, InMemoryCache):
            return self.cache.stored_keys()
        keys: list[Any] = [k async for k in self.cache.client.scan_iter(match="*")]
        return sorted(k.decode() for k in keys)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


async def _redis_cache(url: str) -> RedisCache:
    # Generous timeouts: correctness tests must not flake on a busy machine.
    cache = RedisCache.from_url(url, connect_timeout_ms=1000, command_timeout_ms=1000)
    assert await cache.health_check(), f"cannot reach {url}"
    return cache


@pytest.fixture(params=["memory", "redis", "cluster"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[CacheHarness]:
    if request.param == "memory":
        clock = ManualClock()
        yield CacheHarness("memory", InMemoryCache(clock=clock), clock)
        return
    if request.param == "redis":
        cache = await _redis_cache(request.getfixturevalue("redis_url"))
        await cache.client.flushdb()
    else:
        cluster: RedisClusterProcesses = request.getfixturevalue("redis_cluster")
        cache = await _redis_cache(cluster.url)
        await cache.client.flushall(target_nodes=RedisCluster.PRIMARIES)
    try:
        yield CacheHarness(request.param, cache)
    finally:
        await cache.aclose()
