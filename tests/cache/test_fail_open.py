"""Fail-open: a dead, slow or broken Redis never fails a request, and the cache comes back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import (
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    ResponseError,
)
from redis.exceptions import TimeoutError as RedisTimeoutError

from edu_domain.caching import CacheKey
from edu_infra.caching import RateLimitedLog, ReadThroughCache
from edu_infra.redis import BreakerState, CircuitBreaker, RedisCache, parse_cache_url
from tests.cache.servers import RedisClusterProcesses, RedisServer, free_port

T1 = UUID("00000000-0000-0000-0000-0000000000a1")


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- the circuit breaker ------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_probes_after_the_cooldown() -> None:
    clock = FakeTime()
    breaker = CircuitBreaker(threshold=3, cooldown=1.0, monotonic=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failure()
    breaker.success()  # a success resets the count
    for _ in range(3):
        assert breaker.allow()
        breaker.failure()
    assert breaker.state is BreakerState.OPEN and breaker.opened == 1
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow(), "one probe after the cooldown"
    assert not breaker.allow(), "only one probe at a time"
    breaker.failure()
    assert breaker.state is BreakerState.OPEN and breaker.opened == 2
    clock.now += 1.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state.value == "closed"
    assert breaker.allow() and breaker.allow()


def test_an_abandoned_probe_lets_the_next_call_probe() -> None:
    clock = FakeTime()
    breaker = CircuitBreaker(threshold=1, cooldown=0.5, monotonic=clock)
    breaker.failure()
    clock.now += 0.5
    assert breaker.allow()
    breaker.abandon()
    assert breaker.allow()


def test_rate_limited_log_says_how_much_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeTime()
    limited = RateLimitedLog(logging.getLogger("test.cache"), interval=10, monotonic=clock)
    with caplog.at_level(logging.WARNING, logger="test.cache"):
        assert limited.warning("redis down: %s", "x") is True
        assert [limited.warning("redis down: %s", "x") for _ in range(5)] == [False] * 5
        clock.now += 10
        assert limited.warning("redis down: %s", "y") is True
    assert [r.getMessage() for r in caplog.records] == [
        "redis down: x",
        "redis down: y (5 similar messages suppressed)",
    ]


# -- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/2", ("redis://127.0.0.1:6379/2", False, [])),
        ("rediss://:pw@cache:6380/0", ("rediss://:pw@cache:6380/0", False, [])),
        ("unix:///run/redis.sock?db=1", ("unix:///run/redis.sock?db=1", False, [])),
        ("redis+cluster://10.0.0.1:7000", ("redis://10.0.0.1:7000", True, [])),
        ("rediss+cluster://u:p@h:7000", ("rediss://u:p@h:7000", True, [])),
        ("redis://h:7000?cluster=true&x=1", ("redis://h:7000?x=1", True, [])),
        ("redis://h:7000?cluster=false", ("redis://h:7000", False, [])),
        (
            "redis+cluster://a:7000,b:7001,c",
            ("redis://a:7000", True, [("b", 7001), ("c", 6379)]),
        ),
    ],
)
def test_parses_standalone_and_cluster_urls(url: str, expected: Any) -> None:
    assert parse_cache_url(url) == expected


@pytest.mark.parametrize("url", ["http://h:1", "memcached://h", "unix+cluster:///tmp/s"])
def test_rejects_urls_that_are_not_redis(url: str) -> None:
    with pytest.raises(ValueError, match="Redis"):
        parse_cache_url(url)


async def test_from_url_builds_the_right_client_with_millisecond_timeouts() -> None:
    standalone = RedisCache.from_url(
        "redis://127.0.0.1:1/3", connect_timeout_ms=80, command_timeout_ms=40, prefix="app:"
    )
    cluster = RedisCache.from_url("redis://127.0.0.1:1?cluster=1")
    try:
        assert isinstance(standalone.client, Redis) and not standalone.is_cluster
        kwargs = standalone.client.connection_pool.connection_kwargs
        assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (0.08, 0.04)
        assert kwargs["db"] == 3 and standalone.prefix == "app:"
        assert isinstance(cluster.client, RedisCluster) and cluster.is_cluster
    finally:
        await standalone.aclose()
        await cluster.aclose()


# -- a Redis that is not there --------------------------------------------------------------


@pytest.fixture
async def dead_cache() -> AsyncIterator[RedisCache]:
    cache = RedisCache.from_url(
        f"redis://127.0.0.1:{free_port()}/0", connect_timeout_ms=50, command_timeout_ms=50
    )
    yield cache
    await cache.aclose()


async def test_every_operation_fails_open_when_redis_is_unreachable(
    dead_cache: RedisCache,
) -> None:
    cache = dead_cache
    assert await cache.get("k") is None
    assert await cache.set("k", 1, expire=5) is False
    assert await cache.add("k", 1) is None
    assert await cache.delete("k") == 0
    assert await cache.delete_pattern("*") == 0
    assert await cache.exists("k") is False
    assert await cache.increment("n") is None
    assert await cache.increment("n", expire=3) is None
    assert await cache.get_many(["a", "b"]) == [None, None]
    assert await cache.try_get_many(["a"]) is None
    assert await cache.set_many({"a": 1}) is False
    assert await cache.health_check() is False
    stats = cache.stats()
    assert stats.errors >= 3
    assert stats.errors + stats.short_circuited >= 12
    assert stats.misses == 4  # get, get_many (2), try_get_many (1)
    assert stats.hits == 0


async def test_a_versioned_read_of_a_dead_redis_misses_every_key_it_needed(
    dead_cache: RedisCache,
) -> None:
    assert await dead_cache.get_versioned(["{t}:g1", "{t}:g2"], "{t}:v") is None
    assert dead_cache.stats().misses == 3  # two generations and the value


async def test_an_open_circuit_makes_a_dead_redis_cost_nothing(dead_cache: RedisCache) -> None:
    for _ in range(3):
        await dead_cache.get("k")
    assert dead_cache.breaker.state is BreakerState.OPEN
    started = time.perf_counter()
    for _ in range(1_000):
        assert await dead_cache.get("k") is None
    assert time.perf_counter() - started < 0.5
    assert dead_cache.stats().short_circuited == 1_000
    assert dead_cache.stats().errors == 3


async def test_errors_are_logged_at_a_sane_rate(
    dead_cache: RedisCache, caplog: pytest.LogCaptureFixture
) -> None:
    dead_cache.breaker = CircuitBreaker(threshold=1_000)
    with caplog.at_level(logging.WARNING, logger="edu_infra.redis.cache"):
        for _ in range(20):
            await dead_cache.get("k")
    assert dead_cache.stats().errors == 20
    assert len(caplog.records) == 1
    assert "serving without the cache" in caplog.records[0].getMessage()


class BrokenClient:
    """Raises whatever it is told to from every command, like a confused client library."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail

    def pipeline(self, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        RedisConnectionError("refused"),
        RedisTimeoutError("slow"),
        RedisClusterException("no slots"),
        OSError("network unreachable"),
        IndexError("cluster code path"),
    ],
)
async def test_no_client_exception_ever_escapes(error: BaseException) -> None:
    cache = RedisCache(BrokenClient(error), breaker=CircuitBreaker(threshold=100))  # type: ignore[arg-type]
    results = [
        await cache.get("k"),
        await cache.set("k", 1),
        await cache.add("k", 1),
        await cache.delete("k"),
        await cache.delete_pattern("*"),
        await cache.exists("k"),
        await cache.increment("k"),
        await cache.increment("k", expire=1),
        await cache.get_many(["k"]),
        await cache.set_many({"k": 1}),
        await cache.health_check(),
    ]
    assert results == [None, False, None, 0, 0, False, None, None, [None], False, False]
    assert cache.stats().errors == 11


# -- a real server that dies, stalls and comes back ---------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


async def test_a_slow_redis_costs_no_more_than_the_command_timeout(
    own_redis: RedisServer,
) -> None:
    cache = RedisCache.from_url(own_redis.url, connect_timeout_ms=100, command_timeout_ms=50)
    try:
        assert await cache.set("k", 1)
        own_redis.cli_call("client", "pause", "400", "all")
        started = time.perf_counter()
        assert await cache.get("k") is None
        assert time.perf_counter() - started < 0.25
        assert cache.stats().errors == 1
    finally:
        await cache.aclose()


async def test_reads_survive_an_outage_and_the_cache_resumes_when_redis_returns(
    own_redis: RedisServer,
) -> None:
    # A killed server refuses connections at once; generous timeouts only keep a busy machine
    # from adding spurious failures (each of which would raise the outage fence again).
    cache = RedisCache.from_url(
        own_redis.url, connect_timeout_ms=500, command_timeout_ms=500, breaker_cooldown_ms=100
    )
    reads = ReadThroughCache(cache, retry_interval=0.05, outage_fence=0.1)
    database = {"calls": 0}

    async def load() -> dict[str, int]:
        database["calls"] += 1
        return {"total": 42}

    key = CacheKey("stats", T1, ("dashboard",))

    async def request() -> dict[str, int]:
        return await reads.fetch(key, load, dict[str, int])

    try:
        assert [await request() for _ in range(10)] == [{"total": 42}] * 10
        assert database["calls"] == 1 and cache.stats().hits >= 9

        async def spaced_request(i: int) -> dict[str, int]:
            await asyncio.sleep(i * 0.002)
            return await request()

        # The server dies while requests are arriving: some hit, the rest must fall back.
        started = time.perf_counter()
        asyncio.get_running_loop().call_later(0.05, own_redis.stop)
        outage = await asyncio.gather(*(spaced_request(i) for i in range(100)))
        outage += [await request() for _ in range(50)]
        assert outage == [{"total": 42}] * 150, "every request succeeded"
        assert own_redis.process is None, "the server was killed mid-run"
        assert time.perf_counter() - started < 2.0
        assert database["calls"] > 1
        errors = cache.stats().errors
        assert errors >= 1
        assert cache.stats().short_circuited > 0
        assert await cache.health_check() is False

        own_redis.start()  # same port, empty: the server lost its data
        await asyncio.sleep(0.15)  # past the breaker's cooldown
        calls_before = database["calls"]
        assert await request() == {"total": 42}  # the first answer after the outage: fenced
        assert database["calls"] == calls_before + 1
        await asyncio.sleep(0.15)  # past the outage fence
        hits_before = cache.stats().hits
        back = [await request() for _ in range(10)]
        assert back == [{"total": 42}] * 10
        assert database["calls"] == calls_before + 1, "what the fenced read stored is served"
        assert cache.stats().hits >= hits_before + 10
        assert cache.breaker.state is BreakerState.CLOSED
        assert await cache.health_check() is True
    finally:
        await cache.aclose()


# -- the cluster -----------------------------------------------------------------------------


async def test_cluster_url_forms_reach_the_same_cluster(
    redis_cluster: RedisClusterProcesses,
) -> None:
    redis_cluster.flush()
    first = redis_cluster.nodes[0]
    urls = [
        redis_cluster.url,
        f"redis://127.0.0.1:{first.port}?cluster=true",
        "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in redis_cluster.nodes),
    ]
    caches = [RedisCache.from_url(u, connect_timeout_ms=500, command_timeout_ms=500) for u in urls]
    try:
        await caches[0].set("shared", "yes")
        for cache in caches:
            assert cache.is_cluster
            assert await cache.health_check() is True
            assert await cache.get("shared") == "yes"
    finally:
        for cache in caches:
            await cache.aclose()


async def test_cluster_keys_spread_over_every_primary(redis_cluster: RedisClusterProcesses) -> None:
    """Otherwise the delete_pattern contract test would prove nothing about scanning nodes."""
    redis_cluster.flush()
    cache = RedisCache.from_url(redis_cluster.url, connect_timeout_ms=500, command_timeout_ms=500)
    try:
        await cache.set_many({f"{{{UUID(int=i)}}}:k": i for i in range(1, 41)})
        counts = [int(n.cli_call("dbsize").strip()) for n in redis_cluster.nodes]
        assert all(c > 0 for c in counts) and sum(counts) == 40
        assert await cache.delete_pattern("*") == 40
    finally:
        await cache.aclose()


class _RefusingClient:
    """A client whose server answers every write with a refusal (an error reply)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def set(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        ReadOnlyError("You can't write against a read only replica."),
        NoPermissionError("this user has no permissions to run the 'set' command"),
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ],
)
async def test_a_refused_command_is_an_answer_and_keeps_the_breaker_closed(
    error: Exception,
) -> None:
    cache = RedisCache(cast(Any, _RefusingClient(error)), breaker=CircuitBreaker(threshold=3))
    for _ in range(10):
        assert await cache.set("k", 1) is False
    stats = cache.stats()
    assert (stats.errors, stats.short_circuited) == (10, 0)
    assert cache.breaker.opened == 0 and cache.breaker.allow()


async def test_a_connection_failure_opens_the_breaker() -> None:
    refusing = _RefusingClient(RedisConnectionError("Connection refused"))
    cache = RedisCache(cast(Any, refusing), breaker=CircuitBreaker(threshold=3))
    for _ in range(10):
        assert await cache.set("k", 1) is False
    assert cache.breaker.opened == 1
    assert (cache.stats().errors, cache.stats().short_circuited) == (3, 7)
