"""Edges of deleting and restoring: what listeners hear of cascades, identity after a hard
delete, detached objects, and a change made just before a delete or restore.

From a review of the SQL adapter redesign (issue 12); every adapter shares these.
"""

from __future__ import annotations

from typing import Any

import pytest

from edu_domain.errors import DomainError
from edu_domain.model import EducationalContent, LoginSession, Organization, User, UserProfile
from edu_domain.ports import Change, ChangeKind
from edu_infra.testing.harness import Harness, new_profile, new_user


def deletes(changes: list[Change]) -> set[tuple[type[Any], Any]]:
    return {(c.entity, c.id) for c in changes if c.kind is ChangeKind.DELETE}


class DeleteEdgesContract:
    # ------------------------------------------------------------ change records of cascades

    async def test_hard_deleting_an_organization_tells_listeners_of_every_row_it_removes(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author)
        session = await harness.make_session(author)
        async with harness.factory.unscoped() as uow:
            await uow.delete(await uow.require(Organization, org.id), hard=True)
            await uow.commit()
        assert deletes(harness.listener.changes) == {
            (Organization, org.id),
            (User, author.id),
            (EducationalContent, content.id),
            (LoginSession, session.id),
        }

    async def test_hard_deleting_a_user_tells_listeners_of_its_unloaded_children(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        session = await harness.make_session(user)
        profile = new_profile(user)
        async with harness.uow(org) as uow:
            await uow.add(profile)
            await uow.commit()
        harness.reset_recorders()
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, user.id), hard=True)
            await uow.commit()
        assert deletes(harness.listener.changes) == {
            (User, user.id),
            (LoginSession, session.id),
            (UserProfile, profile.id),
        }

    async def test_a_row_added_and_hard_deleted_in_one_unit_of_work_is_no_change(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = new_user(org)
        async with harness.uow(org) as uow:
            await uow.add(user)
            await uow.delete(user, hard=True)
            await uow.commit()
        assert harness.listener.changes == []

    async def test_replacing_a_row_in_one_unit_of_work_is_heard_as_a_change_of_it(
        self, harness: Harness
    ) -> None:
        """Hard delete, then insert a new object with the same id: the row existed before and
        after, so listeners must hear something that invalidates it (memory: UPDATE). An INSERT
        tells the cache there was nothing to invalidate (`caching.invalidation._user_rule`)."""
        org = await harness.make_org()
        user = await harness.make_user(org, full_name="Old")
        async with harness.uow(org) as uow:
            await uow.delete(await uow.require(User, user.id), hard=True)
            await uow.add(new_user(org, id=user.id, full_name="New"))
            await uow.commit()
        assert [c.kind for c in harness.listener.changes if c.id == user.id] != [ChangeKind.INSERT]

    # ------------------------------------------------------------ identity after a hard delete

    async def test_a_hard_deleted_object_can_be_added_again_in_the_same_unit_of_work(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            await uow.delete(got, hard=True)
            await uow.add(got)
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.get(User, user.id) is not None

    async def test_a_hard_deleted_object_can_be_added_again_by_a_later_unit_of_work(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            await uow.delete(got, hard=True)
            await uow.commit()
        async with harness.uow(org) as uow:
            await uow.add(got)
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.get(User, user.id) is not None

    # ------------------------------------------------------------ detached, modified objects

    async def test_deleting_a_detached_modified_object_keeps_caller_and_row_in_step(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        user.rename("Renamed while detached")
        async with harness.uow(org) as uow:
            await uow.delete(user)
            await uow.commit()
        async with harness.uow(org) as uow:
            stored = await uow.require(User, user.id, include_deleted=True)
            assert (stored.full_name, stored.version) == (user.full_name, user.version)

    # ------------------------------------------------------------ a change, then a delete or restore

    @pytest.mark.parametrize("verb", ["delete", "restore"])
    async def test_a_change_then_a_delete_or_restore_is_one_write(
        self, harness: Harness, verb: str
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        if verb == "restore":
            async with harness.uow(org) as uow:
                await uow.delete(await uow.require(User, user.id))
                await uow.commit()
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id, include_deleted=True)
            before = got.version
            got.rename("Changed")
            await (uow.delete(got) if verb == "delete" else uow.restore(got))
            await uow.commit()
        assert got.version == before + 1
        async with harness.uow(org) as uow:
            stored = await uow.require(User, user.id, include_deleted=True)
            assert (stored.full_name, stored.version) == ("Changed", before + 1)

    async def test_a_failed_restore_leaves_the_entity_deleted(self, harness: Harness) -> None:
        """A restore that fails (the email is taken again) leaves the row deleted, and the
        caller's entity says so too: a failed write undoes the adapter's own half-done
        change to it."""
        org = await harness.make_org()
        old = await harness.make_user(org, email="ann@example.org")
        async with harness.uow(org) as uow:
            got = await uow.require(User, old.id)
            await uow.delete(got)
            await uow.commit()
            await uow.add(new_user(org, email="ann@example.org"))
            await uow.commit()
            with pytest.raises(DomainError):
                await uow.restore(got)
        assert got.is_deleted
