"""Races on PostgreSQL: real concurrency over a pool of ten connections.

Every outcome is counted exactly: one winner per unique key, every update lands or is a
ConcurrencyConflict, no failed login is lost, a draft is published once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from edu_domain.errors import (
    AccountLocked,
    AlreadyExists,
    AuthenticationFailed,
    ConcurrencyConflict,
    InvalidState,
)
from edu_domain.model import ContentStatus, User, UserRole
from edu_domain.model.events import ContentPublished, UserLockedOut
from edu_domain.services import NewContent, NewUser, Scope, SecurityPolicy
from tests.reliability.conftest import Stack, postgres_stack
from tests.sql_harness import PostgresDatabase

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"
T = TypeVar("T")


@pytest.fixture
async def stack(pg: PostgresDatabase) -> AsyncIterator[Stack]:
    async with postgres_stack(pool_size=10, max_overflow=0, pool_timeout=60) as running:
        yield running


async def outcomes(calls: Iterable[Awaitable[T]]) -> list[T | BaseException]:
    """Run every call at once; each result is its value or the exception it raised."""
    return await asyncio.gather(*calls, return_exceptions=True)


def kinds(results: list[Any]) -> Counter[str]:
    return Counter("ok" if not isinstance(r, BaseException) else type(r).__name__ for r in results)


def _user(email: str, username: str, **fields: Any) -> NewUser:
    return NewUser(email=email, username=username, password=PASSWORD, **fields)


async def test_one_email_registered_100_times_at_once_in_one_organization(stack: Stack) -> None:
    org = await stack.org()
    scope = Scope.system(org.id)
    results = await outcomes(
        [
            stack.core.users.register(scope, _user("same@example.org", f"user-{i}"))
            for i in range(100)
        ]
    )
    assert kinds(results) == {"ok": 1, "AlreadyExists": 99}, kinds(results)
    assert {r.field for r in results if isinstance(r, AlreadyExists)} == {"email"}
    async with stack.factory.unscoped() as uow:
        assert await uow.count(User) == 1


async def test_one_email_registered_at_once_in_100_organizations(stack: Stack) -> None:
    orgs = [await stack.org(f"School {i}") for i in range(100)]
    results = await outcomes(
        [
            stack.core.users.register(Scope.system(org.id), _user("same@example.org", "same"))
            for org in orgs
        ]
    )
    assert kinds(results) == {"ok": 100}, [r for r in results if isinstance(r, BaseException)]
    async with stack.factory.unscoped() as uow:
        assert await uow.count(User) == 100


async def _target(stack: Stack) -> tuple[Scope, User]:
    org = await stack.org()
    account = await stack.core.users.register(
        Scope.system(org.id), _user("t@example.org", "target")
    )
    await stack.core.users.update(Scope.system(org.id), account.user.id, {"full_name": "v2"})
    return Scope.system(org.id), await stack.core.users.get(Scope.system(org.id), account.user.id)


async def test_50_updates_from_one_read_version_exactly_one_lands(stack: Stack) -> None:
    scope, user = await _target(stack)
    start = user.version
    assert start == 2  # inserted (1), renamed once (2): counted, not assumed
    results = await outcomes(
        [
            stack.core.users.update(
                scope, user.id, {"full_name": f"writer {i}"}, expected_version=start
            )
            for i in range(50)
        ]
    )
    assert kinds(results) == {"ok": 1, "ConcurrencyConflict": 49}, kinds(results)
    final = await stack.core.users.get(scope, user.id)
    (winner,) = [r for r in results if isinstance(r, User)]
    assert final.version == start + 1
    assert final.full_name == winner.full_name


async def test_50_read_then_update_cycles_each_land_or_conflict_and_none_is_lost(
    stack: Stack,
) -> None:
    scope, user = await _target(stack)
    start = user.version

    async def read_then_update(i: int) -> User:
        seen = await stack.core.users.get(scope, user.id)
        return await stack.core.users.update(
            scope, user.id, {"full_name": f"writer {i}"}, expected_version=seen.version
        )

    results = await outcomes([read_then_update(i) for i in range(50)])
    counted = kinds(results)
    assert set(counted) <= {"ok", "ConcurrencyConflict"}, counted
    landed = [r for r in results if isinstance(r, User)]
    assert sorted(u.version for u in landed) == list(range(start + 1, start + 1 + len(landed)))
    final = await stack.core.users.get(scope, user.id)
    assert final.version == start + len(landed)
    assert final.full_name == max(landed, key=lambda u: u.version).full_name


async def test_50_blind_updates_each_land_or_conflict_and_the_version_counts_them(
    stack: Stack,
) -> None:
    scope, user = await _target(stack)
    start = user.version
    results = await outcomes(
        [stack.core.users.update(scope, user.id, {"full_name": f"blind {i}"}) for i in range(50)]
    )
    counted = kinds(results)
    assert set(counted) <= {"ok", "ConcurrencyConflict"}, counted
    # a conflict means another update committed first: at least one always lands
    landed = [r for r in results if isinstance(r, User)]
    assert len(landed) == counted["ok"] >= 1, counted
    assert sorted(u.version for u in landed) == list(range(start + 1, start + 1 + len(landed)))
    final = await stack.core.users.get(scope, user.id)
    assert final.version == start + counted["ok"]
    assert final.full_name == max(landed, key=lambda u: u.version).full_name


async def _verified_user(stack: Stack, policy: SecurityPolicy) -> tuple[Scope, User]:
    org = await stack.org()
    scope = Scope.system(org.id)
    account = await stack.core.users.register(
        scope, _user("locked@example.org", "locked", email_verified=True, status="active")
    )
    return scope, account.user


async def test_30_concurrent_wrong_passwords_are_30_failures(pg: PostgresDatabase) -> None:
    policy = SecurityPolicy(max_failed_logins=1_000, lockout=timedelta(minutes=5))
    async with postgres_stack(policy, pool_size=10, max_overflow=0) as stack:
        scope, user = await _verified_user(stack, policy)
        results = await outcomes(
            [stack.core.auth.authenticate(scope, "locked", "wrong password") for _ in range(30)]
        )
        assert kinds(results) == {"AuthenticationFailed": 30}, kinds(results)
        final = await stack.core.users.get(scope, user.id)
        assert final.failed_login_count == 30
        assert final.locked_until is None


async def test_concurrent_wrong_passwords_lock_the_account_exactly_once(
    pg: PostgresDatabase,
) -> None:
    policy = SecurityPolicy(max_failed_logins=5, lockout=timedelta(minutes=5))
    async with postgres_stack(policy, pool_size=10, max_overflow=0) as stack:
        scope, user = await _verified_user(stack, policy)
        results = await outcomes(
            [stack.core.auth.authenticate(scope, "locked", "wrong password") for _ in range(30)]
        )
        # four failures count up, the fifth locks; every later one finds the lock
        assert kinds(results) == {"AuthenticationFailed": 4, "AccountLocked": 26}, kinds(results)
        final = await stack.core.users.get(scope, user.id)
        assert final.locked_until == stack.clock.now() + policy.lockout
        assert final.failed_login_count == 0
        assert len(stack.events.of_type(UserLockedOut)) == 1
        with pytest.raises(AccountLocked):
            await stack.core.auth.authenticate(scope, "locked", PASSWORD)
        assert isinstance(results[0], (AccountLocked, AuthenticationFailed))


async def test_a_draft_published_20_times_at_once_is_published_once(stack: Stack) -> None:
    org = await stack.org()
    scope = Scope.system(org.id)
    teacher = await stack.core.users.register(
        scope, _user("t@example.org", "teacher", role=UserRole.TEACHER)
    )
    draft = await stack.core.content.create_draft(
        Scope(org.id, teacher.user.id), NewContent(title="Fractions", body="Halves and thirds.")
    )
    stack.events.events.clear()
    results = await outcomes([stack.core.content.publish(scope, draft.id) for _ in range(20)])
    counted = kinds(results)
    assert counted["ok"] == 1, counted
    assert set(counted) <= {"ok", "InvalidState", "ConcurrencyConflict"}, counted
    assert all(
        isinstance(r, (InvalidState, ConcurrencyConflict))
        for r in results
        if isinstance(r, BaseException)
    )
    published = stack.events.of_type(ContentPublished)
    assert len(published) == 1
    final = await stack.core.content.get(scope, draft.id)
    assert final.status is ContentStatus.PUBLISHED
    assert final.version == draft.version + 1


async def test_30_concurrent_correct_logins_all_open_a_session(pg: PostgresDatabase) -> None:
    policy = SecurityPolicy(max_failed_logins=5)
    async with postgres_stack(policy, pool_size=10, max_overflow=0) as stack:
        scope, _ = await _verified_user(stack, policy)
        results = await outcomes(
            [stack.core.auth.authenticate(scope, "locked", PASSWORD) for _ in range(30)]
        )
        assert kinds(results) == {"ok": 30}, kinds(results)
        assert await stack.core.auth.count_active_sessions(scope) == 30
