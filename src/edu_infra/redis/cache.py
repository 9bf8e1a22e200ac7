"""The Cache port on Redis (redis-py asyncio), standalone or cluster, failing open.

`RedisCache` is built in layers, each in its module: `guarded` (the client, the breaker, the
deadline, the one guarded path every call takes: no redis exception reaches a caller),
`commands` (the port's plain commands), and here the versioned read, `get_versioned`: the
epoch, the generations and the value they select, in one script call or, on a server that
refuses scripts, a few plain ones.

URLs (`RedisCache.from_url`): see `edu_infra.redis.urls`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import RedisCluster
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

from edu_infra.caching import versioned_key
from edu_infra.caching.keys import new_generation, usable_generations
from edu_infra.codec import dumps
from edu_infra.redis.commands import RedisCommands
from edu_infra.redis.guarded import CORRUPT, expire_millis
from edu_infra.redis.scripts import (
    EPOCH_DIGITS,
    VERSIONED_LUA,
    as_text,
    refuses_scripts,
    valid_epoch,
)

_REFUSED: Any = object()  # the server refused the versioned-read script


class RedisCache(RedisCommands):
    """The Cache port over a redis-py asyncio client (`Redis` or `RedisCluster`).

    Prefer `from_url`. Keys get `prefix` (default "edu:"). `operation_timeout` (seconds)
    bounds each call on top of the client's socket timeouts; `breaker` decides when to
    stop calling a failing server; warnings are logged at most once per `log_interval` s.
    """

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
        px = expire_millis(generation_ttl)
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
        corrupt = [k for k, v in zip(full, generations, strict=True) if v is CORRUPT]
        if corrupt:
            await self._drop_corrupt(corrupt)
            generations = [None if v is CORRUPT else v for v in generations]
        versions = [epoch, *generations]
        if not usable_generations(versions):
            return versions, None
        expected = versioned_key(base, [str(v) for v in versions])
        selected = as_text(raws[-3])
        if selected != self.prefix + expected:
            return versions, await self.get(expected)
        value = self._decode(selected, raws[-2])
        if value is CORRUPT:
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
