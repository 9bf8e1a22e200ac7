"""With EDU_CACHE_ENABLED=false the old API still works: every call passes through."""

from __future__ import annotations

from uuid import UUID

from edu_domain.caching import CacheKey, NoReadCache
from edu_infra.caching import cache_result
from edu_infra.container import build_container, shutdown

T1 = UUID("00000000-0000-7000-8000-000000000001")


async def test_cache_result_and_invalidate_namespace_pass_through_when_caching_is_off() -> None:
    container = build_container({"EDU_DATABASE_URL": "memory://", "EDU_CACHE_ENABLED": "false"})
    try:
        reads = container.reads()
        assert isinstance(reads, NoReadCache)
        calls: list[str] = []

        @cache_result(reads, prefix="stats", expire=600, ignore=("label",))
        async def total(tenant: UUID, period: str, label: str = "") -> int:
            calls.append(period)
            return len(calls)

        assert await total(T1, "week") == 1
        assert await total(T1, "week") == 2  # not cached: the function ran again
        assert await reads.invalidate_namespace(T1, "stats") is True
        assert await reads.invalidate(CacheKey("stats", T1)) is True
        assert await total(T1, period="month") == 3
        assert calls == ["week", "week", "month"]
    finally:
        await shutdown(container)
