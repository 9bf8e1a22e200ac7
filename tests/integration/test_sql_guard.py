"""The guard's filter (`guard.predicates`) run alone on SQLite, in both forms of the tenant.

Cached statements carry the tenant as the bound parameter TENANT_PARAM, supplied at every
execution (a statement that misses it must fail, never read unfiltered); statements built
per call carry the tenant's id itself, so they need nothing more at execution.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from edu_domain.model import Organization, User
from edu_infra.sqlalchemy import Database
from edu_infra.sqlalchemy.guard import BOUND, TENANT_PARAM, predicates
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.testing.harness import Harness


async def _users(
    database: Database, params: dict[str, Any] | None = None, **filter_: Any
) -> set[UUID]:
    stmt = select(table_of(User).c.id).where(*predicates(User, **filter_))
    async with database.engine.connect() as conn:
        return set((await conn.execute(stmt, params or {})).scalars())


@pytest.fixture
async def rows(sqlite_harness: Harness) -> dict[str, Any]:
    """Two organizations; the first has a live and a soft-deleted user, the other one user."""
    mine, theirs = await sqlite_harness.make_org(), await sqlite_harness.make_org()
    live, gone = await sqlite_harness.make_user(mine), await sqlite_harness.make_user(mine)
    other = await sqlite_harness.make_user(theirs)
    async with sqlite_harness.uow(mine) as uow:
        await uow.delete(await uow.get(User, gone.id))  # type: ignore[arg-type]
        await uow.commit()
    return {"mine": mine, "live": live.id, "gone": gone.id, "other": other.id}


async def test_a_tenant_given_by_value_filters_without_any_parameter(
    sqlite_db: Database, rows: dict[str, Any]
) -> None:
    mine: Organization = rows["mine"]
    assert await _users(sqlite_db, tenant=mine.id, include_deleted=False) == {rows["live"]}
    assert await _users(sqlite_db, tenant=mine.id, include_deleted=True) == {
        rows["live"],
        rows["gone"],
    }


async def test_a_bound_tenant_filters_by_the_value_given_at_execution(
    sqlite_db: Database, rows: dict[str, Any]
) -> None:
    mine: Organization = rows["mine"]
    found = await _users(sqlite_db, {TENANT_PARAM: mine.id}, tenant=BOUND, include_deleted=False)
    assert found == {rows["live"]}


async def test_a_bound_tenant_left_out_at_execution_fails_instead_of_reading_everything(
    sqlite_db: Database, rows: dict[str, Any]
) -> None:
    with pytest.raises(sa_exc.StatementError, match=TENANT_PARAM):
        await _users(sqlite_db, tenant=BOUND, include_deleted=False)


async def test_unscoped_filters_only_the_soft_deleted(
    sqlite_db: Database, rows: dict[str, Any]
) -> None:
    assert await _users(sqlite_db, tenant=None, include_deleted=False) == {
        rows["live"],
        rows["other"],
    }
    assert predicates(User, tenant=None, include_deleted=True) == []
