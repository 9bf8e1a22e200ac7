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
from uuid import uuid4

import pytest

from edu_domain.errors import (
    AlreadyExists,
    ConcurrencyConflict,
    InvalidState,
    NotFound,
    TenantViolation,
    ValidationError,
)
from edu_domain.model import LoginSession, Organization, User
from edu_domain.query import Query
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


# -- what the errors say (the SQL adapters raise the same types; these are the memory's words)


async def test_not_found_names_the_entity_and_its_id(memory: Harness) -> None:
    org = await memory.make_org()
    never_stored = new_user(org)
    async with memory.uow(org) as uow:
        with pytest.raises(NotFound) as raised:
            await uow.delete(never_stored)
    assert (raised.value.entity, raised.value.key) == ("User", never_stored.id)


async def test_a_conflict_at_commit_names_the_entity_and_its_id(memory: Harness) -> None:
    org = await memory.make_org()
    user = await memory.make_user(org)
    async with memory.uow(org) as first, memory.uow(org) as second:
        (await first.require(User, user.id)).rename("First")
        (await second.require(User, user.id)).rename("Second")
        await second.flush()
        await first.commit()
        with pytest.raises(ConcurrencyConflict) as raised:
            await second.commit()
    assert (raised.value.entity, raised.value.key) == ("User", user.id)


async def test_an_id_taken_meanwhile_is_already_exists_of_the_id(memory: Harness) -> None:
    org = await memory.make_org()
    user = new_user(org)
    async with memory.uow(org) as slow, memory.uow(org) as fast:
        await slow.add(user)
        await fast.add(new_user(org, id=user.id))
        await fast.commit()
        with pytest.raises(AlreadyExists) as raised:
            await slow.commit()
    assert (raised.value.entity, raised.value.field) == ("User", "id")


async def test_a_second_object_for_an_attached_row_is_refused_by_name(memory: Harness) -> None:
    org = await memory.make_org()
    user = await memory.make_user(org)
    async with memory.uow(org) as other:
        copy = await other.require(User, user.id)
    async with memory.uow(org) as uow:
        await uow.require(User, user.id)
        with pytest.raises(InvalidState) as raised:
            await uow.delete(copy)
    assert str(raised.value) == f"another object for User {user.id} is attached"


async def test_moving_a_row_or_changing_its_id_says_what_was_refused(memory: Harness) -> None:
    mine, theirs = await memory.make_org(), await memory.make_org()
    user = await memory.make_user(mine)
    async with memory.factory.unscoped() as uow:
        (await uow.require(User, user.id)).organization_id = theirs.id
        with pytest.raises(TenantViolation) as moved:
            await uow.flush()
    assert str(moved.value) == f"User {user.id} cannot move to another organization"
    async with memory.uow(mine) as uow:
        (await uow.require(User, user.id)).id = uuid4()
        with pytest.raises(ValidationError) as changed:
            await uow.flush()
    assert (changed.value.field, changed.value.message) == (
        "id",
        "the id of a stored entity cannot change",
    )


async def test_stream_ignores_the_querys_page_and_cursor(memory: Harness) -> None:
    org = await memory.make_org()
    users = [await memory.make_user(org) for _ in range(3)]
    async with memory.uow(org) as uow:
        first = await uow.find(User, Query().after(None, limit=1))
        assert first.next_cursor is not None
        for query in (Query().page(2, 1), Query().after(first.next_cursor, limit=1)):
            streamed = [u.id async for u in uow.stream(User, query, batch_size=2)]
            assert sorted(streamed) == sorted(u.id for u in users), query


async def test_a_closed_unit_of_work_and_a_foreign_row_say_what_is_wrong(memory: Harness) -> None:
    mine, theirs = await memory.make_org(), await memory.make_org()
    stranger = new_user(theirs)
    async with memory.uow(mine) as uow:
        with pytest.raises(TenantViolation) as foreign:
            await uow.add(stranger)
    assert str(foreign.value) == f"User {stranger.id} belongs to another organization"
    with pytest.raises(InvalidState) as closed:
        await uow.count(User)
    assert str(closed.value) == "this unit of work is closed"


async def test_adding_an_attached_object_again_is_a_no_op(memory: Harness) -> None:
    org = await memory.make_org()
    first, second = new_user(org), new_user(org)
    async with memory.uow(org) as uow:
        await uow.add(first)
        await uow.add(first)
        await uow.add_all([first, second])
        await uow.commit()
    async with memory.uow(org) as uow:
        assert {u.id for u in await uow.find(User)} == {first.id, second.id}


@pytest.mark.parametrize("when", ["in one batch", "after the first is attached"])
async def test_a_second_object_with_a_taken_id_is_already_exists(
    memory: Harness, when: str
) -> None:
    org = await memory.make_org()
    user = new_user(org)
    twin = new_user(org, id=user.id)
    async with memory.uow(org) as uow:
        if when == "in one batch":
            with pytest.raises(AlreadyExists) as raised:
                await uow.add_all([user, twin])
        else:
            await uow.add(user)
            with pytest.raises(AlreadyExists) as raised:
                await uow.add(twin)
    assert (raised.value.entity, raised.value.field) == ("User", "id")


async def test_a_commit_without_events_publishes_nothing() -> None:
    class Counting:
        calls = 0

        async def publish(self, events: object) -> None:
            self.calls += 1

    publisher = Counting()
    factory = InMemoryUnitOfWorkFactory(publisher=publisher)
    org = new_org()
    async with factory.unscoped() as uow:
        await uow.add(org)
        await uow.commit()
    async with factory(tenant=org.id) as uow:
        (await uow.require(Organization, org.id)).name = "Renamed"
        await uow.commit()
    assert publisher.calls == 0
