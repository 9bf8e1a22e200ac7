"""Review 17b: a read-only unit of work behaves alike on every adapter after a commit.

SQLite ends a read-only unit of work by rolling its session back after `expunge_all()`
(`transaction.py` `UowTransaction.commit`): the entities handed out are detached from the
unit of work, so the same id then loads another object, and a change made to a handed-out
entity after that commit is silently dropped instead of refused. On PostgreSQL and in
memory the unit of work keeps its identity map and refuses the change (`ReadOnlyError`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from edu_domain.errors import ReadOnlyError
from edu_domain.model import User
from edu_infra.testing import Harness
from tests.contract.conftest import _open


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def sql_harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    async with _open(request.param, request) as opened:
        yield opened


async def test_a_read_only_unit_of_work_keeps_one_object_per_id_across_its_commits(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    ann = await harness.make_user(org, username="ann", full_name="Ann")
    async with harness.reader(org) as uow:
        first = await uow.require(User, ann.id)
        await uow.commit()
        assert first.full_name == "Ann"  # values stay readable after the commit
        again = await uow.require(User, ann.id)
        assert again is first
        await uow.commit()  # a second commit is no error either
        assert (await uow.find(User))[0] is first


async def test_a_change_to_a_handed_out_entity_after_a_read_only_commit_is_refused(
    harness: Harness,
) -> None:
    org = await harness.make_org()
    ann = await harness.make_user(org, username="ann", full_name="Ann")
    async with harness.reader(org) as uow:
        user = await uow.require(User, ann.id)
        await uow.commit()
        user.full_name = "Changed after the commit"
        with pytest.raises(ReadOnlyError):
            await uow.commit()
    async with harness.uow(org) as uow:
        assert (await uow.require(User, ann.id)).full_name == "Ann"


async def test_a_write_through_execute_in_a_read_only_unit_of_work_is_refused(
    sql_harness: Harness,
) -> None:
    harness = sql_harness
    org = await harness.make_org()
    ann = await harness.make_user(org, username="ann", full_name="Ann")
    async with harness.reader(org) as uow:
        with pytest.raises(ReadOnlyError):
            await uow.execute(text("UPDATE users SET full_name = 'Hacked'"))  # type: ignore[attr-defined]
    async with harness.uow(org) as uow:
        assert (await uow.require(User, ann.id)).full_name == "Ann"
