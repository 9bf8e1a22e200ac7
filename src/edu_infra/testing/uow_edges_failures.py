"""Edges of a write that fails in the middle: what the caller's entities and the unit of
work can still do afterwards, and that nothing half-written lands.

From a review of the SQL adapter redesign (issue 12); every adapter shares these.
"""

from __future__ import annotations

import pytest

from edu_domain.errors import DomainError, ValidationError
from edu_domain.model import EducationalContent, User
from edu_infra.testing.assertions import no_sql
from edu_infra.testing.harness import Harness, new_content, new_user


class FailureEdgesContract:
    async def test_a_failed_hard_delete_leaves_the_entity_usable(self, harness: Harness) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        await harness.make_content(org, author)
        async with harness.uow(org) as uow:
            got = await uow.require(User, author.id)
            with pytest.raises(ValidationError):
                await uow.delete(got, hard=True)
            assert (got.version, got.deleted_at) == (1, None)
            await uow.delete(got)
            await uow.commit()
        assert got.is_deleted and got.version == 2

    async def test_a_change_flushed_by_a_failed_write_does_not_make_the_entity_stale(
        self, harness: Harness
    ) -> None:
        """The failed write rolled the change back: nobody changed the row concurrently, so the
        caller's entity must still be writable (had it kept the version of the rolled-back
        flush, every later write of it would be a ConcurrencyConflict)."""
        org = await harness.make_org()
        author = await harness.make_user(org)
        await harness.make_content(org, author)
        async with harness.uow(org) as uow:
            got = await uow.require(User, author.id)
            got.rename("Kept")
            with pytest.raises(ValidationError):
                await uow.delete(got, hard=True)  # flushes the rename first, then fails
            assert got.full_name == "Kept"
            await uow.delete(got)
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(User, author.id, include_deleted=True)).is_deleted

    async def test_add_all_failing_in_its_second_class_is_all_or_nothing(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        users = [new_user(org) for _ in range(2)]
        orphan = new_content(org, new_user(org))  # its author was never added
        async with harness.uow(org) as uow:
            with pytest.raises(DomainError) as caught:
                await uow.add_all([*users, orphan])
            no_sql(caught.value)
            assert [u.full_name for u in users] == [None, None]
            await uow.add_all(users)
            await uow.add(new_content(org, author))
            await uow.commit()
        assert {c.id for c in harness.listener.changes} == {users[0].id, users[1].id} | {
            c.id for c in harness.listener.changes if c.entity is EducationalContent
        }
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 3
            assert await uow.get(EducationalContent, orphan.id) is None

    async def test_a_change_after_a_failed_write_is_not_written_silently(
        self, harness: Harness
    ) -> None:
        """After a failed write the handed-out entities are detached everywhere: a change to
        them is not written by a later commit (on every adapter alike)."""
        org = await harness.make_org()
        user = await harness.make_user(org, email="one@example.org")
        await harness.make_user(org, email="two@example.org")
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            with pytest.raises(DomainError):
                await uow.add(new_user(org, email="two@example.org"))
            got.rename("After failure")
            await uow.commit()
            again = await uow.require(User, user.id)
            assert again is not got
            assert again.full_name is None

    async def test_entities_added_before_a_failed_write_can_be_added_again(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        taken = await harness.make_user(org)
        single, bulk = new_user(org), [new_user(org), new_user(org)]
        async with harness.uow(org) as uow:
            await uow.add(single)
            await uow.add_all(bulk)
            with pytest.raises(DomainError):
                await uow.add(new_user(org, email=taken.email))
            await uow.add(single)
            await uow.add_all(bulk)
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 4
