"""The one guarded path every Redis call of `RedisCache` takes, and the client it guards.

A circuit breaker, an overall deadline on top of redis-py's socket timeouts, and a catch-all
that turns any failure into a counted, rate-limited warning and a neutral result: no redis
exception reaches a caller, and a dead Redis costs one timeout per breaker cooldown, not one
per request. The codec round trip (a value that does not decode is a miss) lives here too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Self, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import DataError, ResponseError

from edu_domain.caching import CacheStats
from edu_infra.caching import CacheMetrics, RateLimitedLog
from edu_infra.codec import CodecError, dumps, loads
from edu_infra.redis.breaker import CircuitBreaker
from edu_infra.redis.urls import parse_cache_url

#: The adapter's one logger, named for the public module (logging configuration names it).
log = logging.getLogger("edu_infra.redis.cache")

X = TypeVar("X")

CORRUPT: Any = object()  # a stored value that is not JSON (served as a miss, then deleted)


def expire_millis(expire: float | None) -> int | None:
    """An expiry in seconds as Redis' PX milliseconds (at least 1); None keeps no expiry."""
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


class GuardedRedis:
    """A redis-py asyncio client behind the guarded path (`RedisCache` documents the options)."""

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
        # the versioned read's state (`RedisCache.get_versioned`); its epoch warnings are
        # rate-limited apart from the others, so that neither hides the other
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
    ) -> Self:
        """A cache for a standalone or cluster URL (the forms: `edu_infra.redis.urls`).

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
            return CORRUPT
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

    def _pipeline(self) -> Any:
        if isinstance(self.client, RedisCluster):
            return self.client.pipeline()
        return self.client.pipeline(transaction=False)
