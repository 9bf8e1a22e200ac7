"""Attacks an independent review found on the first transaction-bound proof (issue 11): raw SQL
that changes the settings mid-statement, after a verdict was cached.

Each test is an attack by raw SQL as the application role inside a unit of work of tenant
`mine`; a test PASSES when the attack is stopped, FAILS when it crosses the boundary.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from edu_domain.errors import DomainError
from edu_domain.model import Organization
from edu_infra.sqlalchemy.engine import DatabaseSettings
from edu_infra.testing.harness import new_user
from tests.reliability.conftest import Stack, postgres_stack, sql_stack
from tests.sql_harness import PostgresDatabase

pytestmark = pytest.mark.postgres


@pytest.fixture
async def stack(pg: PostgresDatabase) -> AsyncIterator[Stack]:
    async with postgres_stack() as running:
        yield running


async def _two(stack: Stack) -> tuple[Organization, Organization]:
    """`mine` has one user (inserted first), `theirs` has three."""
    mine, theirs = await stack.org("Mine"), await stack.org("Theirs")
    async with stack.factory(tenant=mine.id) as uow:
        await uow.add(new_user(mine))
        await uow.commit()
    async with stack.factory(tenant=theirs.id) as uow:
        for _ in range(3):
            await uow.add(new_user(theirs))
        await uow.commit()
    return mine, theirs


async def _owner_count(pg: PostgresDatabase, sql: str) -> int:
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    try:
        return int(await owner.fetchval(sql))
    finally:
        await owner.close()


async def test_cursor_changing_settings_after_the_one_time_verification(stack: Stack) -> None:
    """The proof is checked once per statement, the tenant settings per row."""
    mine, theirs = await _two(stack)
    async with stack.factory(tenant=mine.id) as uow:
        s = uow.session  # type: ignore[attr-defined]
        await s.execute(
            text("DECLARE c SCROLL CURSOR FOR SELECT id, organization_id, email FROM users")
        )
        first = (await s.execute(text("FETCH 1 FROM c"))).all()
        await s.execute(text("SELECT set_config('app.unscoped', 'on', true)"))
        await s.execute(text("MOVE ABSOLUTE 0 FROM c"))
        rows = (await s.execute(text("FETCH ALL FROM c"))).all()
        await uow.rollback()
    leaked = [r for r in rows if r.organization_id == theirs.id]
    assert first and leaked == [], f"read {len(leaked)} foreign users: {leaked}"


async def test_single_statement_settings_switch_mid_scan(stack: Stack) -> None:
    mine, theirs = await _two(stack)
    async with stack.factory(tenant=mine.id) as uow:
        s = uow.session  # type: ignore[attr-defined]
        rows = (
            await s.execute(
                text(
                    "SELECT id, organization_id FROM users"
                    " WHERE set_config('app.unscoped', 'on', true) IS NOT NULL"
                )
            )
        ).all()
        await uow.rollback()
    leaked = [r for r in rows if r.organization_id == theirs.id]
    assert leaked == [], f"read {len(leaked)} foreign users"


async def test_single_statement_cross_tenant_delete(stack: Stack, pg: PostgresDatabase) -> None:
    mine, theirs = await _two(stack)
    async with stack.factory(tenant=mine.id) as uow:
        s = uow.session  # type: ignore[attr-defined]
        await s.execute(
            text("DELETE FROM users WHERE set_config('app.unscoped', 'on', true) IS NOT NULL")
        )
        await uow.commit()
    left = await _owner_count(
        pg, f"SELECT count(*) FROM users WHERE organization_id = '{theirs.id}'"
    )
    assert left == 3, f"deleted {3 - left} foreign users"


async def test_no_own_row_needed_for_the_cursor_read(stack: Stack) -> None:
    """The one-time filter runs even when the first FETCH finds nothing of the tenant's."""
    mine, theirs = await stack.org("Mine"), await stack.org("Theirs")
    async with stack.factory(tenant=theirs.id) as uow:
        await uow.add(new_user(theirs))
        await uow.commit()
    async with stack.factory(tenant=mine.id) as uow:
        s = uow.session  # type: ignore[attr-defined]
        await s.execute(text("DECLARE c SCROLL CURSOR FOR SELECT organization_id FROM users"))
        assert (await s.execute(text("FETCH 1 FROM c"))).all() == []
        await s.execute(text("SELECT set_config('app.unscoped', 'on', true)"))
        await s.execute(text("MOVE ABSOLUTE 0 FROM c"))
        rows = (await s.execute(text("FETCH ALL FROM c"))).all()
        await uow.rollback()
    assert rows == [], f"read {len(rows)} foreign users"


async def test_cross_tenant_insert_by_switching_tenant_between_rows(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, theirs = await _two(stack)
    async with stack.factory(tenant=mine.id) as uow:
        s = uow.session  # type: ignore[attr-defined]
        own = (await s.execute(text("SELECT to_jsonb(u) FROM users u"))).scalar_one()
        forged = dict(
            own,
            id="01a00000-0000-7000-8000-000000000001",
            organization_id=str(theirs.id),
            email="planted@evil.example",
            username="planted",
            role="admin",
        )
        copy = dict(
            own,
            id="01a00000-0000-7000-8000-000000000002",
            email="copy@evil.example",
            username="copy",
        )
        with pytest.raises(DBAPIError, match="row-level security"):
            await s.execute(
                text(
                    "INSERT INTO users SELECT (jsonb_populate_record(NULL::users, x)).* FROM ("
                    " SELECT CASE WHEN g = 1 THEN CAST(:a AS jsonb) ELSE CAST(:b AS jsonb) END AS x"
                    " FROM generate_series(1, 2) g"
                    " WHERE g = 1 OR set_config('app.tenant_id', :t, true) IS NOT NULL) q"
                ),
                {"a": json.dumps(copy), "b": json.dumps(forged), "t": str(theirs.id)},
            )
    planted = await _owner_count(
        pg,
        f"SELECT count(*) FROM users WHERE organization_id = '{theirs.id}' AND username = 'planted'",
    )
    assert planted == 0, "planted an admin user in another tenant"


async def test_cross_tenant_update(stack: Stack, pg: PostgresDatabase) -> None:
    mine, theirs = await _two(stack)
    async with stack.factory(tenant=mine.id) as uow:
        s = uow.session  # type: ignore[attr-defined]
        try:
            await s.execute(
                text(
                    "UPDATE users SET full_name = 'pwned'"
                    " WHERE set_config('app.unscoped', 'on', true) IS NOT NULL"
                )
            )
            await uow.commit()
        except Exception as error:
            print("update refused:", type(error).__name__, str(error)[:200])
    pwned = await _owner_count(
        pg,
        f"SELECT count(*) FROM users WHERE organization_id = '{theirs.id}' AND full_name = 'pwned'",
    )
    assert pwned == 0, f"updated {pwned} foreign users"


async def test_read_organizations_unscoped_trick(stack: Stack) -> None:
    mine, _ = await _two(stack)
    async with stack.factory(tenant=mine.id) as uow:
        s = uow.session  # type: ignore[attr-defined]
        rows = (
            await s.execute(
                text(
                    "SELECT id FROM organizations"
                    " WHERE set_config('app.unscoped', 'on', true) IS NOT NULL"
                )
            )
        ).all()
        await uow.rollback()
    assert {r.id for r in rows} <= {mine.id}, "saw other organizations"


async def test_raw_app_role_privileges(pg: PostgresDatabase) -> None:
    """A raw connection as the application role: no proof, no TEMP, no stage reads."""
    conn = await asyncpg.connect(pg.dsn(pg.app_url))
    outcomes: dict[str, str] = {}
    attempts = {
        "temp": "CREATE TEMP TABLE users (id int)",
        "create": "CREATE TABLE public.x (id int)",
        "stage_select": "SELECT * FROM edu_stage_users",
        "stage_update": "UPDATE edu_stage_users SET email = 'x'",
        "stage_xact": "INSERT INTO edu_stage_users (edu_xact) VALUES ('1')",
        "move_unproven": "SELECT edu_stage_move('users')",
        "key": "SELECT * FROM edu_rls_key",
        "enter_bad_scope": "SELECT edu_enter('x'' OR true', repeat('0', 64))",
        "enter_forged": "SELECT edu_enter('*', repeat('0', 64))",
        "cursor_hold": "DECLARE h CURSOR WITH HOLD FOR SELECT * FROM users",
        "set_role": "SET ROLE postgres",
    }
    try:
        for name, sql in attempts.items():
            try:
                await conn.execute(sql)
                outcomes[name] = "ALLOWED"
            except asyncpg.PostgresError as error:
                outcomes[name] = f"{error.sqlstate} {error}"
        rows = await conn.fetch("SELECT count(*) FROM users")
    finally:
        await conn.close()
    print(outcomes)
    allowed = {k for k, v in outcomes.items() if v == "ALLOWED" and k != "cursor_hold"}
    assert allowed == set(), outcomes
    assert rows[0][0] == 0


async def test_wrong_rls_key_is_a_clear_error_without_sql(pg: PostgresDatabase) -> None:
    settings = DatabaseSettings(
        url=pg.app_url, rls_key="a-wrong-key-0123456789abcdef0123456789abcdef"
    )
    async with sql_stack("postgres", settings) as stack:
        with pytest.raises(DomainError, match="EDU_RLS_KEY") as caught:
            await stack.org("X")
    error = caught.value
    assert "SELECT" not in str(error) and "edu_enter" not in str(error)


async def test_no_setting_is_read_per_row_beside_a_cached_verdict(pg: PostgresDatabase) -> None:
    """The cause of the attacks above: a proof verified once (an InitPlan) next to settings
    read per row. Each InitPlan now verifies what it reads; no setting is read per row."""
    conn = await asyncpg.connect(pg.dsn(pg.app_url))
    try:
        plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN VERBOSE SELECT id FROM users"))
    finally:
        await conn.close()
    assert "current_setting" not in plan, plan
    assert "edu_tenant()" in plan and "edu_unscoped()" in plan, plan
