"""`uow.get(..., lock=True)`: the read-modify-write the failure counter relies on."""

from __future__ import annotations

import asyncio

import pytest

from edu_domain.model import User
from edu_infra.testing.harness import new_user
from tests.reliability.conftest import STACKS, lock_waiters, postgres_stack
from tests.sql_harness import PostgresDatabase


@pytest.mark.parametrize("name", ["memory", "sqlite"])
async def test_a_locked_get_reads_like_a_plain_get(name: str) -> None:
    async with STACKS[name]() as stack:
        org = await stack.org()
        user = new_user(org)
        async with stack.factory(tenant=org.id) as uow:
            await uow.add(user)
            await uow.commit()
        async with stack.factory(tenant=org.id) as uow:
            locked = await uow.get(User, user.id, lock=True)
            assert locked is not None and locked.username == user.username
        other = await stack.org("Other")
        async with stack.factory(tenant=other.id) as uow:
            assert await uow.get(User, user.id, lock=True) is None


@pytest.mark.postgres
async def test_a_locked_get_waits_for_the_holder_and_sees_its_commit(
    pg: PostgresDatabase,
) -> None:
    async with postgres_stack(pool_size=3) as stack:
        org = await stack.org()
        user = new_user(org)
        async with stack.factory(tenant=org.id) as uow:
            await uow.add(user)
            await uow.commit()
        async with stack.factory(tenant=org.id) as holder:
            held = await holder.get(User, user.id, lock=True)
            assert held is not None

            async def second() -> int:
                async with stack.factory(tenant=org.id) as uow:
                    seen = await uow.get(User, user.id, lock=True)
                    assert seen is not None
                    return seen.failed_login_count

            waiting = asyncio.create_task(second())
            # proof that it waits: its backend is blocked on a lock (bounded at 10 s)
            assert await lock_waiters(pg, until=1) == 1
            assert not waiting.done(), "the second locker did not wait for the first"
            held.failed_login_count += 1
            await holder.commit()
        assert await asyncio.wait_for(waiting, 10) == 1
