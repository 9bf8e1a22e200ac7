"""The Cache port's plain commands on Redis: reads, writes, deletes (one key, many, or by
pattern across a cluster's primaries), counters and the health check, each one guarded call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode

from edu_infra.redis.guarded import CORRUPT, GuardedRedis, expire_millis

_SCAN_COUNT = 500
_DELETE_BATCH = 500


def _escape_glob(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisCommands(GuardedRedis):
    """The port's commands but the versioned read (`RedisCache` adds it)."""

    async def get(self, key: str) -> Any | None:
        full = self.prefix + key
        raw, ok = await self._run("get", lambda: self.client.get(full))
        if not ok:
            self._metrics.miss()
            return None
        value = self._decode(full, raw)
        if value is CORRUPT:
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
        await self._drop_corrupt([k for k, v in zip(full, values, strict=True) if v is CORRUPT])
        return [None if v is CORRUPT else v for v in values]

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        values = await self.try_get_many(keys)
        return [None] * len(keys) if values is None else values

    async def set(self, key: str, value: Any, expire: float | None = None) -> bool:
        px, raw = expire_millis(expire), self._encode(value)
        if raw is None:
            return False
        full = self.prefix + key
        result, ok = await self._run("set", lambda: self.client.set(full, raw, px=px))
        if ok and result:
            self._metrics.stored()
            return True
        return False

    async def add(self, key: str, value: Any, expire: float | None = None) -> bool | None:
        px, raw = expire_millis(expire), self._encode(value)
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
        px = expire_millis(expire)
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
        px, full = expire_millis(expire), self.prefix + key
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


def _primaries(cluster: RedisCluster) -> Callable[[], Awaitable[list[ClusterNode]]]:
    async def primaries() -> list[ClusterNode]:
        await cluster.initialize()
        return list(cluster.get_primaries())

    return primaries
