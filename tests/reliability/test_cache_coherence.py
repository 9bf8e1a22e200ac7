"""Cache coherence across application instances when Redis pauses, restarts or fails over.

Two instances of the production container share one Redis (a `redis-server` this module
starts and stops) and one SQLite database file. One instance runs in its own OS process
(`cache_instance.py`), the other in the test's. In every scenario the reader never writes
and the writer never reads through the cache; the user is cached in Redis before the fault.

- Restart from a snapshot, restart from an *older* snapshot, failover to a lagging replica:
  Redis comes back holding the old entry. No read after it answers again may see it.
- Pause (SIGSTOP) while the writer commits: Redis comes back unchanged and only the writer
  knows what it failed to invalidate. Reads that start more than `BOUND` after Redis
  answers again must see the write; a reader that saw the outage itself never serves a
  value cached before it on its first read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import pytest
from attrs import frozen
from dependency_injector import providers
from redis.asyncio import Redis

from edu_domain.services import EduCore, NewUser, Scope
from edu_infra.caching import ReadThroughCache
from edu_infra.container import Container, build_container, shutdown
from edu_infra.memory import FastHasher
from tests.cache.servers import RedisServer
from tests.reliability.netfaults import FreezableProxy
from tests.sql_harness import fresh_sqlite_url

ROOT = Path(__file__).resolve().parents[2]

#: The issue's limit for serving a value older than a committed write once Redis answers
#: again after a pause. The design bound with the default settings is about 0.5 s (the
#: writer's retry interval plus one operation deadline, README "Guarantees"); the test
#: asserts the issue's 1 s so that a busy CI machine does not make it flaky.
BOUND = 1.0


@frozen
class World:
    org: UUID
    user: UUID


class Instance(Protocol):
    async def get(self, world: World) -> str: ...

    async def rename(self, world: World, name: str) -> str: ...

    async def pending(self) -> int: ...


class LocalInstance:
    """An instance in the test's own process and event loop."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.core: EduCore = container.core()

    async def get(self, world: World) -> str:
        return (await self.core.users.get(Scope.system(world.org), world.user)).full_name

    async def rename(self, world: World, name: str) -> str:
        return (
            await self.core.users.update(Scope.system(world.org), world.user, {"full_name": name})
        ).full_name

    async def pending(self) -> int:
        reads = self.container.reads()
        assert isinstance(reads, ReadThroughCache)
        return reads.pending_invalidations

    async def register(self) -> World:
        org = await self.core.organizations.create("Coherent School")
        user = await self.core.users.register(
            Scope.system(org.id),
            NewUser(email="ada@example.org", username="ada", password="x" * 12, full_name="v1"),
        )
        return World(org.id, user.user.id)


class ProcessInstance:
    """An instance in its own OS process (`python -m tests.reliability.cache_instance`)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, env: dict[str, str]) -> ProcessInstance:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("EDU_")}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.reliability.cache_instance",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**clean, **env},
            cwd=ROOT,
        )
        instance = cls(process)
        assert await instance._read(within=60) == {"ready": True}
        return instance

    async def _read(self, within: float = 30) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        assert line, "the instance process ended"
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def call(self, **request: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n")
        await self.process.stdin.drain()
        answer = await self._read()
        assert "error" not in answer, answer["error"]
        return answer

    async def get(self, world: World) -> str:
        answer = await self.call(op="get", org=str(world.org), user=str(world.user))
        return str(answer["name"])

    async def rename(self, world: World, name: str) -> str:
        answer = await self.call(op="rename", org=str(world.org), user=str(world.user), name=name)
        return str(answer["name"])

    async def pending(self) -> int:
        return int((await self.call(op="pending"))["pending"])

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.call(op="stop")
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def instance_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "EDU_DATABASE_URL": database_url,
        "EDU_REDIS_URL": redis_url,
        "EDU_REDIS_CONNECT_TIMEOUT_MS": "100",
        "EDU_REDIS_COMMAND_TIMEOUT_MS": "50",
    }


@contextlib.asynccontextmanager
async def two_instances(redis_url: str) -> AsyncIterator[tuple[LocalInstance, ProcessInstance]]:
    """(in-process instance, separate-process instance) on one database and one Redis."""
    env = instance_env(await fresh_sqlite_url(), redis_url)
    container = build_container(env)
    container.hasher.override(providers.Object(FastHasher()))
    local = LocalInstance(container)
    process = await ProcessInstance.start(env)
    try:
        yield local, process
    finally:
        await process.stop()
        await shutdown(container)


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


def _signal(server: RedisServer, sig: signal.Signals) -> None:
    assert server.process is not None
    os.kill(server.process.pid, sig)


async def _reads_after(reader: Instance, world: World, since: float) -> list[tuple[float, str]]:
    """The reader's reads for 2 x BOUND after `since`: (seconds after `since`, name read)."""
    seen: list[tuple[float, str]] = []
    while (started := time.monotonic()) < since + 2 * BOUND:
        seen.append((started - since, await reader.get(world)))
        await asyncio.sleep(0.02)
    return seen


# -- pause: the writer alone knows what it failed to invalidate -----------------------------


async def test_a_paused_redis_leaves_an_idle_reader_stale_for_at_most_the_bound(
    redis_server: RedisServer,
) -> None:
    """Writer in its own process, never reading; reader idle during the pause."""
    async with two_instances(redis_server.url) as (reader, writer):
        world = await reader.register()
        assert await reader.get(world) == "v1"  # cached in Redis from here on
        _signal(redis_server, signal.SIGSTOP)
        assert await writer.rename(world, "v2") == "v2"
        assert await writer.pending() > 0, "the invalidation cannot have reached Redis"
        _signal(redis_server, signal.SIGCONT)
        resumed = time.monotonic()
        seen = await _reads_after(reader, world, resumed)
        stale = [(round(at, 3), name) for at, name in seen if name != "v2"]
        print(f"\nstale reads after the pause (s after SIGCONT): {stale}")
        assert all(at < BOUND for at, _ in stale), stale
        assert seen[-1][1] == "v2"
        assert await writer.pending() == 0


async def test_a_reader_that_saw_the_pause_reads_the_write_first(
    redis_server: RedisServer,
) -> None:
    """Reader in its own process, reading during the pause; writer in the test's process."""
    async with two_instances(redis_server.url) as (writer, reader):
        world = await writer.register()
        assert await reader.get(world) == "v1"
        _signal(redis_server, signal.SIGSTOP)
        assert await reader.get(world) == "v1"  # from the database: Redis does not answer
        assert await writer.rename(world, "v2") == "v2"
        assert await writer.pending() > 0
        _signal(redis_server, signal.SIGCONT)
        resumed = time.monotonic()
        assert await reader.get(world) == "v2", "the first read after the outage is fenced"
        seen = await _reads_after(reader, world, resumed)
        stale = [(round(at, 3), name) for at, name in seen if name != "v2"]
        assert all(at < BOUND for at, _ in stale), stale
        assert await writer.pending() == 0


# -- restarts: Redis comes back holding the old entry ---------------------------------------


async def test_a_write_while_redis_is_down_survives_a_restart_from_a_snapshot(
    redis_server: RedisServer,
) -> None:
    """Saved, killed, written to while down, restarted from the dump (the entry is back)."""
    async with two_instances(redis_server.url) as (reader, writer):
        world = await reader.register()
        assert await reader.get(world) == "v1"
        redis_server.cli_call("save")
        redis_server.stop()
        assert await writer.rename(world, "v2") == "v2"
        redis_server.start()  # loads the dump: the cached "v1" and its generations are back
        assert await reader.get(world) == "v2"
        seen = await _reads_after(reader, world, time.monotonic())
        assert {name for _, name in seen} == {"v2"}


async def test_an_invalidation_lost_with_a_restart_from_an_older_snapshot_is_not_served(
    redis_server: RedisServer,
) -> None:
    """The invalidation reached Redis, which then restarted from a dump taken before it."""
    async with two_instances(redis_server.url) as (writer, reader):
        world = await writer.register()
        assert await reader.get(world) == "v1"
        redis_server.cli_call("save")
        assert await writer.rename(world, "v2") == "v2"
        assert await writer.pending() == 0, "the invalidation landed"
        assert await reader.get(world) == "v2"
        redis_server.stop()
        redis_server.start()  # the dump predates the invalidation
        assert await reader.get(world) == "v2"
        seen = await _reads_after(reader, world, time.monotonic())
        assert {name for _, name in seen} == {"v2"}


# -- failover: a replica that missed the invalidation becomes the primary -------------------


async def _wait_until(predicate: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_an_invalidation_lost_in_a_failover_to_a_lagging_replica_is_not_served(
    tmp_path: Path,
) -> None:
    primary = RedisServer(tmp_path / "primary")
    replica = RedisServer(tmp_path / "replica")
    primary.start()
    replica.start()
    # Clients reach the primary through `front` (a VIP or Sentinel's address); the replica
    # replicates through `link`, which the test freezes to make it lag.
    front = FreezableProxy("127.0.0.1", primary.port)
    link = FreezableProxy("127.0.0.1", primary.port)
    await front.start()
    await link.start()
    admin_primary = Redis(port=primary.port)
    admin_replica = Redis(port=replica.port)
    try:
        await admin_replica.replicaof("127.0.0.1", link.port)

        async def replica_in_sync() -> bool:
            info = await admin_replica.info("replication")
            return bool(info.get("master_link_status") == "up")

        await _wait_until(replica_in_sync)
        async with two_instances(f"redis://127.0.0.1:{front.port}/0") as (reader, writer):
            world = await reader.register()
            assert await reader.get(world) == "v1"
            assert await admin_primary.wait(1, 5000) == 1  # the replica holds the entry
            link.frozen = True  # the replica lags from here on
            assert await writer.rename(world, "v2") == "v2"
            assert await writer.pending() == 0, "the invalidation reached the primary"
            primary.stop()  # the primary dies before the replica caught up
            await link.close()
            await admin_replica.replicaof("NO", "ONE")  # promoted
            front.retarget("127.0.0.1", replica.port)
            assert await reader.get(world) == "v2"
            seen = await _reads_after(reader, world, time.monotonic())
            assert {name for _, name in seen} == {"v2"}
    finally:
        await admin_primary.aclose()
        await admin_replica.aclose()
        await front.close()
        await link.close()
        primary.stop()
        replica.stop()
