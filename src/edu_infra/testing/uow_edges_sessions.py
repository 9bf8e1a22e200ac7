"""Edges of what one unit of work holds: one object per row across every read, its tenant on
every read by id, its SQL session handed out (`uow.session`), its row locks, and calls
made on it concurrently.

From a review of the SQL adapter redesign (issue 12). Adapter-specific tests skip where they
cannot apply: the session tests need a SQLAlchemy `AsyncSession` as `uow.session`; the
locking-refresh test skips the memory adapter (it ignores `lock=True`, as the port allows;
an adapter of your own that does too overrides it); the cancellation test is PostgreSQL's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edu_domain.model import EducationalContent, Organization, User
from edu_domain.ports import UnitOfWork
from edu_domain.query import Query
from edu_infra.memory import InMemoryUnitOfWorkFactory
from edu_infra.testing.harness import Harness, new_user


def sqlalchemy_session(uow: UnitOfWork) -> Any:
    """The open unit of work's SQLAlchemy `AsyncSession` (`uow.session`), or a skip: a unit
    of work without one has no raw-SQL escape hatch to test."""
    session = getattr(uow, "session", None)
    if session is None:
        pytest.skip("the unit of work has no session")
    asyncio_ext = pytest.importorskip("sqlalchemy.ext.asyncio")
    if not isinstance(session, asyncio_ext.AsyncSession):
        pytest.skip("the unit of work's session is not a SQLAlchemy AsyncSession")
    return session


class SessionEdgesContract:
    # ------------------------------------------------------------ identity

    async def test_one_object_per_row_across_every_read(self, harness: Harness) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        other = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            found = (await uow.find(User, Query.where(id=user.id))).items[0]
            locked = await uow.get(User, user.id, lock=True)
            streamed = [u async for u in uow.stream(User, Query.where(id=user.id))]
            await uow.delete(await uow.require(User, other.id), hard=True)  # the session is in use
            after = (await uow.find(User, Query.where(id=user.id))).items[0]
            assert all(o is got for o in (found, locked, streamed[0], after))
            got.rename("Same")
            assert (await uow.count(User, Query.where(full_name="Same"))) == 1
            await uow.commit()
            assert await uow.get(User, user.id) is got
        async with harness.uow(org) as uow:
            assert (await uow.require(User, user.id)).version == 2

    # ------------------------------------------------------------ tenant isolation

    async def test_every_read_by_id_of_another_organizations_row_is_none(
        self, harness: Harness
    ) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        victim = await harness.make_user(theirs)
        async with harness.uow(mine) as uow:
            assert await uow.get(User, victim.id, lock=True) is None
            assert await uow.get(User, victim.id, include_deleted=True) is None
            assert await uow.get(User, victim.id, include_deleted=True, lock=True) is None
            assert await uow.get(Organization, theirs.id, lock=True) is None
            assert await uow.count(User, Query.where(id=victim.id), include_deleted=True) == 0
            tally = await uow.tally(
                User, ["role"], totals={"orgs": (Organization, None), "users": (User, None)}
            )
            assert tally.totals == {"orgs": 1, "users": 0}

    # ------------------------------------------------------------ the session escape hatch

    async def test_orm_statements_through_the_session_stay_in_the_tenant(
        self, harness: Harness
    ) -> None:
        mine, theirs = await harness.make_org(), await harness.make_org()
        await harness.make_user(mine)
        victim = await harness.make_user(theirs)
        async with harness.uow(mine) as uow:
            session = sqlalchemy_session(uow)
            from sqlalchemy import select, update

            rows = (await session.scalars(select(User))).all()
            assert {u.organization_id for u in rows} == {mine.id}
            await session.execute(update(User).values(full_name="Everyone"))
            await uow.commit()
        async with harness.uow(theirs) as uow:
            assert (await uow.require(User, victim.id)).full_name is None

    async def test_a_unit_of_work_is_usable_after_its_session_was_used_and_rolled_back(
        self, harness: Harness
    ) -> None:
        org = await harness.make_org()
        user = await harness.make_user(org)
        async with harness.uow(org) as uow:
            got = await uow.require(User, user.id)
            session = sqlalchemy_session(uow)
            from sqlalchemy import select

            assert (await session.scalars(select(User))).all() == [got]
            got.rename("Rolled back")
            await uow.flush()
            await uow.rollback()
            again = await uow.require(User, user.id)
            assert again.full_name is None
            again.rename("Kept")
            await uow.add(new_user(org))
            await uow.commit()
        async with harness.uow(org) as uow:
            assert (await uow.require(User, user.id)).full_name == "Kept"
            assert await uow.count(User) == 2

    # ------------------------------------------------------------ locking reads

    async def test_an_in_place_change_after_a_locking_refresh_is_written(
        self, harness: Harness
    ) -> None:
        if isinstance(harness.factory, InMemoryUnitOfWorkFactory):
            pytest.skip("memory ignores lock=True (allowed by the port): its commit conflicts")
        org = await harness.make_org()
        author = await harness.make_user(org)
        content = await harness.make_content(org, author, metadata={"n": 0})
        async with harness.uow(org) as uow:
            mine = await uow.require(EducationalContent, content.id)
            async with harness.uow(org) as other:
                theirs = await other.require(EducationalContent, content.id)
                theirs.metadata["n"] = 1
                await other.commit()
            locked = await uow.get(EducationalContent, content.id, lock=True)
            assert locked is mine and mine.metadata == {"n": 1} and mine.version == 2
            mine.metadata["n"] += 1
            await uow.commit()
        async with harness.uow(org) as uow:
            stored = await uow.require(EducationalContent, content.id)
            assert (stored.metadata, stored.version) == ({"n": 2}, 3)

    async def test_a_cancelled_locking_read_leaves_no_transaction_or_lock_behind(
        self, harness: Harness, request: pytest.FixtureRequest
    ) -> None:
        """PostgreSQL only, chosen by the harness name (`postgres...`): it watches
        `pg_stat_activity` through asyncpg with the `postgres_url` fixture (a URL of a role
        that sees every backend), and skips without that fixture."""
        if not harness.name.startswith("postgres"):
            pytest.skip("row locks block on PostgreSQL only")
        try:
            postgres_url: str = request.getfixturevalue("postgres_url")
        except pytest.FixtureLookupError:
            pytest.skip("no postgres_url fixture to watch pg_stat_activity with")
        import asyncpg

        org = await harness.make_org()
        user = await harness.make_user(org)
        added = new_user(org)
        holder = harness.uow(org)
        await holder.begin()
        assert await holder.get(User, user.id, lock=True) is not None

        async def blocked() -> None:
            async with harness.uow(org) as uow:
                await uow.add(added)
                await uow.get(User, user.id, lock=True)  # waits for the holder
                await uow.commit()

        task = asyncio.create_task(blocked())
        admin = await asyncpg.connect(postgres_url.replace("+asyncpg", ""))
        try:
            for _ in range(500):
                waiting = await admin.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE '%FOR UPDATE%'"
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting, "the second unit of work never blocked"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await holder.close()
            # the cancelled unit of work's insert is gone, and the pool still works
            for _ in range(6):
                async with harness.uow(org) as uow:
                    assert await uow.get(User, added.id) is None
                    got = await uow.get(User, user.id, lock=True)
                    assert got is not None
                    got.rename("After")
                    await uow.commit()
            idle_in_tx = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'"
                " AND datname = current_database()"
            )
        finally:
            await admin.close()
        assert idle_in_tx == 0

    # ------------------------------------------------------------ concurrent use of one unit of work

    async def test_concurrent_reads_on_one_unit_of_work_keep_its_writes(
        self, harness: Harness
    ) -> None:
        """`asyncio.gather` of reads on one unit of work: every adapter answers them (on
        PostgreSQL they take turns on its one connection) and keeps the earlier `add`; sent at
        once they would lose the connection and, with it, the `add`."""
        org = await harness.make_org()
        a, b = await harness.make_user(org), await harness.make_user(org)
        added = new_user(org)
        async with harness.uow(org) as uow:
            await uow.add(added)
            got = await asyncio.gather(uow.get(User, a.id), uow.get(User, b.id), uow.count(User))
            assert got[2] == 3
            await uow.commit()
        async with harness.uow(org) as uow:
            assert await uow.get(User, added.id) is not None
