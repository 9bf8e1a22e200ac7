"""Helpers of the pool tests (the one-connection pool is `conftest.one_conn`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from edu_infra.sqlalchemy import Database
from edu_infra.sqlalchemy.pool import FairQueuePool


def pool_of(database: Database) -> FairQueuePool:
    pool = database.engine.sync_engine.pool
    assert isinstance(pool, FairQueuePool)
    return pool


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(2_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


__all__ = ["pool_of", "until"]
