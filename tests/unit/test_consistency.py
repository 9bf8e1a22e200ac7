"""Consistency tokens and call chains (`edu_infra.consistency`): what a read-only unit of
work waits for is its own chain's newest commit, never a sibling's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edu_domain.errors import ValidationError
from edu_infra.consistency import (
    ConsistencyToken,
    PrimaryLoads,
    committed,
    current_chain,
    primary_reads,
    primary_required,
    read_your_writes,
)

T = ConsistencyToken


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(0, 2**64 - 1))
def test_a_token_reads_back_from_its_text_and_orders_as_its_position(a: int, b: int) -> None:
    assert T.parse(str(T(a))) == T(a)
    assert (T(a) < T(b)) == (a < b)


@pytest.mark.parametrize("text", ["", "0", "0/", "/0", "g/1", "1/2/3", "123456789/0", " 0/1", 7])
def test_a_malformed_token_is_a_validation_error(text: Any) -> None:
    with pytest.raises(ValidationError, match="consistency_token"):
        T.parse(text)


async def test_a_scope_is_one_chain_for_every_task_inside_it() -> None:
    async def write(position: int) -> None:
        committed(T(position))

    with read_your_writes("0/10") as chain:
        await asyncio.gather(write(30), write(20))
        assert current_chain() is chain
    assert chain.token == T(30)
    assert current_chain() is None


async def test_without_a_scope_each_task_has_its_own_chain_from_what_it_inherited() -> None:
    async def task() -> Any:
        committed(T(5))  # the parent's chain is not this task's: a chain of its own
        return current_chain()

    async def sibling(started: asyncio.Event) -> Any:
        await started.wait()
        return current_chain()

    async def main() -> None:
        committed(T(1))
        parent = current_chain()
        assert parent is not None
        started = asyncio.Event()
        child = asyncio.create_task(task())
        other = asyncio.create_task(sibling(started))
        own = await child
        started.set()
        seen = await other
        assert own is not parent
        assert own.token == T(5)
        assert seen is parent  # the sibling never sees the child's write
        assert parent.token == T(1)
        assert current_chain() is parent

    await asyncio.create_task(main())


async def test_an_unreadable_position_sends_the_chain_to_the_primary() -> None:
    async def main() -> None:
        assert not primary_required()
        committed(None)
        assert primary_required()

    await asyncio.create_task(main())
    with primary_reads():
        assert primary_required()
    assert not primary_required()


async def test_primary_loads_read_the_primary_and_pass_everything_else_on() -> None:
    class Cache:
        size = 3

        async def fetch(self, key: str, load: Any, type_: Any, **options: Any) -> Any:
            return (key, await load(), options)

    async def load() -> bool:
        return primary_required()

    cache = PrimaryLoads(Cache())
    assert await cache.fetch("k", load, bool, expire=5.0) == ("k", True, {"expire": 5.0})
    assert cache.size == 3
    assert not primary_required()


# ------------------------------------------------------------------ settings

PG = "postgresql+asyncpg://edu_app@db/edu"
KEY = "k" * 40


def test_replica_settings_are_read_from_the_environment() -> None:
    from edu_infra.settings import Settings

    settings = Settings.from_mapping(
        {
            "EDU_DATABASE_URL": PG,
            "EDU_RLS_KEY": KEY,
            "EDU_DATABASE_REPLICA_URLS": " postgresql+asyncpg://edu_app:pw@r1/edu ,"
            "postgresql+asyncpg://edu_app@r2:6432/edu,",
            "EDU_DATABASE_REPLICA_POLICY": "LEAST_BUSY",
            "EDU_DATABASE_REPLICA_WAIT_MS": "20",
        }
    )
    assert settings.database_replica_urls == (
        "postgresql+asyncpg://edu_app:pw@r1/edu",
        "postgresql+asyncpg://edu_app@r2:6432/edu",
    )
    assert (settings.database_replica_policy, settings.database_replica_wait) == (
        "least_busy",
        0.02,
    )
    assert (settings.database_replica_max_lag, settings.database_replica_retry) == (5.0, 1.0)
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"EDU_DATABASE_REPLICA_URLS": PG}, "needs a PostgreSQL EDU_DATABASE_URL"),
        (
            {"EDU_DATABASE_URL": PG, "EDU_DATABASE_REPLICA_URLS": "sqlite+aiosqlite:///r.db"},
            "every replica must be a postgresql",
        ),
        (
            {"EDU_DATABASE_URL": PG, "EDU_DATABASE_REPLICA_POLICY": "random"},
            "round_robin or least_busy",
        ),
        (
            {"EDU_DATABASE_URL": PG, "EDU_DATABASE_REPLICA_WAIT_MS": "-1"},
            "EDU_DATABASE_REPLICA_WAIT_MS",
        ),
    ],
)
def test_bad_replica_settings_fail_naming_the_variable(values: dict[str, str], named: str) -> None:
    from edu_infra.settings import ConfigurationError, Settings

    with pytest.raises(ConfigurationError, match=named):
        Settings.from_mapping({"EDU_RLS_KEY": KEY, **values})


def test_read_replicas_need_a_postgresql_primary_and_a_known_policy() -> None:
    from edu_infra.sqlalchemy import Database, DatabaseSettings

    with pytest.raises(ValidationError, match="PostgreSQL primary"):
        Database(DatabaseSettings(url="sqlite+aiosqlite:///x.db", replica_urls=(PG,)))
    with pytest.raises(ValidationError, match="replica_policy"):
        Database(DatabaseSettings(url=PG, rls_key=KEY, replica_urls=(PG,), replica_policy="x"))
