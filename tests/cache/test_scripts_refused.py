"""A Redis that refuses scripts (ACL without @scripting) still serves cached reads; which
errors mean a refusal, and what makes an epoch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import NoPermissionError, ReadOnlyError, ResponseError
from sqlalchemy.engine import make_url

from edu_infra.redis import RedisCache
from edu_infra.redis.scripts import as_text, refuses_scripts, valid_epoch


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
    await cache.set(gens[1], "b")
    await cache.set(f"{base}@{epoch}.a.b", {"v": 1})
    for _ in range(5):
        assert await cache.get_versioned(gens, base) == ([epoch, "a", "b"], {"v": 1})
    assert cache.breaker.allow()
    assert cache.stats().short_circuited == 0
    await cache.client.delete(cache.prefix + gens[1])  # lost: created anew with SET NX
    found = await asyncio.gather(*(cache.get_versioned(gens, base, 100) for _ in range(10)))
    created = {f[0][2] for f in found if f is not None}
    assert len(created) == 1 and None not in created and "b" not in created, found
    assert all(f is not None and f[1] is None for f in found)
    ttl = await cache.client.pttl(cache.prefix + gens[1])
    assert 98_000 < ttl <= 100_000
    await cache.set(gens[1], 7)  # not a string: replaced
    replaced = await cache.get_versioned(gens, base)
    assert replaced is not None and isinstance(replaced[0][2], str)
    assert await cache.get(gens[1]) == replaced[0][2]
    await cache.client.delete(*(cache.prefix + k for k in [*gens, f"{base}@{epoch}.a.b"]))


async def test_the_read_that_finds_out_creates_generations_with_their_ttl(
    no_scripting: RedisCache,
) -> None:
    cache = no_scripting
    tag = "{" + str(uuid.uuid4()) + "}"
    gens, base = [f"{tag}:g1", f"{tag}:g2"], f"{tag}:item"
    found = await cache.get_versioned(gens, base, 100_000)  # the first read: refused, then plain
    assert found is not None and found[1] is None
    for key in gens:
        ttl = await cache.client.pttl(cache.prefix + key)
        assert 99_990_000 < ttl <= 100_000_000, key  # 10 s of slack: never a timing question
    await cache.client.delete(*(cache.prefix + k for k in gens))


@pytest.mark.parametrize(
    "error",
    [
        NoPermissionError("this user has no permissions to run the 'evalsha' command"),
        ResponseError("NOPERM this user has no permissions to run the 'evalsha' command"),
        ResponseError("ERR unknown command 'EVALSHA', with args beginning with: "),
        ResponseError("ERR Script attempted to access a non local key in a cluster node"),
        ResponseError("ERR Lua script attempted to access an undeclared key"),
        ResponseError("ERR This Redis command is not allowed from script: can't run this command"),
    ],
)
def test_errors_that_refuse_our_script(error: ResponseError) -> None:
    assert refuses_scripts(error)


@pytest.mark.parametrize(
    "error",
    [
        ReadOnlyError("You can't write against a read only replica."),
        ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
        ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    ],
)
def test_errors_that_do_not_refuse_our_script(error: ResponseError) -> None:
    assert not refuses_scripts(error)


def test_an_epoch_is_exactly_16_lowercase_hex_digits() -> None:
    assert valid_epoch("0123456789abcdef")
    for bad in ["0123456789abcde", "0123456789abcdef0", "0123456789abcdeg", "X" * 16, ""]:
        assert not valid_epoch(bad), bad


def test_replies_read_as_text_whether_bytes_or_decoded() -> None:
    assert as_text(b"0123456789abcdef") == "0123456789abcdef"
    assert as_text("0123456789abcdef") == "0123456789abcdef"
