"""The cache port and the read-through seam the use cases call.

Use cases ask a `ReadCache` for a value by key and give it a loader; with `NoReadCache`
(the default) the loader always runs. Invalidation is not the use cases' business: the
unit of work tells a `CommitListener` what changed after each commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from uuid import UUID

from attrs import frozen

T = TypeVar("T")


class Cache(Protocol):
    """A key-value cache. Values are JSON-compatible; adapters must fail open."""

    async def get(self, key: str) -> Any | None: ...

    async def set(self, key: str, value: Any, expire: float | None = None) -> bool: ...

    async def delete(self, key: str) -> int: ...

    async def delete_pattern(self, pattern: str) -> int: ...

    async def exists(self, key: str) -> bool: ...

    async def increment(self, key: str, amount: int = 1) -> int | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]: ...

    async def set_many(self, items: Mapping[str, Any], expire: float | None = None) -> bool: ...

    async def health_check(self) -> bool: ...


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
    """Caching switched off: every read goes to the unit of work."""

    async def fetch(self, key: CacheKey, load: Callable[[], Awaitable[T]], type_: Any) -> T:
        return await load()
