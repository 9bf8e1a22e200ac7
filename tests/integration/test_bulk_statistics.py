"""Fresh statistics after bulk work (issue 13): a commit that inserted many rows runs
ANALYZE of the tables it filled through `edu_analyze` (migration 0006), so the very next
read of the organization is planned with them; `edu_analyze` touches only our tables."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import text

from edu_domain.model import User
from edu_domain.ports import Change, ChangeKind
from edu_domain.query import Query
from edu_infra.sqlalchemy import Database, pg_rows
from edu_infra.sqlalchemy.statistics import MIN_ROWS, bulk_inserts, stale
from edu_infra.testing.harness import Harness

USERS = 50_000


def _rows(count: int, tag: str) -> Iterator[dict[str, Any]]:
    for i in range(count):
        yield {
            "email": f"{tag}{i}@example.org",
            "username": f"{tag}{i}",
            "hashed_password": "fast$v2$1$00",
        }


async def _get_plan(harness: Harness, org: Any, user_id: Any) -> str:
    """EXPLAIN of the statement `get` sends, with its real arguments (captured on the
    unit of work's own connection, as the unit of work sends it)."""
    async with harness.uow(org) as uow:
        driver = await uow.rows.driver()  # type: ignore[attr-defined]
        captured: list[tuple[str, Any]] = []

        def capture(record: Any) -> None:
            if "FROM" in record.query:
                captured.append((record.query, record.args))

        driver.add_query_logger(capture)
        try:
            assert await uow.get(User, user_id) is not None
            await asyncio.sleep(0)  # asyncpg calls its query loggers with call_soon
        finally:
            driver.remove_query_logger(capture)
        statement, args = captured[-1]
        rows = await driver.fetch(f"EXPLAIN {statement}", *args)
    return "\n".join(r[0] for r in rows)


async def _estimate(harness: Harness, org: Any) -> float:
    async with harness.uow(org) as uow:
        driver = await uow.rows.driver()  # type: ignore[attr-defined]
        return float(
            await driver.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'users'")
        )


@pytest.mark.postgres
async def test_after_a_large_import_get_by_id_uses_the_primary_key(
    pg_harness: Harness, pg_owner: Database
) -> None:
    """As in the issue: statistics gathered while the table held other organizations'
    users (autovacuum's last visit) know nothing of the new one's 50,000."""
    other, org = await pg_harness.make_org(), await pg_harness.make_org()
    async with pg_harness.uow(other) as uow:
        await uow.import_rows(User, _rows(MIN_ROWS // 2, "early"))
        await uow.commit()
    async with pg_owner.engine.begin() as conn:
        await conn.execute(text("ANALYZE users"))
    async with pg_harness.uow(org) as uow:
        assert await uow.import_rows(User, _rows(USERS, "bulk")) == USERS
        await uow.commit()
    assert await _estimate(pg_harness, org) >= USERS  # analyzed right after the commit
    async with pg_harness.uow(org) as uow:
        some = await uow.first(User, Query.where(username="bulk31337"))
    assert some is not None
    plan = await _get_plan(pg_harness, org, some.id)
    assert "Index Scan using pk_users" in plan or "Index Scan using uq_users_id" in plan, plan
    assert "ix_users_" not in plan, plan  # not an index over the whole organization


@pytest.mark.postgres
async def test_a_small_insert_into_a_large_table_does_not_analyze(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    async with pg_harness.uow(org) as uow:
        await uow.import_rows(User, _rows(20 * MIN_ROWS, "big"))
        await uow.commit()
    before = await _estimate(pg_harness, org)
    assert before >= 20 * MIN_ROWS
    async with pg_harness.uow(org) as uow:  # 1,000 rows: under 10% of 20,000
        await uow.import_rows(User, _rows(MIN_ROWS, "more"))
        await uow.commit()
    assert await _estimate(pg_harness, org) == before


@pytest.mark.postgres
async def test_a_new_organizations_import_into_a_large_table_is_analyzed(
    pg_harness: Harness, pg_owner: Database
) -> None:
    """2,000 users are 6% of the table but every row of their organization, which the
    statistics (gathered before) do not know: analyzed, and get by id takes the key."""
    big, org = await pg_harness.make_org(), await pg_harness.make_org()
    async with pg_harness.uow(big) as uow:
        await uow.import_rows(User, _rows(30 * MIN_ROWS, "big"))
        await uow.commit()
    async with pg_owner.engine.begin() as conn:
        await conn.execute(text("ANALYZE users"))
    before = await _estimate(pg_harness, org)
    async with pg_harness.uow(org) as uow:
        await uow.import_rows(User, _rows(2 * MIN_ROWS, "new"))
        await uow.commit()
    assert await _estimate(pg_harness, org) >= before + 2 * MIN_ROWS  # analyzed
    async with pg_harness.uow(org) as uow:
        some = await uow.first(User, Query.where(username="new1234"))
    assert some is not None
    plan = await _get_plan(pg_harness, org, some.id)
    assert "ix_users_" not in plan, plan


@pytest.mark.postgres
async def test_edu_analyze_refuses_a_table_that_is_not_ours(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    for table in ("pg_catalog.pg_class", "edu_rls_key", "edu_stage_users"):
        async with pg_harness.uow(org) as uow:
            driver = await uow.rows.driver()  # type: ignore[attr-defined]
            with pytest.raises(asyncpg.PostgresError) as refused:
                await driver.execute("SELECT edu_analyze($1::regclass)", table)
            assert refused.value.sqlstate == "22023", table
    async with pg_harness.uow(org) as uow:  # one of ours: accepted
        driver = await uow.rows.driver()  # type: ignore[attr-defined]
        await driver.execute("SELECT edu_analyze($1::regclass)", "users")


@pytest.mark.postgres
async def test_a_failed_analyze_never_fails_the_commit(
    pg_harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_: object) -> list[str]:
        raise asyncpg.PostgresError("no statistics today")

    monkeypatch.setattr(pg_rows, "analyze_stale", broken)
    org = await pg_harness.make_org()
    with caplog.at_level(logging.WARNING, logger="edu_infra"):
        async with pg_harness.uow(org) as uow:
            await uow.import_rows(User, _rows(MIN_ROWS, "fail"))
            await uow.commit()
            assert await uow.count(User) == MIN_ROWS  # and the unit of work still works
    assert any("ANALYZE after a bulk insert failed" in r.getMessage() for r in caplog.records)
    async with pg_harness.uow(org) as uow:
        assert await uow.count(User) == MIN_ROWS


def test_the_threshold_takes_enough_rows_and_a_large_share() -> None:
    assert stale(MIN_ROWS, -1) and stale(MIN_ROWS, 0) and stale(5_000, 50_000)
    assert not stale(MIN_ROWS - 1, 0)
    assert not stale(4_999, 50_000)
    assert stale(4_999, 50_000, tenant_rows=4_999)  # an organization the statistics missed
    assert not stale(4_999, 50_000, tenant_rows=50_000)  # a known one grew by 10% or less
    assert not stale(MIN_ROWS - 1, 50_000, tenant_rows=MIN_ROWS - 1)
    inserts = [Change(User, uuid4(), uuid4(), ChangeKind.INSERT) for _ in range(MIN_ROWS)]
    updates = [Change(User, uuid4(), uuid4(), ChangeKind.UPDATE) for _ in range(MIN_ROWS)]
    assert bulk_inserts(inserts) == {"users": MIN_ROWS}
    assert bulk_inserts(inserts[1:] + updates) == {}
