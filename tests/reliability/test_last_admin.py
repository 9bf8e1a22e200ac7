"""An organization keeps an active administrator under real concurrency.

Two administrators demoting (or suspending, or deleting) each other at the same time must
not both succeed: on PostgreSQL each change takes the organization's row lock first and
counts the other administrators under it; on SQLite the change is flushed (the write lock)
before the count. The cached actor follows a demotion (the production container's cache).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from edu_domain.errors import InvalidState, PermissionDenied, RetryableError
from edu_domain.model import Organization, User, UserRole, UserStatus
from edu_domain.query import Query
from edu_domain.services import EduCore, NewUser, Scope
from tests.reliability.conftest import STACKS, Stack, lock_waiters, postgres_stack
from tests.sql_harness import PostgresDatabase

PASSWORD = "correct horse battery"
#: What the loser of a race may see: the winner demoted it (it acts no more), the count
#: under the lock found no other administrator, or (SQLite) the write lock was busy.
LOSING = (PermissionDenied, InvalidState, RetryableError)
Change = Callable[[EduCore, Scope, Any], Awaitable[Any]]
_ACTIVE_ADMINS = Query.where(role=UserRole.ADMIN, status=UserStatus.ACTIVE)
CHANGES: dict[str, Change] = {
    "demote": lambda c, s, other: c.users.update(s, other, {"role": "teacher"}),
    "suspend": lambda c, s, other: c.users.update(s, other, {"status": "suspended"}),
    "delete": lambda c, s, other: c.users.delete(s, other),
}


async def two_admins(stack: Stack) -> tuple[Organization, Scope, Scope]:
    core = stack.core
    org, first = await core.organizations.bootstrap(
        "Race School", NewUser(email="a@race.org", username="first", password=PASSWORD)
    )
    one = Scope(org.id, first.user.id)
    second = await core.users.register(
        one,
        NewUser(
            email="b@race.org",
            username="second",
            password=PASSWORD,
            role=UserRole.ADMIN,
            status=UserStatus.ACTIVE,
            email_verified=True,
        ),
    )
    return org, one, Scope(org.id, second.user.id)


async def active_admins(stack: Stack, org: Organization) -> list[User]:
    async with stack.factory(tenant=org.id) as uow:
        page = await uow.find(User, _ACTIVE_ADMINS)
    return list(page.items)


async def reinstate(stack: Stack, org: Organization, winner: Scope, loser: Scope) -> None:
    """The winner makes the loser an active administrator again (restored if deleted)."""
    assert loser.actor_id is not None
    await stack.core.users.restore(winner, loser.actor_id)
    await stack.core.users.update(winner, loser.actor_id, {"role": "admin", "status": "active"})


async def race(stack: Stack, org: Organization, one: Scope, two: Scope, change: str) -> Scope:
    """Both change each other at once; exactly one lands. Returns the winner's scope."""
    act = CHANGES[change]
    assert one.actor_id is not None and two.actor_id is not None
    results = await asyncio.gather(
        act(stack.core, one, two.actor_id),
        act(stack.core, two, one.actor_id),
        return_exceptions=True,
    )
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1, results
    assert isinstance(failed[0], LOSING), results
    admins = await active_admins(stack, org)
    assert len(admins) == 1, admins
    return one if admins[0].id == one.actor_id else two


@pytest.mark.parametrize("name", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_two_admins_changing_each_other_at_once_leave_one(name: str) -> None:
    if name == "postgres":
        from tests.reliability.conftest import reliability_database

        await reliability_database()  # skips loudly (or fails) without PostgreSQL
    async with STACKS[name]() as stack:
        org, one, two = await two_admins(stack)
        for round_ in range(2 * len(CHANGES)):  # each change twice
            change = list(CHANGES)[round_ % len(CHANGES)]
            winner = await race(stack, org, one, two, change)
            loser = two if winner is one else one
            await reinstate(stack, org, winner, loser)
            assert len(await active_admins(stack, org)) == 2


@pytest.mark.postgres
async def test_admin_changes_wait_for_the_organization_lock(pg: PostgresDatabase) -> None:
    """Proof of the lock: both changes queue behind a held organization row, then run one
    after the other, and the second sees the first."""
    async with postgres_stack(pool_size=4, max_overflow=0) as stack:
        org, one, two = await two_admins(stack)
        assert one.actor_id is not None and two.actor_id is not None
        async with stack.factory(tenant=org.id) as holder:
            assert await holder.get(Organization, org.id, lock=True) is not None
            tasks = [
                asyncio.create_task(stack.core.users.update(one, two.actor_id, {"role": "staff"})),
                asyncio.create_task(stack.core.users.update(two, one.actor_id, {"role": "staff"})),
            ]
            assert await lock_waiters(pg, until=2) == 2  # polled, bounded at 10 s
            assert not any(task.done() for task in tasks)
            await holder.rollback()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert sum(isinstance(r, User) for r in results) == 1, results
        assert sum(isinstance(r, PermissionDenied) for r in results) == 1, results
        assert len(await active_admins(stack, org)) == 1


async def test_a_demoted_admin_loses_the_rights_the_cache_held() -> None:
    """The actor of cached reads (users.get, statistics) comes through the cache: a demotion
    invalidates it after its commit like any change of that user."""
    async with STACKS["container"]() as stack:
        _, one, two = await two_admins(stack)
        assert one.actor_id is not None
        await stack.core.users.get(one, one.actor_id)  # caches the actor's own entry
        await stack.core.users.statistics(one)
        await stack.core.users.update(two, one.actor_id, {"role": "teacher"})
        with pytest.raises(PermissionDenied):
            await stack.core.users.statistics(one)
