"""Redis stopped, paused and brought back under concurrent requests, through the container.

A `redis-server` of the test's own (free port) is wired in with EDU_REDIS_URL. Whatever
Redis does: no request fails, no request waits much longer than the cache's timeouts, and
no read after a committed write returns the old value, even when Redis kept it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from edu_domain.model import UserRole
from edu_domain.services import EduCore, NewContent, NewUser, Scope
from edu_infra.container import Container, build_container, shutdown
from edu_infra.memory import FastHasher
from edu_infra.redis import RedisCache
from tests.cache.servers import RedisServer

CONNECT_MS, COMMAND_MS = 100, 50
#: redis-py socket timeouts, then the adapter's own deadline per operation (see from_url)
OPERATION_DEADLINE = 2 * (CONNECT_MS + COMMAND_MS) / 1000
#: a cached read makes at most a few cache round trips; anything beyond this is a hang
REQUEST_BOUND = 4 * OPERATION_DEADLINE + 2.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            os.kill(server.process.pid, signal.SIGCONT)
        server.stop()


@pytest.fixture
async def container(redis_server: RedisServer) -> AsyncIterator[Container]:
    built = build_container(
        {
            "EDU_DATABASE_URL": "memory://",
            "EDU_REDIS_URL": redis_server.url,
            "EDU_REDIS_CONNECT_TIMEOUT_MS": str(CONNECT_MS),
            "EDU_REDIS_COMMAND_TIMEOUT_MS": str(COMMAND_MS),
        }
    )
    built.hasher.override(providers.Object(FastHasher()))
    yield built
    await shutdown(built)


async def _world(core: EduCore) -> tuple[Scope, Any, Any]:
    org = await core.organizations.create("Cached School")
    scope = Scope.system(org.id)
    teacher = await core.users.register(
        scope,
        NewUser(
            email="t@example.org",
            username="teacher",
            password="correct horse battery",
            role=UserRole.TEACHER,
            full_name="Version 1",
        ),
    )
    lesson = await core.content.create_draft(
        Scope(org.id, teacher.user.id), NewContent(title="Cached Lesson", body="v1")
    )
    return scope, teacher.user, lesson


def _pause(server: RedisServer) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)


def _resume(server: RedisServer) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGCONT)


async def test_requests_never_fail_while_redis_dies_pauses_and_returns(
    container: Container, redis_server: RedisServer
) -> None:
    core: EduCore = container.core()
    cache = container.cache()
    assert isinstance(cache, RedisCache)
    scope, user, lesson = await _world(core)
    latencies: list[float] = []
    failures: list[Exception] = []
    stop = asyncio.Event()

    requests: list[Callable[[], Awaitable[Any]]] = [
        lambda: core.users.get(scope, user.id),
        lambda: core.content.get_by_slug(scope, lesson.slug),
        lambda: core.users.statistics(scope),
    ]

    async def client(n: int) -> None:
        i = n
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await asyncio.wait_for(requests[i % len(requests)](), REQUEST_BOUND + 5)
            except Exception as error:  # every failure is counted
                failures.append(error)
            latencies.append(time.perf_counter() - started)
            i += 1
            await asyncio.sleep(0.005)

    clients = [asyncio.create_task(client(n)) for n in range(20)]
    try:
        await asyncio.sleep(0.3)
        warm = len(latencies)
        redis_server.stop()  # killed under load
        await asyncio.sleep(0.8)
        redis_server.start()  # back, empty, same port
        await asyncio.sleep(1.5)  # past the breaker's cooldown: the cache resumes
        _pause(redis_server)  # alive but silent: every command times out
        await asyncio.sleep(0.8)
        _resume(redis_server)
        await asyncio.sleep(1.5)
    finally:
        stop.set()
        await asyncio.gather(*clients)
    baseline = sorted(latencies[:warm])[warm // 2]
    print(
        f"\n{len(latencies)} requests, {len(failures)} failed;"
        f" median before the outage {baseline * 1000:.1f} ms,"
        f" slowest {max(latencies) * 1000:.1f} ms (bound {REQUEST_BOUND * 1000:.0f} ms)"
    )
    assert failures == []
    assert len(latencies) > warm > 0
    assert max(latencies) < REQUEST_BOUND, f"slowest request took {max(latencies):.3f} s"
    stats = cache.stats()
    assert stats.errors > 0 and stats.hits > 0
    assert await cache.health_check() is True


@pytest.mark.parametrize("outage", ["killed", "paused"])
async def test_a_write_during_the_outage_is_never_read_stale_once_redis_is_back(
    container: Container, redis_server: RedisServer, outage: str
) -> None:
    """Paused, Redis keeps the old cached values: the missed invalidation must still win."""
    core: EduCore = container.core()
    scope, user, lesson = await _world(core)
    for _ in range(3):  # cached now
        assert (await core.users.get(scope, user.id)).full_name == "Version 1"
        assert (await core.content.get_by_slug(scope, lesson.slug)).body == "v1"
    stats_before = await core.users.statistics(scope)

    if outage == "killed":
        redis_server.stop()
    else:
        _pause(redis_server)
    await core.users.update(scope, user.id, {"full_name": "Version 2"})
    await core.content.update(scope, lesson.id, {"body": "v2"})
    await core.users.register(
        scope, NewUser(email="s@example.org", username="student", password="x" * 12)
    )
    assert (await core.users.get(scope, user.id)).full_name == "Version 2"
    if outage == "killed":
        redis_server.start()
    else:
        _resume(redis_server)

    deadline = time.monotonic() + 2.0  # reads through the breaker's cooldown and after it
    while time.monotonic() < deadline:
        assert (await core.users.get(scope, user.id)).full_name == "Version 2"
        assert (await core.content.get_by_slug(scope, lesson.slug)).body == "v2"
        assert (await core.users.statistics(scope)).total == stats_before.total + 1
        await asyncio.sleep(0.05)
    cache = container.cache()
    assert isinstance(cache, RedisCache) and await cache.health_check() is True
