"""A span per cache operation (`edu.cache.<op>`); keys stay out (they may hold arguments)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from edu_domain.caching import Cache, CacheStats
from edu_infra.telemetry.core import Telemetry, mark_error

T = TypeVar("T")


class TracedCache:
    """`Cache` around another; `stats()` and anything else pass straight through."""

    def __init__(self, inner: Cache, telemetry: Telemetry) -> None:
        self.inner = inner
        self.telemetry = telemetry

    async def _op(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        with self.telemetry.tracer.start_as_current_span(
            f"edu.cache.{name}", record_exception=False, set_status_on_exception=False
        ) as span:
            span.set_attribute("edu.cache.operation", name)
            try:
                result = await call()
            except Exception as error:
                mark_error(span, error)
                raise
            if name == "get_versioned":
                found: Any = result
                span.set_attribute("edu.cache.hit", found is not None and found[1] is not None)
            return result

    async def get(self, key: str) -> Any | None:
        return await self._op("get", lambda: self.inner.get(key))

    async def set(self, key: str, value: Any, expire: float | None = None) -> bool:
        return await self._op("set", lambda: self.inner.set(key, value, expire))

    async def add(self, key: str, value: Any, expire: float | None = None) -> bool | None:
        return await self._op("add", lambda: self.inner.add(key, value, expire))

    async def delete(self, key: str) -> int:
        return await self._op("delete", lambda: self.inner.delete(key))

    async def delete_pattern(self, pattern: str) -> int:
        return await self._op("delete_pattern", lambda: self.inner.delete_pattern(pattern))

    async def exists(self, key: str) -> bool:
        return await self._op("exists", lambda: self.inner.exists(key))

    async def increment(self, key: str, amount: int = 1, expire: float | None = None) -> int | None:
        return await self._op("increment", lambda: self.inner.increment(key, amount, expire))

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        return await self._op("get_many", lambda: self.inner.get_many(keys))

    async def try_get_many(self, keys: Sequence[str]) -> list[Any | None] | None:
        return await self._op("try_get_many", lambda: self.inner.try_get_many(keys))

    async def set_many(self, items: Mapping[str, Any], expire: float | None = None) -> bool:
        return await self._op("set_many", lambda: self.inner.set_many(items, expire))

    async def get_versioned(
        self,
        generation_keys: Sequence[str],
        base: str,
        generation_ttl: float | None = None,
    ) -> tuple[list[Any | None], Any | None] | None:
        return await self._op(
            "get_versioned",
            lambda: self.inner.get_versioned(generation_keys, base, generation_ttl),
        )

    async def health_check(self) -> bool:
        return await self._op("health_check", self.inner.health_check)

    def stats(self) -> CacheStats:
        return self.inner.stats()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
