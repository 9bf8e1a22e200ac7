"""Bulk create on PostgreSQL: COPY into a staging table, moved under RLS and constraints."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from edu_domain.errors import AlreadyExists, NotFound, TenantViolation
from edu_domain.model import EducationalContent, User
from edu_domain.query import F, Query
from edu_infra.sqlalchemy import pg_copy
from edu_infra.sqlalchemy import pg_rows as pg_rows_module
from edu_infra.testing.harness import Harness, new_content, new_user

pytestmark = pytest.mark.postgres


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each COPY carried."""
    calls: list[int] = []
    original = pg_copy.copy_insert

    async def spy(driver: Any, dialect: Any, entities: Any, **options: Any) -> None:
        calls.append(len(entities))
        await original(driver, dialect, entities, **options)

    monkeypatch.setattr(pg_rows_module, "copy_insert", spy)
    return calls


async def test_add_all_copies_rows_stamped_and_versioned(
    pg_harness: Harness, copies: list[int]
) -> None:
    org = await pg_harness.make_org()
    author = await pg_harness.make_user(org)
    batch = [
        new_content(org, author, tags=("python", f"t{i}"), metadata={"n": i, "f": 1e16})
        for i in range(50)
    ]
    async with pg_harness.uow(org, author) as uow:
        await uow.add_all(batch)
        await uow.commit()
    assert copies == [50]
    async with pg_harness.uow(org) as uow:
        stored = await uow.find(
            EducationalContent, Query.where(F("tags").contains_all(["python"])).order_by("id")
        )
    assert len(stored) == 50
    assert {(c.version, c.created_by, c.created_at) for c in stored} == {
        (1, author.id, pg_harness.clock.now())
    }
    assert sorted(c.metadata["n"] for c in stored) == list(range(50))
    assert {type(c.metadata["f"]) for c in stored} == {float}


async def test_copied_entities_are_tracked_without_a_reload(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    author = await pg_harness.make_user(org)
    content = new_content(org, author)
    async with pg_harness.uow(org) as uow:
        await uow.add_all([content])
        assert await uow.get(EducationalContent, content.id) is content
        content.metadata["edited"] = True
        content.title = "Edited"
        await uow.commit()
    assert content.version == 2
    async with pg_harness.uow(org) as uow:
        stored = await uow.require(EducationalContent, content.id)
    assert (stored.title, stored.metadata, stored.version) == ("Edited", {"edited": True}, 2)


async def test_copy_reports_a_reused_unique_key_and_inserts_nothing(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    taken = await pg_harness.make_user(org)
    batch = [new_user(org) for _ in range(3)] + [new_user(org, email=taken.email)]
    async with pg_harness.uow(org) as uow:
        with pytest.raises(AlreadyExists) as caught:
            await uow.add_all(batch)
        assert (caught.value.entity, caught.value.field) == ("User", "email")
        assert await uow.count(User) == 1


async def test_copy_reports_a_missing_reference(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    author = await pg_harness.make_user(org)
    ghost = new_user(org)
    async with pg_harness.uow(org) as uow:
        with pytest.raises(NotFound) as caught:
            await uow.add_all([new_content(org, author), new_content(org, ghost)])
    assert (caught.value.entity, caught.value.key) == ("User", ghost.id)


async def test_copy_of_another_tenants_rows_is_refused_twice(pg_harness: Harness) -> None:
    mine, theirs = await pg_harness.make_org(), await pg_harness.make_org()
    async with pg_harness.uow(mine) as uow:
        with pytest.raises(TenantViolation):
            await uow.add_all([new_user(mine), new_user(theirs)])
    async with pg_harness.uow(mine) as uow:
        intruder = new_user(theirs)
        for field in ("created_at", "updated_at"):
            setattr(intruder, field, pg_harness.clock.now())
        intruder.version = 1
        driver = await uow.rows.driver()  # type: ignore[attr-defined]
        # bypass the Python check: the RLS WITH CHECK policy still refuses the rows
        with pytest.raises(Exception, match="row-level security"):
            await pg_copy.copy_insert(
                driver, uow.rows._statements.dialect, [intruder], schema="public"
            )  # type: ignore[attr-defined]
    async with pg_harness.factory.unscoped() as uow:
        assert await uow.count(User) == 0


async def test_copy_runs_inside_the_unit_of_work_transaction(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    async with pg_harness.uow(org) as uow:
        await uow.add_all([new_user(org) for _ in range(5)])
        session = uow.session  # type: ignore[attr-defined]
        assert (await session.execute(text("SELECT count(*) FROM users"))).scalar_one() == 5
        await uow.rollback()
        assert await uow.count(User) == 0
