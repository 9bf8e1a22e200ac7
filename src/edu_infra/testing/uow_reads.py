"""Contract: what a unit of work's reads see (tenant scope, soft delete, identity map, copies)."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from edu_domain.errors import InvalidState, ValidationError
from edu_domain.model import EducationalContent, Organization, User, UserRole
from edu_domain.query import Query
from edu_infra.testing.harness import Harness, new_user

# ---------------------------------------------------------------- tenant isolation


# ---------------------------------------------------------------- soft delete filter


async def _soft_deleted_user(harness: Harness) -> tuple[Organization, User, User]:
    org = await harness.make_org()
    live = await harness.make_user(org)
    gone = await harness.make_user(org)
    async with harness.uow(org) as uow:
        await uow.delete(await uow.require(User, gone.id))
        await uow.commit()
    harness.reset_recorders()
    return org, live, gone


# ---------------------------------------------------------------- identity map and copies


# ---------------------------------------------------------------- arguments and lifecycle


class ReadsContract:
    """The `UnitOfWork` contract: reads. Needs a `harness` fixture."""

    async def test_get_returns_the_tenants_own_user_as_committed(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org, full_name="Ann Lee", role=UserRole.TEACHER)
        async with harness.uow(org) as uow:
            got = await uow.get(User, user.id)
        assert got is not None
        assert (got.id, got.email, got.full_name, got.role) == (
            user.id,
            user.email,
            "Ann Lee",
            UserRole.TEACHER,
        )
        assert got.organization_id == org.id

    async def test_get_returns_none_for_a_missing_id(self, harness: Harness) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            assert await uow.get(User, uuid4()) is None

    async def test_get_returns_none_for_another_tenants_user(self, harness: Harness) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        user = await harness.make_user(theirs)
        async with harness.uow(mine) as uow:
            assert await uow.get(User, user.id) is None
            assert await uow.get(User, user.id, include_deleted=True) is None

    async def test_get_sees_only_the_tenants_own_organization(self, harness: Harness) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        async with harness.uow(mine) as uow:
            own = await uow.get(Organization, mine.id)
            assert own is not None
            assert own.slug == mine.slug
            assert await uow.get(Organization, theirs.id) is None

    async def test_find_returns_only_the_tenants_rows(self, harness: Harness) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        a = await harness.make_user(mine)
        await harness.make_user(theirs)
        async with harness.uow(mine) as uow:
            page = await uow.find(User)
            everything = await uow.find(User, include_deleted=True)
        assert [u.id for u in page] == [a.id]
        assert [u.id for u in everything] == [a.id]

    async def test_find_of_organizations_returns_only_the_tenant_itself(
        self, harness: Harness
    ) -> None:
        mine, _ = await harness.make_org(), await harness.make_org()
        async with harness.uow(mine) as uow:
            assert [o.id for o in await uow.find(Organization)] == [mine.id]

    async def test_count_counts_only_the_tenants_rows(self, harness: Harness) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        await harness.make_user(mine)
        await harness.make_user(theirs)
        await harness.make_user(theirs)
        async with harness.uow(mine) as uow:
            assert await uow.count(User) == 1
            assert await uow.count(User, include_deleted=True) == 1
        async with harness.uow(theirs) as uow:
            assert await uow.count(User) == 2

    async def test_count_by_counts_only_the_tenants_rows(self, harness: Harness) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        await harness.make_user(mine, role=UserRole.TEACHER)
        await harness.make_user(theirs, role=UserRole.TEACHER)
        await harness.make_user(theirs, role=UserRole.ADMIN)
        async with harness.uow(mine) as uow:
            groups = await uow.count_by(User, ["role"])
        assert [(g.key, g.count) for g in groups] == [((UserRole.TEACHER,), 1)]

    async def test_stream_yields_only_the_tenants_rows(self, harness: Harness) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        a = await harness.make_user(mine)
        await harness.make_user(theirs)
        async with harness.uow(mine) as uow:
            ids = [u.id async for u in uow.stream(User, batch_size=1)]
        assert ids == [a.id]

    async def test_unscoped_unit_of_work_reads_every_tenant(self, harness: Harness) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        a, b = await harness.make_user(mine), await harness.make_user(theirs)
        async with harness.factory.unscoped() as uow:
            assert await uow.get(User, b.id) is not None
            found = {u.id for u in await uow.find(User)}
            assert {a.id, b.id} <= found
            assert await uow.count(Organization) >= 2

    async def test_get_returns_none_for_a_soft_deleted_user(self, harness: Harness) -> None:
        org, _, gone = await _soft_deleted_user(harness)
        async with harness.uow(org) as uow:
            assert await uow.get(User, gone.id) is None

    async def test_get_with_include_deleted_returns_a_soft_deleted_user(
        self, harness: Harness
    ) -> None:
        org, _, gone = await _soft_deleted_user(harness)
        async with harness.uow(org) as uow:
            got = await uow.get(User, gone.id, include_deleted=True)
        assert got is not None
        assert got.is_deleted

    async def test_find_and_count_skip_soft_deleted_rows_unless_asked(
        self, harness: Harness
    ) -> None:
        org, live, gone = await _soft_deleted_user(harness)
        async with harness.uow(org) as uow:
            assert [u.id for u in await uow.find(User)] == [live.id]
            assert {u.id for u in await uow.find(User, include_deleted=True)} == {live.id, gone.id}
            assert await uow.count(User) == 1
            assert await uow.count(User, include_deleted=True) == 2

    async def test_stream_and_count_by_always_skip_soft_deleted_rows(
        self, harness: Harness
    ) -> None:
        org, live, _ = await _soft_deleted_user(harness)
        async with harness.uow(org) as uow:
            assert [u.id async for u in uow.stream(User)] == [live.id]
            groups = await uow.count_by(User, ["role"])
        assert [g.count for g in groups] == [1]

    async def test_a_soft_delete_hides_the_row_from_reads_in_the_same_unit_of_work(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            await uow.delete(got)
            assert await uow.get(User, user.id) is None
            assert await uow.get(User, user.id, include_deleted=True) is got
            assert await uow.count(User) == 0

    async def test_get_twice_returns_the_same_object(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            first = await uow.get(User, user.id)
            assert first is not None
            assert await uow.get(User, user.id) is first
            assert (await uow.find(User))[0] is first
            assert await uow.first(User) is first
            assert [u async for u in uow.stream(User)] == [first]

    async def test_added_entity_is_the_object_reads_return(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = new_user(org)
        async with harness.uow(org) as uow:
            await uow.add(user)
            assert await uow.get(User, user.id) is user
            assert (await uow.find(User))[0] is user

    async def test_find_does_not_refresh_an_object_already_in_the_identity_map(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org, full_name="Before")
        async with harness.uow(org) as reader:
            held = await reader.require(User, user.id)
            async with harness.uow(org) as writer:
                (await writer.require(User, user.id)).rename("After")
                await writer.commit()
            page = await reader.find(User, Query.where(full_name="After"))
            assert [u.id for u in page] == [user.id]
            assert page[0] is held
            assert held.full_name == "Before"
        async with harness.uow(org) as fresh:
            assert (await fresh.require(User, user.id)).full_name == "After"

    async def test_objects_from_different_units_of_work_are_distinct(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as one, harness.uow(org) as two:
            assert await one.get(User, user.id) is not await two.get(User, user.id)
            assert await one.get(User, user.id) is not user

    async def test_mutating_a_returned_object_without_commit_changes_nothing(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org, full_name="Kept")
        async with harness.uow(org) as uow:
            (await uow.require(User, user.id)).rename("Lost")
        async with harness.uow(org) as uow:
            assert (await uow.require(User, user.id)).full_name == "Kept"

    async def test_mutating_an_object_after_its_unit_of_work_closed_changes_nothing(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org, full_name="Kept")
        user.rename("Changed later")
        content_author = await harness.make_user(org)
        content = await harness.make_content(org, content_author, metadata={"level": 1})
        content.metadata["level"] = 2
        async with harness.uow(org) as uow:
            assert (await uow.require(User, user.id)).full_name == "Kept"
            assert (await uow.require(EducationalContent, content.id)).metadata == {"level": 1}

    @pytest.mark.parametrize(
        "call",
        [
            lambda uow: uow.get(str, uuid4()),
            lambda uow: uow.get(User, "not-a-uuid"),
            lambda uow: uow.find(object),
            lambda uow: uow.find(User, "status = 'active'"),
            lambda uow: uow.count(User, Query.where(no_such_field=1)),
            lambda uow: uow.add("not an entity"),
            lambda uow: uow.add_all([object()]),
            lambda uow: uow.delete(42),
            lambda uow: uow.restore(None),
        ],
        ids=[
            "get-class",
            "get-id",
            "find-class",
            "find-query",
            "count-field",
            "add",
            "add_all",
            "delete",
            "restore",
        ],
    )
    async def test_wrong_argument_types_are_validation_errors(
        self, harness: Harness, call: Any
    ) -> None:
        org = await harness.make_org()
        async with harness.uow(org) as uow:
            with pytest.raises(ValidationError):
                await call(uow)

    async def test_a_closed_unit_of_work_refuses_every_verb(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        uow = harness.uow(org)
        async with uow:
            held = await uow.require(User, user.id)

        async def noop() -> None:
            return None

        calls: list[Any] = [
            lambda: uow.get(User, user.id),
            lambda: uow.find(User),
            lambda: uow.count(User),
            lambda: uow.count_by(User, ["role"]),
            lambda: uow.add(new_user(org)),
            lambda: uow.add_all([new_user(org)]),
            lambda: uow.delete(held),
            lambda: uow.restore(held),
            lambda: uow.flush(),
            lambda: uow.commit(),
            lambda: uow.rollback(),
        ]
        for call in calls:
            with pytest.raises(InvalidState):
                await call()
        with pytest.raises(InvalidState):
            uow.after_commit(noop)
        with pytest.raises(InvalidState):
            async for _ in uow.stream(User):
                pass
