"""Issue 11 part 4: an independent review's attacks on cross-instance cache coherence.

Each test plays two or three `ReadThroughCache` instances (separate objects, separate
single-flight tables, pending queues and fences: what two processes have) against a
`redis-server` the test starts on a free port, and asserts the guarantee of README
"Caching" / "Coherence across instances". The two tests still marked `xfail(strict=True)`
are the limits README states under *Not covered* (older data loaded into a running server;
a clean shutdown during an outage longer than `close_grace`): the xfail turns into a
failure the day they hold.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from redis.asyncio import Redis

from edu_domain.caching import CacheKey
from edu_infra.caching import ReadThroughCache
from edu_infra.caching.pending import PendingInvalidations
from edu_infra.redis import RedisCache
from tests.cache.servers import RedisServer, _ping

#: The issue's bound once Redis answers again (README: about 0.5 s by design).
BOUND = 1.0


class Held:
    """A database read that snapshots the value when it starts and returns when released.

    Plays the classic stale-set race: the read happens before the commit, the store after.
    """

    def __init__(self, db: dict[str, str]) -> None:
        self.db = db
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self) -> str:
        value = self.db["v"]
        self.started.set()
        await self.release.wait()
        return value


def _db_loader(db: dict[str, str]) -> Any:
    async def load() -> str:
        return db["v"]

    return load


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)
    server.stop()


def _cache(url: str, **kw: Any) -> RedisCache:
    return RedisCache.from_url(url, **kw)


@pytest.fixture
async def three(own_redis: RedisServer) -> AsyncIterator[tuple[ReadThroughCache, ...]]:
    """writer, reader, bystander: three instances, each with its own client."""
    caches = [_cache(own_redis.url) for _ in range(3)]
    reads = tuple(ReadThroughCache(c) for c in caches)
    yield reads
    for r in reads:
        await r.aclose()
    for c in caches:
        await c.aclose()


def _key() -> CacheKey:
    return CacheKey("user", uuid4(), (str(uuid4()),))


async def _race_then(
    own_redis: RedisServer,
    three: tuple[ReadThroughCache, ...],
    between: str,
) -> str:
    """Reader loads 'old' before the commit; the writer commits 'new' and invalidates
    successfully; `between` happens; the reader's store lands; what does a bystander see
    more than BOUND later?"""
    writer, reader, bystander = three
    key = _key()
    db = {"v": "old"}
    held = Held(db)
    racing = asyncio.create_task(reader.fetch(key, held, str))
    await held.started.wait()
    db["v"] = "new"  # committed
    assert await writer.invalidate(key) is True  # delivered at once: no outage at all
    admin = Redis(port=own_redis.port)
    try:
        if between == "flushdb":
            await admin.flushdb()
        elif between == "delete_pattern":  # the old API, kept by the README
            assert isinstance(writer.cache, RedisCache)
            await writer.cache.delete_pattern(writer.tenant_tag(key.tenant) + ":*")
        elif between == "evict_generations":  # maxmemory eviction, or expiry, of just those
            assert isinstance(writer.cache, RedisCache)
            prefix = writer.cache.prefix
            assert await admin.delete(*(prefix + k for k in writer.generation_keys(key))) == 2
        elif between == "nothing":
            pass
    finally:
        await admin.aclose()
    held.release.set()
    assert await racing == "old"  # it began before the commit: fine to return old
    await asyncio.sleep(BOUND + 0.2)
    return await bystander.fetch(key, _db_loader(db), str)


async def test_classic_stale_set_race_without_outage_holds(
    own_redis: RedisServer, three: tuple[ReadThroughCache, ...]
) -> None:
    assert await _race_then(own_redis, three, "nothing") == "new"


async def test_flushdb_then_a_racing_store_is_not_served(
    own_redis: RedisServer, three: tuple[ReadThroughCache, ...]
) -> None:
    assert await _race_then(own_redis, three, "flushdb") == "new"


async def test_delete_pattern_then_a_racing_store_is_not_served(
    own_redis: RedisServer, three: tuple[ReadThroughCache, ...]
) -> None:
    """delete_pattern('{tenant}:*') (old API) deletes the generation keys too."""
    assert await _race_then(own_redis, three, "delete_pattern") == "new"


async def test_evicted_generations_then_a_racing_store_is_not_served(
    own_redis: RedisServer, three: tuple[ReadThroughCache, ...]
) -> None:
    assert await _race_then(own_redis, three, "evict_generations") == "new"


# -- pause (SIGSTOP of the test's own server) -------------------------------------------


async def _answers(port: int, within: float = 5.0) -> float:
    deadline = time.monotonic() + within
    while not _ping(port):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    return time.monotonic()


@pytest.mark.parametrize("store_lands", ["during_pause", "after_delivery"])
async def test_stale_set_race_around_a_pause_holds(
    own_redis: RedisServer, three: tuple[ReadThroughCache, ...], store_lands: str
) -> None:
    """Reader reads the DB before the commit; the writer's invalidation fails in the pause;
    the reader's store lands during the pause (buffered, executed at resume) or after the
    writer's delivery. No instance may serve 'old' BOUND after Redis answers."""
    writer, reader, bystander = three
    key = _key()
    db = {"v": "old"}
    held = Held(db)  # the racing store is what puts 'old' in the cache
    racing = asyncio.create_task(reader.fetch(key, held, str))
    await held.started.wait()
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        db["v"] = "new"
        assert await writer.invalidate(key) is False
        if store_lands == "during_pause":
            held.release.set()
            await racing
        await asyncio.sleep(0.5)
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    back = await _answers(own_redis.port)
    if store_lands == "after_delivery":
        while writer.pending_invalidations:  # noqa: ASYNC110 - polls a counter
            await asyncio.sleep(0.01)
        held.release.set()
        await racing
    await asyncio.sleep(max(0.0, back + BOUND - time.monotonic()))
    for instance in (bystander, reader, writer):
        assert await instance.fetch(key, _db_loader(db), str) == "new"


@pytest.mark.xfail(
    strict=True,
    reason="LIMIT (README, Not covered): a clean shutdown while Redis is paused longer than "
    "close_grace (1 s by default) drops the pending invalidation, as a writer that dies",
)
async def test_writer_shut_down_cleanly_during_a_long_pause(own_redis: RedisServer) -> None:
    caches = [_cache(own_redis.url) for _ in range(2)]
    writer, bystander = (ReadThroughCache(c) for c in caches)
    key = _key()
    db = {"v": "old"}
    assert await bystander.fetch(key, _db_loader(db), str) == "old"
    assert own_redis.process is not None
    os.kill(own_redis.process.pid, signal.SIGSTOP)
    try:
        db["v"] = "new"
        assert await writer.invalidate(key) is False
        await writer.aclose()  # e.g. `edu` CLI command exits, or a rolling deploy
        await caches[0].aclose()
        await asyncio.sleep(0.6)
    finally:
        os.kill(own_redis.process.pid, signal.SIGCONT)
    await _answers(own_redis.port)
    await asyncio.sleep(BOUND + 0.2)
    try:
        assert await bystander.fetch(key, _db_loader(db), str) == "new"
    finally:
        await bystander.aclose()
        await caches[1].aclose()


@pytest.mark.parametrize("pause", [0.6, 1.5])
async def test_writer_shut_down_cleanly_during_a_pause_shorter_than_its_close_grace(
    own_redis: RedisServer, pause: float
) -> None:
    """`close_grace` keeps a closing writer retrying: a pause that ends within it loses
    nothing (1.5 s: longer than the default grace, which is why it is configurable)."""
    caches = [_cache(own_redis.url) for _ in range(2)]
    writer = ReadThroughCache(caches[0], close_grace=3.0)
    bystander = ReadThroughCache(caches[1])
    key = _key()
    db = {"v": "old"}
    assert await bystander.fetch(key, _db_loader(db), str) == "old"
    assert own_redis.process is not None
    pid = own_redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    resume = asyncio.get_running_loop().call_later(pause, os.kill, pid, signal.SIGCONT)
    try:
        db["v"] = "new"
        assert await writer.invalidate(key) is False
        await writer.aclose()  # returns once delivered, well within the 3 s grace
        assert writer.pending_invalidations == 0
        await caches[0].aclose()
    finally:
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
    await _answers(own_redis.port)
    try:
        assert await bystander.fetch(key, _db_loader(db), str) == "new"
    finally:
        await bystander.aclose()
        await caches[1].aclose()


# -- Redis answers reads but refuses writes ----------------------------------------------


async def test_oom_refusing_the_generation_bump(tmp_path: Path) -> None:
    """maxmemory + noeviction: the bump fails with OOM. Held: Redis 7 refuses the
    (unflagged) read script under OOM too, so no instance serves from the cache."""
    server = RedisServer(tmp_path / "oom")
    server.start()
    caches = [_cache(server.url) for _ in range(2)]
    writer, reader = (ReadThroughCache(c) for c in caches)
    admin = Redis(port=server.port)
    try:
        key = _key()
        db = {"v": "old"}
        assert await reader.fetch(key, _db_loader(db), str) == "old"
        used = int((await admin.info("memory"))["used_memory"])
        await admin.config_set("maxmemory", str(used + 200_000))
        await admin.config_set("maxmemory-policy", "noeviction")
        filler = 0
        while True:  # another tenant's data fills Redis up
            try:
                await admin.set(f"filler:{filler}", "x" * 10_000)
            except Exception:
                break
            filler += 1
        db["v"] = "new"
        assert await writer.invalidate(key) is False  # OOM: pending, retried
        await asyncio.sleep(BOUND + 0.2)
        assert await reader.fetch(key, _db_loader(db), str) == "new"
        assert reader.cache.stats().errors >= 1, "the read script was refused (OOM)"
    finally:
        await admin.aclose()
        for r in (writer, reader):
            await r.aclose()
        for c in caches:
            await c.aclose()
        server.stop()


# -- older data without a restart: the epoch does not change ------------------------------


def _start(
    directory: Path, *extra: str, port: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    from tests.cache.servers import free_port, require_redis_binaries

    binary, _ = require_redis_binaries()
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no"]
    args += ["--dir", str(directory), "--save", "", *extra]
    log = (directory / "redis.log").open("ab")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 5
    while not _ping(port):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    return process, port


@pytest.mark.parametrize("how", ["debug_reload_nosave", "dump_restore"])
@pytest.mark.xfail(
    strict=True,
    reason="LIMIT (README, Not covered): older data loaded into a running server (DEBUG "
    "RELOAD NOSAVE, or a backup restored with RESTORE) brings back old generations with "
    "their values and keeps the replication id: the epoch does not change",
)
async def test_older_data_loaded_without_a_restart(tmp_path: Path, how: str) -> None:
    process, port = _start(tmp_path / how, "--enable-debug-command", "yes")
    caches = [_cache(f"redis://127.0.0.1:{port}/0") for _ in range(2)]
    writer, reader = (ReadThroughCache(c) for c in caches)
    admin = Redis(port=port)
    try:
        key = _key()
        db = {"v": "old"}
        assert await reader.fetch(key, _db_loader(db), str) == "old"
        backup = {k: await admin.dump(k) for k in await admin.keys("*")}
        await admin.save()
        db["v"] = "new"
        assert await writer.invalidate(key) is True
        if how == "debug_reload_nosave":
            await admin.execute_command("DEBUG", "RELOAD", "NOSAVE")
        else:
            await admin.flushall()
            for k, v in backup.items():
                await admin.restore(k, 0, v, replace=True)
        await asyncio.sleep(BOUND + 0.2)
        assert await reader.fetch(key, _db_loader(db), str) == "new"
    finally:
        await admin.aclose()
        for r in (writer, reader):
            await r.aclose()
        for c in caches:
            await c.aclose()
        process.kill()
        process.wait(5)


async def _no_aof_rewrite(port: int) -> None:
    admin = Redis(port=port)
    try:
        for _ in range(500):
            info = await admin.info("persistence")
            if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
                return
            await asyncio.sleep(0.01)
    finally:
        await admin.aclose()


async def test_aof_restart_changes_the_epoch(tmp_path: Path) -> None:
    """Restart from an AOF (fsync always): every key back, the epoch new, nothing stale."""
    directory = tmp_path / "aof"
    process, port = _start(directory, "--appendonly", "yes", "--appendfsync", "always")
    url = f"redis://127.0.0.1:{port}/0"
    reader_cache = _cache(url, connect_timeout_ms=1000, command_timeout_ms=1000)
    reader = ReadThroughCache(reader_cache)
    try:
        key = _key()
        db = {"v": "old"}
        assert await reader.fetch(key, _db_loader(db), str) == "old"
        await _no_aof_rewrite(port)  # a rewrite child orphaned by SIGKILL would outlive us
        process.kill()
        process.wait(5)
        db["v"] = "new"  # committed while Redis is down; the invalidation is lost with it
        process, _ = _start(directory, "--appendonly", "yes", "--appendfsync", "always", port=port)
        admin = Redis(port=port)
        assert len(await admin.keys("*")) >= 1, "the AOF brought the old entry back"
        await admin.aclose()
        for _ in range(20):
            if await reader_cache.health_check():
                break
            await asyncio.sleep(0.1)
        assert await reader.fetch(key, _db_loader(db), str) == "new"
        await _no_aof_rewrite(port)
    finally:
        await reader.aclose()
        await reader_cache.aclose()
        process.kill()
        process.wait(5)


async def test_script_flush_does_not_break_reads(
    own_redis: RedisServer, three: tuple[ReadThroughCache, ...]
) -> None:
    writer, reader, _ = three
    key = _key()
    db = {"v": "old"}
    assert await reader.fetch(key, _db_loader(db), str) == "old"
    admin = Redis(port=own_redis.port)
    await admin.script_flush()
    await admin.aclose()
    db["v"] = "new"
    assert await writer.invalidate(key) is True
    assert await reader.fetch(key, _db_loader(db), str) == "new"
    assert reader.cache.stats().errors == 0


async def test_acl_without_info_serves_nothing_stale(own_redis: RedisServer) -> None:
    admin = Redis(port=own_redis.port)
    await admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "-info")
    await admin.aclose()
    url = f"redis://app:pw@127.0.0.1:{own_redis.port}/0"
    caches = [_cache(url) for _ in range(2)]
    writer, reader = (ReadThroughCache(c) for c in caches)
    try:
        key = _key()
        db = {"v": "old"}
        assert await reader.fetch(key, _db_loader(db), str) == "old"
        db["v"] = "new"
        await writer.invalidate(key)
        assert await reader.fetch(key, _db_loader(db), str) == "new"
    finally:
        for r in (writer, reader):
            await r.aclose()
        for c in caches:
            await c.aclose()


# -- keys and the pending queue -------------------------------------------------------------


def test_key_parts_with_separators_do_not_collide() -> None:
    reads = ReadThroughCache.__new__(ReadThroughCache)
    t = UUID(int=1)
    pairs = [
        (CacheKey("user", t, ("a:b",)), CacheKey("user", t, ("a", "b"))),
        (CacheKey("user:a", t, ("b",)), CacheKey("user", t, ("a", "b"))),
        (CacheKey("user", t, ("a@0.0",)), CacheKey("user", t, ("a",))),
        (CacheKey("u", t, ("%3A",)), CacheKey("u", t, (":",))),
        (CacheKey("igen", t, ("user", "1")), CacheKey("user", t, ("1",))),
    ]
    for one, other in pairs:
        assert reads.storage_base(one) != reads.storage_base(other)
        assert reads.item_generation_key(one) != reads.item_generation_key(other)
        gens_one = {
            reads.namespace_generation_key(t, one.namespace),
            reads.item_generation_key(one),
        }
        assert reads.storage_key(other, ["e", "0", "0"]) not in gens_one


async def test_pending_queue_grows_with_tenants_past_max_items() -> None:
    """Documented: bounded by the tenants and namespaces written meanwhile (not by max)."""

    async def deliver(_: Any) -> int:
        return 0

    async def probe() -> bool:
        return False

    pending = PendingInvalidations(deliver, probe, retry_interval=3600, max_items=10)
    for _ in range(1000):
        pending.add(CacheKey("user", uuid4(), ("1",)))
    assert len(pending) == 1000  # 1000 tenants -> 1000 namespace entries
    await pending.aclose()
