"""The two tenant layers on PostgreSQL, each proven alone.

- The application's filter alone: the whole contract suite also runs through a member of
  the application role that bypasses row-level security (`tests/contract/conftest.py`,
  adapter `postgres-app-filter`); here, proof that that role really bypasses it.
- Row-level security alone: with the unit of work's tenant predicate removed from every
  statement it builds (`guard.predicates`), reads still see only the unit of work's tenant.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from edu_domain.model import User
from edu_domain.query import F, Query
from edu_infra.sqlalchemy import guard
from edu_infra.testing.harness import Harness
from tests.sql_harness import postgres_app_filter_harness, postgres_harness

pytestmark = pytest.mark.postgres


async def _two_orgs(harness: Harness) -> tuple[object, object]:
    mine, theirs = await harness.make_org(), await harness.make_org()
    await harness.make_user(mine)
    for _ in range(3):
        await harness.make_user(theirs)
    return mine, theirs


async def test_the_app_filter_harness_really_bypasses_row_level_security(
    postgres_url: str,
) -> None:
    async with postgres_app_filter_harness(postgres_url) as harness:
        mine, _ = await _two_orgs(harness)
        async with harness.uow(mine) as uow:
            session = uow.session  # type: ignore[attr-defined]
            raw = await session.execute(text("SELECT count(*) FROM users"))
            assert raw.scalar_one() == 4  # RLS would show 1: only the app filter stands
            assert await uow.count(User) == 1


async def test_row_level_security_alone_keeps_reads_in_the_tenant(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = guard.predicates
    dropped: list[object] = []

    def without_tenant(cls, *, tenant, include_deleted):  # type: ignore[no-untyped-def]
        if tenant is not None:
            dropped.append(tenant)
        return original(cls, tenant=None, include_deleted=include_deleted)

    async with postgres_harness(postgres_url) as harness:
        mine, theirs = await _two_orgs(harness)
        # every caller of the guard (`criteria` is built on `predicates`)
        for module in ("edu_infra.sqlalchemy.pg_statements", "edu_infra.sqlalchemy.session",
                       "edu_infra.sqlalchemy.guard"):  # fmt: skip
            monkeypatch.setattr(f"{module}.predicates", without_tenant)
        async with harness.uow(mine) as uow:
            assert await uow.count(User) == 1
            found = await uow.find(User, Query.where(F("organization_id").eq(theirs.id)))  # type: ignore[attr-defined]
            assert found.items == ()
            assert {u.organization_id for u in (await uow.find(User)).items} == {mine.id}  # type: ignore[attr-defined]
    assert dropped, "the application's tenant predicate was really left out"
