"""The Cache port on Redis (redis-py asyncio), standalone or cluster, failing open.

Every backend call goes through one guarded path: a circuit breaker, an overall deadline on
top of redis-py's socket timeouts, and a catch-all that turns any failure into a counted,
rate-limited warning and a neutral result. No redis exception reaches a caller; a dead Redis
costs one timeout per breaker cooldown, not one per request.

URLs (`RedisCache.from_url`): see `edu_infra.redis.urls`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, NoPermissionError, NoScriptError, ResponseError

from edu_domain.caching import CacheStats
from edu_infra.caching import CacheMetrics, RateLimitedLog, versioned_key
from edu_infra.caching.keys import new_generation, usable_generations
from edu_infra.codec import CodecError, dumps, loads
from edu_infra.redis.breaker import CircuitBreaker
from edu_infra.redis.scripts import (
    EPOCH_DIGITS,
    VERSIONED_LUA,
    as_text,
    refuses_scripts,
    valid_epoch,
)
from edu_infra.redis.urls import parse_cache_url

log = logging.getLogger(__name__)

X = TypeVar("X")

_SCAN_COUNT = 500
_DELETE_BATCH = 500
_CORRUPT: Any = object()  # a stored value that is not JSON (served as a miss, then deleted)
_REFUSED: Any = object()  # the server refused the versioned-read script


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _millis(expire: float | None) -> int | None:
    if expire is None:
        return None
    if not expire > 0:
        raise ValueError(f"expire must be a positive number of seconds, got {expire!r}")
    return max(1, round(expire * 1000))


def _is_command_error(exc: Exception) -> bool:
    """A command Redis refused (wrong type, no permission, OOM, ...): the server is fine.

    Every `ResponseError` subclass (`NoPermissionError`, `OutOfMemoryError`, `ReadOnlyError`,
    `NoScriptError`, ...) is an answer, so it must not open the breaker.
    """
    return isinstance(exc, (ResponseError, DataError))


class RedisCache:
    """The Cache port over a redis-py asyncio client (`Redis` or `RedisCluster`).

    Prefer `from_url`. Keys get `prefix` (default "edu:"). `operation_timeout` (seconds)
    bounds each call on top of the client's socket timeouts; `breaker` decides when to
    stop calling a failing server; warnings are logged at most once per `log_interval` s.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        prefix: str = "edu:",
        operation_timeout: float | None = 0.5,
        breaker: CircuitBreaker | None = None,
        log_interval: float = 10.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.operation_timeout = operation_timeout
        self.breaker = breaker or CircuitBreaker()
        self._metrics = CacheMetrics(log_interval=log_interval)
        self._log = RateLimitedLog(log, log_interval)
        self._epoch_log = RateLimitedLog(log, log_interval)
        self._versioned_script: Any = None
        self._scripts_refused = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        connect_timeout_ms: float = 100,
        command_timeout_ms: float = 50,
        prefix: str = "edu:",
        max_connections: int = 64,
        retries: int = 0,
        breaker_threshold: int = 3,
        breaker_cooldown_ms: float = 1000,
        log_interval: float = 10.0,
        **client_options: Any,
    ) -> RedisCache:
        """A cache for a standalone or cluster URL (see the module doc for the forms).

        Timeouts are in milliseconds; `retries` are redis-py's retries on connection
        errors and timeouts (0: fail fast, the loader is the fallback). `client_options`
        go to `Redis.from_url` / `RedisCluster.from_url` unchanged.
        """
        target, cluster, seeds = parse_cache_url(url)
        options: dict[str, Any] = {
            "socket_connect_timeout": connect_timeout_ms / 1000,
            "socket_timeout": command_timeout_ms / 1000,
            "retry": Retry(NoBackoff(), retries),
            "max_connections": max_connections,
            "health_check_interval": 0,
            **client_options,
        }
        client: Redis | RedisCluster
        if cluster:
            if seeds:
                options["startup_nodes"] = [ClusterNode(h, p) for h, p in seeds]
            client = RedisCluster.from_url(target, **options)
        else:
            client = Redis.from_url(target, **options)
        # The deadline covers a connect plus a command (and a redirect), with slack.
        deadline = 2 * (connect_timeout_ms + command_timeout_ms) / 1000
        breaker = CircuitBreaker(threshold=breaker_threshold, cooldown=breaker_cooldown_ms / 1000)
        return cls(
            client,
            prefix=prefix,
            operation_timeout=deadline,
            breaker=breaker,
            log_interval=log_interval,
        )

    @property
    def is_cluster(self) -> bool:
        return isinstance(self.client, RedisCluster)

    def stats(self) -> CacheStats:
        return self._metrics.snapshot()

    async def aclose(self) -> None:
        """Close the client's connections (call before the event loop ends)."""
        try:
            await self.client.aclose()
        except Exception as exc:
            log.debug("closing the Redis client failed: %s", exc)

    # -- the guarded path -----------------------------------------------------------------

    async def _run(
        self, op: str, call: Callable[[], Awaitable[X]], *, guarded: bool = True
    ) -> tuple[X | None, bool]:
        """(result, True), or (None, False) after a failure or while the circuit is open."""
        if guarded and not self.breaker.allow():
            self._metrics.short_circuit()
            return None, False
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.operation_timeout):
                result = await call()
        except asyncio.CancelledError:
            self.breaker.abandon()
            raise
        except Exception as exc:
            self._metrics.observe(started)
            self._metrics.error()
            if _is_command_error(exc):
                self.breaker.success()
            else:
                self.breaker.failure()
            self._log.warning(
                "redis %s failed (%s: %s); serving without the cache", op, type(exc).__name__, exc
            )
            return None, False
        self._metrics.observe(started)
        self.breaker.success()
        return result, True

    def _decode(self, key: str, raw: Any) -> Any | None:
        if raw is None:
            self._metrics.miss()
            return None
        try:
            value = loads(raw)
        except CodecError as exc:
            self._metrics.decode_error(key, exc)
            return _CORRUPT
        self._metrics.hit()
        return value

    async def _drop_corrupt(self, keys: Sequence[str]) -> None:
        if keys:
            await self._run("delete", lambda: self.client.delete(*keys))

    def _encode(self, value: Any) -> bytes | None:
        try:
            return dumps(value)
        except CodecError as exc:
            self._metrics.error()
            self._log.warning("cache set skipped: %s", exc)
            return None

    # -- the port -------------------------------------------------------------------------

    async def get(self, key: str) -> Any | None:
        full = self.prefix + key
        raw, ok = await self._run("get", lambda: self.client.get(full))
        if not ok:
            self._metrics.miss()
            return None
        value = self._decode(full, raw)
        if value is _CORRUPT:
            await self._drop_corrupt([full])
            return None
        return value

    async def try_get_many(self, keys: Sequence[str]) -> list[Any | None] | None:
        if not keys:
            return []
        full = [self.prefix + k for k in keys]
        if isinstance(self.client, RedisCluster):
            cluster = self.client
            raws, ok = await self._run("mget", lambda: cluster.mget_nonatomic(full))
        else:
            standalone = self.client
            raws, ok = await self._run("mget", lambda: standalone.mget(full))
        if not ok or raws is None:
            self._metrics.miss(len(keys))
            return None
        values = [self._decode(k, raw) for k, raw in zip(full, raws, strict=True)]
        await self._drop_corrupt([k for k, v in zip(full, values, strict=True) if v is _CORRUPT])
        return [None if v is _CORRUPT else v for v in values]

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        values = await self.try_get_many(keys)
        return [None] * len(keys) if values is None else values

    async def get_versioned(
        self,
        generation_keys: Sequence[str],
        base: str,
        generation_ttl: float | None = None,
    ) -> tuple[list[Any | None], Any | None] | None:
        """One EVALSHA: read the epoch and the generations, and the value of the key they select.

        The epoch is the first 16 hex digits of the server's replication id (`INFO
        replication`), which Redis draws anew at every start and every promotion of a
        replica: a server that restarted from a snapshot or took over from a lagging primary
        selects none of the keys stored before, so it cannot serve what it forgot to
        invalidate. A generation key without a string gets one of the fresh generations
        passed in (the script's only write). The selected key shares the generation keys'
        hash tag (the tenant), so the script touches one cluster slot and reads the epoch of
        the node that owns it. The script decodes JSON-string generations as the codec does;
        if it read them differently, the value is fetched again under the key Python
        computes, so a disagreement costs a round trip, never a wrong value.
        """
        full = [self.prefix + k for k in generation_keys]
        px = _millis(generation_ttl)
        if self._scripts_refused:
            return await self._get_versioned_plainly(generation_keys, base, px)
        script = self._versioned_script
        if script is None:
            script = self._versioned_script = self.client.register_script(VERSIONED_LUA)
        fresh = [dumps(new_generation()) for _ in full]
        args: list[Any] = [self.prefix + base, "" if px is None else px, *fresh]

        async def call() -> Any:
            try:
                return await script(keys=full, args=args)
            except ResponseError as exc:
                if isinstance(exc, NoScriptError) or not refuses_scripts(exc):
                    raise
                # an ACL without @scripting, a server without Lua: more round trips instead
                self._scripts_refused = True
                self._log.warning(
                    "redis refuses our script (%s); cached reads use INFO, MGET, GET", exc
                )
                return _REFUSED

        raws, ok = await self._run("get_versioned", call)
        if raws is _REFUSED:
            return await self._get_versioned_plainly(generation_keys, base, px)
        if not ok or not isinstance(raws, list) or len(raws) != len(full) + 3:
            self._metrics.miss(len(full) + 1)
            return None
        epoch = as_text(raws[-1])
        if not valid_epoch(epoch):
            self._no_epoch(len(full))
            return None
        generations = [self._decode(k, raw) for k, raw in zip(full, raws, strict=False)]
        corrupt = [k for k, v in zip(full, generations, strict=True) if v is _CORRUPT]
        if corrupt:
            await self._drop_corrupt(corrupt)
            generations = [None if v is _CORRUPT else v for v in generations]
        versions = [epoch, *generations]
        if not usable_generations(versions):
            return versions, None
        expected = versioned_key(base, [str(v) for v in versions])
        selected = as_text(raws[-3])
        if selected != self.prefix + expected:
            return versions, await self.get(expected)
        value = self._decode(selected, raws[-2])
        if value is _CORRUPT:
            await self._drop_corrupt([selected])
            return versions, None
        return versions, value

    async def _get_versioned_plainly(
        self, generation_keys: Sequence[str], base: str, px: int | None
    ) -> tuple[list[Any | None], Any | None] | None:
        """Without scripts: INFO (of the node owning the keys), MGET, then GET.

        A generation key without a string gets a fresh one with SET NX, then is read again,
        so that concurrent readers agree on it (one more round trip, only then).
        """
        epoch = await self._epoch_of(self.prefix + (generation_keys or [base])[0])
        if epoch is None:
            self._metrics.miss(len(generation_keys) + 1)
            return None
        if not valid_epoch(epoch):
            self._no_epoch(len(generation_keys))
            return None
        generations = await self.try_get_many(generation_keys)
        if generations is None:
            return None
        missing = [
            (k, g)
            for k, g in zip(generation_keys, generations, strict=True)
            if not isinstance(g, str)
        ]
        if missing:
            expire = None if px is None else px / 1000
            for key, unusable in missing:  # absent: SET NX; not a string: replace it
                write = self.add if unusable is None else self.set
                await write(key, new_generation(), expire)
            generations = await self.try_get_many(generation_keys)
            if generations is None:
                return None
        versions = [epoch, *generations]
        if not usable_generations(versions):
            return versions, None
        return versions, await self.get(versioned_key(base, [str(v) for v in versions]))

    async def _epoch_of(self, key: str) -> str | None:
        async def info() -> Any:
            try:
                if isinstance(self.client, RedisCluster):
                    await self.client.initialize()  # no-op once done; routing needs slots
                    node = self.client.get_node_from_key(key)
                    return await self.client.info("replication", target_nodes=node)
                return await self.client.info("replication")
            except NoPermissionError as exc:
                self._epoch_log.warning(
                    "redis refuses INFO (%s): restarts and failovers cannot be detected, so "
                    "cached values are not served; allow +info for the cache's ACL user",
                    exc,
                )
                return None

        reply, ok = await self._run("info", info)
        if not ok or not isinstance(reply, dict):
            return None
        return str(reply.get("master_replid", ""))[:EPOCH_DIGITS]

    def _no_epoch(self, generations: int) -> None:
        """A server that names no dataset history cannot be trusted with cached values."""
        self._metrics.miss(generations + 1)
        self._epoch_log.warning("redis reports no replication id; cached values are not served")

    async def set(self, key: str, value: Any, expire: float | None = None) -> bool:
        px, raw = _millis(expire), self._encode(value)
        if raw is None:
            return False
        full = self.prefix + key
        result, ok = await self._run("set", lambda: self.client.set(full, raw, px=px))
        if ok and result:
            self._metrics.stored()
            return True
        return False

    async def add(self, key: str, value: Any, expire: float | None = None) -> bool | None:
        px, raw = _millis(expire), self._encode(value)
        if raw is None:
            return None
        full = self.prefix + key
        result, ok = await self._run("set nx", lambda: self.client.set(full, raw, px=px, nx=True))
        if not ok:
            return None
        if result:
            self._metrics.stored()
        return bool(result)

    async def set_many(self, items: Mapping[str, Any], expire: float | None = None) -> bool:
        px = _millis(expire)
        encoded: dict[str, bytes] = {}
        for key, value in items.items():
            raw = self._encode(value)
            if raw is None:
                return False
            encoded[self.prefix + key] = raw
        if not encoded:
            return True

        async def write() -> list[Any]:
            async with self._pipeline() as pipe:
                for full, raw in encoded.items():
                    pipe.set(full, raw, px=px)
                return list(await pipe.execute())

        results, ok = await self._run("set_many", write)
        if ok and results is not None and all(results):
            self._metrics.stored(len(encoded))
            return True
        return False

    async def delete(self, key: str) -> int:
        full = self.prefix + key
        count, ok = await self._run("delete", lambda: self.client.delete(full))
        deleted = int(count or 0) if ok else 0
        self._metrics.deleted(deleted)
        return deleted

    async def delete_pattern(self, pattern: str) -> int:
        """SCAN (every primary of a cluster) for prefix+pattern, UNLINK in batches.

        Returns how many keys were deleted; stops early (returning the count so far) if
        Redis fails midway.
        """
        match = _escape_glob(self.prefix) + pattern
        deleted = 0
        if isinstance(self.client, RedisCluster):
            cluster = self.client
            nodes, ok = await self._run("cluster nodes", _primaries(cluster))
            if not ok or nodes is None:
                return 0
            for node in nodes:
                found = await self._delete_scanned(match, node)
                if found is None:
                    break
                deleted += found
        else:
            deleted = await self._delete_scanned(match, None) or 0
        return deleted

    async def _delete_scanned(self, match: str, node: ClusterNode | None) -> int | None:
        deleted, cursor = 0, 0
        while True:
            page, ok = await self._run("scan", self._scan_page(cursor, match, node))
            if not ok or page is None:
                return deleted or None
            cursor, keys = page
            for start in range(0, len(keys), _DELETE_BATCH):
                batch = keys[start : start + _DELETE_BATCH]
                count, ok = await self._run("unlink", self._unlink(batch))
                if not ok:
                    return deleted
                deleted += int(count or 0)
                self._metrics.deleted(int(count or 0))
            if cursor == 0:
                return deleted

    def _unlink(self, keys: list[bytes | str]) -> Callable[[], Awaitable[int]]:
        async def unlink() -> int:
            return int(await self.client.unlink(*keys))

        return unlink

    def _scan_page(
        self, cursor: int, match: str, node: ClusterNode | None
    ) -> Callable[[], Awaitable[tuple[int, list[bytes | str]]]]:
        async def scan() -> tuple[int, list[bytes | str]]:
            if isinstance(self.client, RedisCluster):
                next_cursor, keys = await self.client.scan(
                    cursor, match=match, count=_SCAN_COUNT, target_nodes=node
                )
                if isinstance(next_cursor, dict):  # the cluster client keys cursors by node
                    (next_cursor,) = next_cursor.values()
            else:
                next_cursor, keys = await self.client.scan(cursor, match=match, count=_SCAN_COUNT)
            return int(next_cursor), list(keys)

        return scan

    async def exists(self, key: str) -> bool:
        full = self.prefix + key
        count, ok = await self._run("exists", lambda: self.client.exists(full))
        return bool(ok and count)

    async def increment(self, key: str, amount: int = 1, expire: float | None = None) -> int | None:
        """INCRBY (keeps the TTL); with `expire`, PEXPIRE in the same pipeline."""
        px, full = _millis(expire), self.prefix + key
        if px is None:
            value, ok = await self._run("incrby", lambda: self.client.incrby(full, amount))
            return int(value) if ok and value is not None else None

        async def incr_and_expire() -> list[Any]:
            async with self._pipeline() as pipe:
                pipe.incrby(full, amount)
                pipe.pexpire(full, px)
                return list(await pipe.execute())

        results, ok = await self._run("incrby", incr_and_expire)
        return int(results[0]) if ok and results else None

    async def health_check(self) -> bool:
        """PING (every primary of a cluster), past the breaker: a success closes it."""
        if isinstance(self.client, RedisCluster):
            cluster = self.client
            reply, ok = await self._run(
                "ping", lambda: cluster.ping(target_nodes=RedisCluster.PRIMARIES), guarded=False
            )
        else:
            standalone = self.client
            reply, ok = await self._run("ping", lambda: standalone.ping(), guarded=False)
        if isinstance(reply, dict):
            return ok and all(bool(v) for v in reply.values())
        return ok and bool(reply)

    def _pipeline(self) -> Any:
        if isinstance(self.client, RedisCluster):
            return self.client.pipeline()
        return self.client.pipeline(transaction=False)


def _primaries(cluster: RedisCluster) -> Callable[[], Awaitable[list[ClusterNode]]]:
    async def primaries() -> list[ClusterNode]:
        await cluster.initialize()
        return list(cluster.get_primaries())

    return primaries
