"""A Redis that refuses scripts (ACL without @scripting) still serves cached reads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from edu_infra.redis import RedisCache


@pytest.fixture
async def no_scripting(redis_url: str) -> AsyncIterator[RedisCache]:
    admin = Redis.from_url(redis_url)
    user, password = f"edu_noscript_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    await admin.execute_command(
        "ACL", "SETUSER", user, "on", f">{password}", "~*", "+@all", "-@scripting"
    )
    url = make_url(redis_url).set(username=user, password=password)
    cache = RedisCache.from_url(
        url.render_as_string(hide_password=False),
        connect_timeout_ms=1000,
        command_timeout_ms=1000,
    )
    try:
        yield cache
    finally:
        await cache.aclose()
        await admin.execute_command("ACL", "DELUSER", user)
        await admin.aclose()


async def test_versioned_reads_fall_back_to_plain_reads_and_keep_the_breaker_closed(
    no_scripting: RedisCache,
) -> None:
    cache = no_scripting
    tag = "{" + str(uuid.uuid4()) + "}"
    gens, base = [f"{tag}:g1", f"{tag}:g2"], f"{tag}:item"
    epoch = (await cache.client.info("replication"))["master_replid"][:16]
    await cache.set(gens[0], "a")
    await cache.set(f"{base}@{epoch}.a.0", {"v": 1})
    for _ in range(5):
        assert await cache.get_versioned(gens, base) == ([epoch, "a", None], {"v": 1})
    assert cache.breaker.allow()
    assert cache.stats().short_circuited == 0
    await cache.client.delete(gens[0], f"{base}@{epoch}.a.0")
