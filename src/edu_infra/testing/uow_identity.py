"""Contract: one object per row, and writes of entities loaded in another unit of work.

Regressions found by review of the PostgreSQL read path (entities it loads wait detached
until the session needs them): each failed on PostgreSQL before the fix.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from edu_domain.errors import AlreadyExists, ValidationError
from edu_domain.model import User
from edu_domain.query import F, Query
from edu_infra.testing.harness import Harness, new_user


class IdentityContract:
    """The `UnitOfWork` contract: identity. Needs a `harness` fixture."""

    async def test_a_hard_deleted_entity_from_another_unit_of_work_is_gone(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)  # belongs to no open unit of work
        async with harness.uow(org) as uow:
            await uow.delete(user, hard=True)
            assert await uow.get(User, user.id) is None
            assert await uow.count(User) == 0
            await uow.add(new_user(org))  # a later write does not trip over the deleted object
            await uow.commit()
            await uow.add(new_user(org))
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 2

    async def test_a_soft_delete_of_an_entity_from_another_unit_of_work_is_written_at_once(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            await uow.delete(user)
            assert await uow.get(User, user.id) is None
            await uow.commit()
        assert any(c.id == user.id for c in harness.listener.changes)
        async with harness.uow(org) as uow:
            assert await uow.get(User, user.id) is None

    async def test_a_restore_conflict_surfaces_at_the_restore(self, harness: Harness) -> None:
        org = await harness.make_org()
        old = await harness.make_user(org, email="ann@example.org")
        async with harness.uow(org) as uow:
            got = await uow.require(User, old.id)
            await uow.delete(got)
            await uow.commit()
        await harness.make_user(org, email="ann@example.org")
        async with harness.uow(org) as uow:
            with pytest.raises(AlreadyExists):
                await uow.restore(got)  # `got` comes from the earlier unit of work

    async def test_a_read_during_a_stream_returns_the_streamed_object(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        users = [await harness.make_user(org) for _ in range(3)]
        last = max(u.id for u in users)
        async with harness.uow(org) as uow:
            got = None
            seen = []
            async for user in uow.stream(User, Query().order_by("id"), batch_size=1):
                if got is None:
                    got = await uow.get(User, last)
                seen.append(user)
            assert got is not None and seen[-1] is got
            got.full_name = "Changed"
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(User, last)).full_name == "Changed"

    async def test_a_query_value_out_of_the_databases_range_is_a_domain_error(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        await harness.make_user(org)
        early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))  # year 0 in UTC
        async with harness.uow(org) as uow:
            with pytest.raises(ValidationError) as raised:  # on every adapter alike
                await uow.find(User, Query.where(F("created_at").ge(early)))
            assert raised.value.field == "query"

    @pytest.mark.parametrize(
        "query",
        [
            Query.where(F("failed_login_count").in_([0, 5])),
            Query.where(F("status").in_(["pending", "active"])),
        ],
    )
    async def test_in_lists_of_each_kind_match(self, harness: Harness, query: Query) -> None:
        org = await harness.make_org()
        await harness.make_user(org)
        async with harness.uow(org) as uow:
            assert len(await uow.find(User, query)) == 1

    async def test_changing_the_id_of_a_stored_entity_is_refused(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            stored = await uow.require(User, user.id)
            stored.id = uuid4()
            with pytest.raises(ValidationError):
                await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.get(User, user.id) is not None

    async def test_an_entity_added_in_a_rolled_back_transaction_can_be_added_again(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        user = new_user(org)
        async with harness.uow(org) as uow:
            await uow.add(user)
            await uow.rollback()
            await uow.add(user)
            await uow.commit()
        batch = [new_user(org), new_user(org)]
        async with harness.uow(org) as uow:
            await uow.add_all(batch)
            await uow.rollback()
            await uow.add_all(batch)
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.count(User) == 3

    async def test_an_entity_added_after_the_session_exists_is_its_only_object(
        self,
        harness: Harness,
    ) -> None:
        org = await harness.make_org()
        other = await harness.make_user(org)
        user = new_user(org)
        async with harness.uow(org) as uow:
            async for _ in uow.stream(User):  # the ORM path: the session exists from here
                pass
            await uow.add(user)
            listed = {u.id: u for u in await uow.find(User)}
            assert listed[user.id] is user
            listed[other.id].full_name = "Other"
            user.full_name = "Mine"
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(User, user.id)).full_name == "Mine"
            assert (await uow.require(User, other.id)).full_name == "Other"

    def test_integer_fields_stay_within_their_32_bit_columns(self) -> None:
        with pytest.raises(ValidationError):
            User(
                organization_id=uuid4(),
                email="big@example.org",
                username="big",
                hashed_password="x" * 20,
                failed_login_count=2**31,
            )
