"""FairQueuePool and the greenlet-free checkout under cancellation (review 13b).

Order and counts are asserted, never timing: each test waits until the pool counts its
waiters.
"""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from edu_domain.model import User
from edu_infra.sqlalchemy import Database, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.pool import checkin, checkout
from tests.integration.pool_support import pool_of, until


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
