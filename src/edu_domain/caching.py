"""The cache port and the read-through seam the use cases call.

Use cases ask a `ReadCache` for a value by key and give it a loader; with `NoReadCache`
(the default) the loader always runs. Invalidation is not the use cases' business: the
unit of work tells a `CommitListener` what changed after each commit.

Adapters live in edu_infra: `edu_infra.memory.cache.InMemoryCache`,
`edu_infra.redis.RedisCache`, and the read-through `edu_infra.caching.ReadThroughCache`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from attrs import field, frozen

T = TypeVar("T")

#: Upper bounds (milliseconds) of the latency histogram buckets in `CacheStats`.
LATENCY_BUCKETS_MS: tuple[float, ...] = (0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0)


@frozen(kw_only=True)
class CacheStats:
    """A snapshot of a cache adapter's counters since it was created.

    `errors` are backend failures (timeouts, refused connections, server errors);
    `short_circuited` are operations skipped without contacting the backend because the
    circuit breaker was open; `decode_errors` are stored values that were not valid JSON
    (served as misses and deleted). `latency_buckets[i]` counts backend round trips that took
    at most `LATENCY_BUCKETS_MS[i]` ms; the last entry counts the slower ones.
    """

    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    errors: int = 0
    decode_errors: int = 0
    short_circuited: int = 0
    operations: int = 0
    latency_total_ms: float = 0.0
    latency_max_ms: float = 0.0
    latency_buckets: tuple[int, ...] = field(default=(0,) * (len(LATENCY_BUCKETS_MS) + 1))

    @property
    def latency_avg_ms(self) -> float:
        return self.latency_total_ms / self.operations if self.operations else 0.0

    @property
    def hit_ratio(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class Cache(Protocol):
    """A key-value cache of JSON-compatible values. Adapters must fail open.

    Failing open means: a backend outage never raises. `get` reports a miss, writes report
    False/0, `increment` None, `health_check` False. Expiry is in seconds (fractions allowed);
    None stores without expiry. Keys are given without the adapter's namespace prefix.
    """

    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any, expire: float | None = None) -> bool: ...

    async def add(self, key: str, value: Any, expire: float | None = None) -> bool | None:
        """Store only if absent: True stored, False present already, None backend failed."""
        ...

    async def delete(self, key: str) -> int: ...

    async def delete_pattern(self, pattern: str) -> int:
        """Delete every key matching a Redis glob (`*`, `?`, `[a-z]`, `[^x]`, `\\x`)."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def increment(self, key: str, amount: int = 1, expire: float | None = None) -> int | None:
        """Add to an integer counter (absent counts as 0); `expire` (re)sets its TTL."""
        ...

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]: ...

    async def try_get_many(self, keys: Sequence[str]) -> list[Any | None] | None:
        """Like `get_many`, but None when the backend could not answer.

        For callers that must not confuse "absent" with "unknown" (generation counters).
        """
        ...

    async def set_many(self, items: Mapping[str, Any], expire: float | None = None) -> bool: ...

    async def get_versioned(
        self,
        generation_keys: Sequence[str],
        base: str,
        generation_ttl: float | None = None,
    ) -> tuple[list[Any | None], Any | None] | None:
        """The backend's epoch, the generations under `generation_keys`, and the value of
        the key they select: `([epoch, g1, g2, ...], value)`.

        That key is `base@<epoch>.<g1>.<g2>...`. A generation is a string; a generation key
        that holds none (absent, deleted, evicted, expired, corrupt) is given a fresh random
        one first (expiring after `generation_ttl` seconds, None: never), atomically, so that
        concurrent readers agree on it and a generation is never used twice: a value stored
        under a generation that was lost is never selected again. Only that case writes.
        The epoch names the backend's dataset history and must change whenever the backend
        may have lost acknowledged writes (a restart from a snapshot, a failover), so that
        values stored before are never selected again. One backend round trip on Redis (a
        cached read's hit path); None when the backend could not answer or cannot name its
        epoch. A generation returned as anything but a string selects no value.
        """
        ...

    async def health_check(self) -> bool: ...

    def stats(self) -> CacheStats: ...


@frozen
class CacheKey:
    """A cached read: its namespace ("user", "content_slug", "stats"), tenant and key parts."""

    namespace: str
    tenant: UUID
    parts: tuple[str, ...] = ()


class ReadCache(Protocol):
    """Read-through caching for use cases."""

    async def fetch(self, key: CacheKey, load: Callable[[], Awaitable[T]], type_: Any) -> T:
        """The cached value of `key` decoded as `type_`, or `load()`'s result (then cached)."""
        ...


class NoReadCache:
    """Caching switched off (`EDU_CACHE_ENABLED=false`): every read goes to the loader.

    It accepts what `ReadThroughCache` accepts (`expire`, invalidations), so code written for
    caching, such as `cache_result`, keeps working when caching is switched off.
    """

    async def fetch(
        self,
        key: CacheKey,
        load: Callable[[], Awaitable[T]],
        type_: Any,
        *,
        expire: float | None = None,
    ) -> T:
        return await load()

    async def invalidate(self, key: CacheKey) -> bool:
        """Nothing is cached, so nothing can be stale: always True."""
        return True

    async def invalidate_namespace(self, tenant: UUID, namespace: str) -> bool:
        """Nothing is cached, so nothing can be stale: always True."""
        return True
