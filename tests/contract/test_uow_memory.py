"""The memory adapter alone: commit-time re-checks and wiring a database cannot show.

On PostgreSQL the interleavings below block on row and index locks (a single test task would
wait for itself), so they are not in the shared contract; the memory adapter, which never
blocks, must catch them at commit instead. (Deleting stale or detached objects, failing
publishers and listeners, and bad factory arguments are in the shared contract,
`edu_infra.testing.uow_parity` / `uow_arguments`.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC

import pytest

from edu_domain.errors import AlreadyExists, ConcurrencyConflict, NotFound, ValidationError
from edu_domain.model import LoginSession, User
from edu_infra.memory import (
    InMemoryStore,
    InMemoryUnitOfWorkFactory,
)
from edu_infra.testing.harness import (
    Harness,
    memory_harness,
    new_content,
    new_org,
    new_session,
    new_user,
)


@pytest.fixture
async def memory() -> AsyncIterator[Harness]:
    async with memory_harness() as harness:
        yield harness


async def test_commit_rechecks_uniqueness_against_later_commits(memory: Harness) -> None:
    org = await memory.make_org()
    async with memory.uow(org) as slow:
        mine = new_user(org, email="race@example.org")
        await slow.add(mine)
        await memory.make_user(org, email="race@example.org")
        with pytest.raises(AlreadyExists):
            await slow.commit()
        assert await slow.get(User, mine.id) is None
    async with memory.uow(org) as uow:
        assert await uow.count(User) == 1


async def test_commit_rechecks_references_against_later_commits(memory: Harness) -> None:
    org = await memory.make_org()
    author = await memory.make_user(org)
    async with memory.uow(org) as slow:
        await slow.add(new_content(org, author))
        async with memory.uow(org) as fast:
            await fast.delete(await fast.require(User, author.id), hard=True)
            await fast.commit()
        with pytest.raises(NotFound):
            await slow.commit()


async def test_commit_cascades_to_children_committed_after_the_delete(memory: Harness) -> None:
    org = await memory.make_org()
    user = await memory.make_user(org)
    async with memory.uow(org) as slow:
        await slow.delete(await slow.require(User, user.id), hard=True)
        await memory.make_session(user)
        await slow.commit()
    async with memory.uow(org) as uow:
        assert await uow.count(LoginSession, include_deleted=True) == 0


async def test_commit_restricts_when_content_was_committed_after_the_delete(
    memory: Harness,
) -> None:
    org = await memory.make_org()
    author = await memory.make_user(org)
    async with memory.uow(org) as slow:
        await slow.delete(await slow.require(User, author.id), hard=True)
        await memory.make_content(org, author)
        with pytest.raises(ValidationError):
            await slow.commit()
    async with memory.uow(org) as uow:
        assert await uow.get(User, author.id) is not None


async def test_flushed_but_uncommitted_changes_conflict_at_commit(memory: Harness) -> None:
    org = await memory.make_org()
    user = await memory.make_user(org)
    async with memory.uow(org) as first, memory.uow(org) as second:
        (await first.require(User, user.id)).rename("First")
        (await second.require(User, user.id)).rename("Second")
        await second.flush()
        await first.commit()
        with pytest.raises(ConcurrencyConflict):
            await second.commit()
    async with memory.uow(org) as uow:
        assert (await uow.require(User, user.id)).full_name == "First"


async def test_factories_sharing_a_store_share_committed_rows() -> None:
    store = InMemoryStore()
    one, two = InMemoryUnitOfWorkFactory(store), InMemoryUnitOfWorkFactory(store)
    org = new_org()
    user = new_user(org)
    async with one.unscoped() as uow:
        await uow.add_all([org, user])
        await uow.commit()
    async with two.unscoped() as uow:
        assert await uow.get(User, user.id) is not None
    assert len(store) == 2
    store.clear()
    assert len(store) == 0


async def test_the_default_clock_stamps_utc_now() -> None:
    org = new_org()
    async with InMemoryUnitOfWorkFactory().unscoped() as uow:
        await uow.add(org)
    assert org.created_at is not None
    assert org.created_at.tzinfo is UTC


async def test_a_session_added_for_a_user_of_another_store_is_not_found(
    memory: Harness,
) -> None:
    org = await memory.make_org()
    stranger = new_user(org)
    async with memory.uow(org) as uow:
        with pytest.raises(NotFound):
            await uow.add(new_session(stranger, memory.clock))
