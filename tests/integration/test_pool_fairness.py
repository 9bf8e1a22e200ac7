"""The connection pool serves waiters in arrival order (`edu_infra.sqlalchemy.pool`).

Order is asserted, never timing: each test waits until the pool counts its waiters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from uuid import uuid4

import pytest
from sqlalchemy import exc

from edu_domain.errors import DomainError
from edu_domain.model import User
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.pool import checkin, checkout
from tests.integration.pool_support import pool_of, until
from tests.sql_harness import RLS_KEY, PostgresDatabase


async def test_units_of_work_get_the_connection_in_arrival_order(one_conn: Database) -> None:
    """A task that releases the connection and asks again queues behind the waiters."""
    factory = SqlUnitOfWorkFactory(one_conn)
    pool = pool_of(one_conn)
    served: list[str] = []

    async def unit(name: str, again: Callable[[], Awaitable[None]] | None = None) -> None:
        async with factory(tenant=uuid4()) as uow:
            await uow.get(User, uuid4())  # checks out the connection
            served.append(name)
        if again is not None:
            await again()

    holder = factory(tenant=uuid4())
    await holder.get(User, uuid4())
    waiters = [asyncio.create_task(unit(name)) for name in ("a", "b", "c")]
    await until(lambda: pool.waiting == 3)

    async def release_and_ask_again() -> None:
        await holder.close()
        await unit("holder again")

    await asyncio.gather(release_and_ask_again(), *waiters)
    assert served == ["a", "b", "c", "holder again"]
    assert pool.waiting == 0 and pool.checkedout() == 0


async def test_a_releasing_task_cannot_overtake_through_the_fast_checkout(
    one_conn: Database,
) -> None:
    engine = one_conn.engine
    pool = pool_of(one_conn)
    served: list[str] = []

    async def waiter(name: str) -> None:
        conn = await checkout(engine)
        served.append(name)
        await checkin(conn, clean=False)

    conn = await checkout(engine)
    tasks = [asyncio.create_task(waiter(name)) for name in ("first", "second")]
    await until(lambda: pool.waiting == 2)
    await checkin(conn, clean=False)  # handed to "first", not queued
    assert not pool.idle_ready()
    await waiter("releaser")  # waits behind "second"
    await asyncio.gather(*tasks)
    assert served == ["first", "second", "releaser"]


async def test_a_waiter_that_gives_up_passes_its_place_on(one_conn: Database) -> None:
    engine = one_conn.engine
    pool = pool_of(one_conn)
    served: list[str] = []

    async def waiter(name: str) -> None:
        conn = await checkout(engine)
        served.append(name)
        await checkin(conn, clean=False)

    conn = await checkout(engine)
    quitter = asyncio.create_task(waiter("quitter"))
    patient = asyncio.create_task(waiter("patient"))
    await until(lambda: pool.waiting == 2)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    assert pool.waiting == 1
    await checkin(conn, clean=False)
    await patient
    assert served == ["patient"]
    assert pool.waiting == 0 and pool.checkedout() == 0


async def test_a_cancelled_waiter_already_handed_the_connection_hands_it_on(
    one_conn: Database,
) -> None:
    engine = one_conn.engine
    pool = pool_of(one_conn)
    served: list[str] = []

    async def waiter(name: str) -> None:
        conn = await checkout(engine)
        served.append(name)
        await checkin(conn, clean=False)

    conn = await checkout(engine)
    first = asyncio.create_task(waiter("first"))
    second = asyncio.create_task(waiter("second"))
    await until(lambda: pool.waiting == 2)
    await checkin(conn, clean=False)  # handed to "first", which has not run yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert served == ["second"]
    assert pool.checkedout() == 0


async def test_a_waiter_times_out_with_the_pools_timeout_and_leaves_the_queue(
    pg: PostgresDatabase,
) -> None:
    database = Database(
        DatabaseSettings(
            url=pg.app_url, pool_size=1, max_overflow=0, pool_timeout=0.05, rls_key=RLS_KEY
        )
    )
    try:
        pool = pool_of(database)
        conn = await checkout(database.engine)
        with pytest.raises(exc.TimeoutError):
            await checkout(database.engine)
        assert pool.waiting == 0
        factory = SqlUnitOfWorkFactory(database)
        with pytest.raises(DomainError):  # a unit of work reports it as a domain error
            async with factory(tenant=uuid4()) as uow:
                await uow.get(User, uuid4())
        await checkin(conn, clean=False)
        async with factory(tenant=uuid4()) as uow:  # and the pool still serves
            assert await uow.get(User, uuid4()) is None
    finally:
        await database.dispose()


async def test_the_fast_checkout_skips_a_connection_due_for_reconnecting(
    one_conn: Database,
) -> None:
    """An invalidated idle connection is reconnected through the greenlet bridge."""
    pool = pool_of(one_conn)
    factory = SqlUnitOfWorkFactory(one_conn)
    async with factory(tenant=uuid4()) as uow:
        await uow.get(User, uuid4())
    assert pool.idle_ready()
    conn = await checkout(one_conn.engine)
    record = conn.connection._connection_record
    await checkin(conn, clean=False)  # not vouched for: discarded, its record kept empty
    assert record is not None and record.dbapi_connection is None
    assert not pool.idle_ready()
    async with factory(tenant=uuid4()) as uow:  # reconnects
        assert await uow.get(User, uuid4()) is None
    assert pool.idle_ready()
