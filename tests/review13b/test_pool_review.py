"""FairQueuePool and the greenlet-free checkout under cancellation (review 13b).

Order and counts are asserted, never timing: each test waits until the pool counts its
waiters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

import pytest

from edu_domain.model import User
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.pool import FairQueuePool, checkin, checkout
from tests.sql_harness import RLS_KEY, PostgresDatabase


@pytest.fixture
async def one_conn(pg: PostgresDatabase) -> AsyncIterator[Database]:
    database = Database(
        DatabaseSettings(
            url=pg.app_url, pool_size=1, max_overflow=0, pool_timeout=5, rls_key=RLS_KEY
        )
    )
    yield database
    await database.dispose()


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


async def test_the_last_waiter_cancelled_as_it_is_handed_the_connection_returns_it(
    one_conn: Database,
) -> None:
    engine = one_conn.engine
    pool = pool_of(one_conn)
    conn = await checkout(engine)
    waiter = asyncio.create_task(checkout(engine))
    await until(lambda: pool.waiting == 1)
    await checkin(conn, clean=False)  # handed to the waiter, which has not run yet
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.waiting == 0
    assert pool.checkedout() == 0  # the connection is back, nobody holds it
    assert pool.checkedin() == 1


async def test_a_unit_of_work_cancelled_as_it_is_served_leaves_the_pool_usable(
    one_conn: Database,
) -> None:
    factory = SqlUnitOfWorkFactory(one_conn)
    pool = pool_of(one_conn)
    holder = factory(tenant=uuid4())
    await holder.get(User, uuid4())

    async def unit() -> None:
        async with factory(tenant=uuid4()) as uow:
            await uow.get(User, uuid4())

    task = asyncio.create_task(unit())
    await until(lambda: pool.waiting == 1)
    await holder.close()  # hands the connection to the waiting unit of work
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.checkedout() == 0
