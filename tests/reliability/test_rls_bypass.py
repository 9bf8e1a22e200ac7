"""Tenant isolation with the ORM's tenant filter out of the way: PostgreSQL RLS holds alone.

Complements tests/integration/test_sql_rls.py (raw SELECT, INSERT, UPDATE of one table) and
test_sql_copy.py (COPY): here every tenant table, DELETE, Core statements the ORM filter
never sees, ORM writes that skip the unit of work's own check, how units of work open, and
raw SQL that rewrites the tenant settings (the policies trust only a tenant signed for the
backend, with a key the application role cannot read).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy import exc as sa_exc

from edu_domain.errors import ValidationError
from edu_domain.model import EducationalContent, Organization, User
from edu_domain.query import F, Query
from edu_domain.services import Scope
from edu_infra.memory import InMemoryUnitOfWorkFactory
from edu_infra.sqlalchemy import SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.rls import sign
from edu_infra.sqlalchemy.tables import TABLES
from edu_infra.testing.harness import new_content, new_profile, new_session, new_user
from tests.reliability.conftest import Stack, postgres_stack
from tests.sql_harness import PostgresDatabase

pytestmark = pytest.mark.postgres

TENANT_TABLES = [t for cls, t in TABLES.items() if cls is not Organization]


@pytest.fixture
async def stack(pg: PostgresDatabase) -> AsyncIterator[Stack]:
    async with postgres_stack() as running:
        yield running


async def _populated(stack: Stack) -> tuple[Organization, Organization]:
    """`mine` has nothing but itself; `theirs` has a row in every tenant table."""
    mine, theirs = await stack.org("Mine"), await stack.org("Theirs")
    user = new_user(theirs)
    async with stack.factory(tenant=theirs.id) as uow:
        await uow.add(user)
        await uow.add(new_profile(user))
        await uow.add(new_session(user, stack.clock))
        await uow.add(new_content(theirs, user))
        await uow.commit()
    await stack.core.auth.request_password_reset(
        Scope.system(theirs.id), user.email
    )  # a user_token
    return mine, theirs


async def _owner_rows(pg: PostgresDatabase) -> dict[str, list[tuple[object, ...]]]:
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    try:
        return {
            t.name: sorted(tuple(r) for r in await owner.fetch(f"SELECT * FROM {t.name}"))
            for t in TABLES.values()
        }
    finally:
        await owner.close()


async def test_every_tenant_table_hides_refuses_and_protects_foreign_rows_from_raw_sql(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, theirs = await _populated(stack)
    before = await _owner_rows(pg)
    assert all(before[t.name] for t in TENANT_TABLES), "every tenant table has a foreign row"
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        for table in TENANT_TABLES:
            name = table.name
            count = await session.execute(text(f"SELECT count(*) FROM {name}"))
            assert count.scalar_one() == 0, name
            targeted = await session.execute(
                text(f"SELECT count(*) FROM {name} WHERE organization_id = :o"), {"o": theirs.id}
            )
            assert targeted.scalar_one() == 0, name
            touched = await session.execute(text(f"UPDATE {name} SET version = version + 1"))
            assert touched.rowcount == 0, name
            removed = await session.execute(text(f"DELETE FROM {name}"))
            assert removed.rowcount == 0, name
        orgs = await session.execute(
            text("DELETE FROM organizations WHERE id = :o"), {"o": theirs.id}
        )
        assert orgs.rowcount == 0
        renamed = await session.execute(text("UPDATE organizations SET name = 'pwned'"))
        assert renamed.rowcount == 1  # its own row only
        await uow.rollback()
    assert await _owner_rows(pg) == before


async def test_core_statements_the_orm_filter_never_sees_are_still_confined(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, theirs = await _populated(stack)
    before = await _owner_rows(pg)
    users = TABLES[User]
    content = TABLES[EducationalContent]
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        assert (await session.execute(select(users))).all() == []
        assert (await session.execute(select(func.count()).select_from(content))).scalar() == 0
        moved = await session.execute(
            update(users).where(users.c.organization_id == theirs.id).values(full_name="pwned")
        )
        assert moved.rowcount == 0
        gone = await session.execute(delete(content).where(content.c.organization_id == theirs.id))
        assert gone.rowcount == 0
        await uow.commit()
    assert await _owner_rows(pg) == before


async def test_crafted_queries_naming_another_tenant_find_nothing(stack: Stack) -> None:
    mine, theirs = await _populated(stack)
    crafted = [
        Query.where(organization_id=theirs.id),
        Query.where(F("organization_id").in_([mine.id, theirs.id])),
        Query.where(F("organization_id").ne(mine.id)),
        Query.where(F("organization_id").is_null() | F("organization_id").eq(theirs.id)),
    ]
    async with stack.factory(tenant=mine.id) as uow:
        for query in crafted:
            assert (await uow.find(User, query, include_deleted=True)).items == ()
            assert await uow.count(EducationalContent, query, include_deleted=True) == 0


async def test_an_orm_insert_that_skips_the_unit_of_works_check_is_refused_by_the_database(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, theirs = await _populated(stack)
    before = await _owner_rows(pg)
    intruder = new_user(theirs)
    intruder.created_at = intruder.updated_at = stack.clock.now()
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        session.add(intruder)  # straight into the session: no TenantViolation check
        with pytest.raises(sa_exc.DBAPIError, match="row-level security"):
            await session.flush()
    assert await _owner_rows(pg) == before


async def test_reading_across_tenants_takes_an_explicitly_unscoped_unit_of_work(
    stack: Stack,
) -> None:
    mine, theirs = await _populated(stack)
    factory = stack.factory
    for tenant in (None, "", str(theirs.id), theirs.id.int, uuid.UUID(int=0).hex):
        with pytest.raises(ValidationError):
            factory(tenant=tenant)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        factory()  # type: ignore[call-arg]
    memory = InMemoryUnitOfWorkFactory()
    with pytest.raises(ValidationError):
        memory(tenant=None)  # type: ignore[arg-type]
    async with factory(tenant=mine.id) as uow:
        assert await uow.count(User) == 0
    async with factory.unscoped() as uow:
        assert await uow.count(User) == 1
        session = uow.session  # type: ignore[attr-defined]
        assert (await session.execute(text("SELECT count(*) FROM users"))).scalar_one() == 1


async def test_a_tenant_unit_of_work_that_raised_leaves_no_tenant_on_the_pooled_connection(
    pg: PostgresDatabase,
) -> None:
    async with postgres_stack(pool_size=1, max_overflow=0) as stack:
        mine, _ = await _populated(stack)

        async def fail_inside() -> None:
            async with stack.factory(tenant=mine.id) as uow:
                await uow.count(User)
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            await fail_inside()
        async with stack.database.engine.connect() as conn:  # type: ignore[union-attr]
            tenant = await conn.execute(text("SELECT current_setting('app.tenant_id', true)"))
            unscoped = await conn.execute(text("SELECT current_setting('app.unscoped', true)"))
            users = await conn.execute(text("SELECT count(*) FROM users"))
            assert tenant.scalar_one() in (None, "")
            assert unscoped.scalar_one() in (None, "", "off")
            assert users.scalar_one() == 0


async def test_raw_sql_cannot_switch_the_tenant_setting(stack: Stack) -> None:
    mine, theirs = await _populated(stack)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        await session.execute(
            text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(theirs.id)}
        )
        seen = await session.execute(text("SELECT count(*) FROM users"))
        assert seen.scalar_one() == 0


async def _switch(session: Any, **settings: str) -> None:
    """Raw SQL rewriting the transaction-local `app.*` settings, as an intruder would."""
    for name, value in settings.items():
        await session.execute(
            text("SELECT set_config(:name, :value, true)"), {"name": f"app.{name}", "value": value}
        )


async def _scalar(session: Any, sql: str, **params: Any) -> Any:
    return (await session.execute(text(sql), params)).scalar_one()


async def _insert_refused(session: Any, org: Organization, stack: Stack) -> None:
    """An ORM insert of `org`'s user, straight into the session: RLS refuses it."""
    intruder = new_user(org)
    intruder.created_at = intruder.updated_at = stack.clock.now()
    session.add(intruder)
    with pytest.raises(sa_exc.DBAPIError, match="row-level security"):
        await session.flush()


def _forged_proof(scope: str, pid: int, started: str, key: bytes) -> str:
    """A proof of the right shape for this very transaction, under `key`."""
    return sign(f"proof:{scope}:{pid}:{started}", key)


@pytest.mark.parametrize("forgery", ["absent", "zeros", "garbage", "wrong key", "own tenant's"])
async def test_a_tenant_without_a_valid_proof_sees_nothing_and_cannot_insert(
    stack: Stack, pg: PostgresDatabase, forgery: str
) -> None:
    mine, theirs = await _populated(stack)
    before = await _owner_rows(pg)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        pid = await _scalar(session, "SELECT pg_backend_pid()")
        started = await _scalar(session, "SELECT extract(epoch from transaction_timestamp())::text")
        proof = {
            "absent": "",
            "zeros": "0" * 64,
            "garbage": "' OR true --",
            "wrong key": _forged_proof(str(theirs.id), pid, started, secrets.token_bytes(32)),
            "own tenant's": await _scalar(session, "SELECT current_setting('app.tenant_proof')"),
        }[forgery]
        await _switch(session, tenant_id=str(theirs.id), tenant_proof=proof)
        for table in TABLES.values():
            assert await _scalar(session, f"SELECT count(*) FROM {table.name}") == 0, table.name
        await _insert_refused(session, theirs, stack)
    assert await _owner_rows(pg) == before


async def test_a_proof_read_in_one_transaction_is_refused_in_another(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, theirs = await _populated(stack)
    before = await _owner_rows(pg)
    async with stack.factory(tenant=theirs.id) as victim, stack.factory(tenant=mine.id) as uow:
        stolen_from = victim.session  # type: ignore[attr-defined]
        stolen = await _scalar(stolen_from, "SELECT current_setting('app.tenant_proof')")
        session = uow.session  # type: ignore[attr-defined]
        await _switch(session, tenant_id=str(theirs.id), tenant_proof=stolen)
        assert await _scalar(session, "SELECT count(*) FROM users") == 0
        assert await _scalar(session, "SELECT count(*) FROM organizations") == 0
        await _insert_refused(session, theirs, stack)
    assert await _owner_rows(pg) == before


async def test_the_unscoped_flag_without_a_valid_proof_reads_nothing(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, _ = await _populated(stack)
    async with stack.factory.unscoped() as system, stack.factory(tenant=mine.id) as uow:
        stolen = await _scalar(
            system.session,  # type: ignore[attr-defined]
            "SELECT current_setting('app.tenant_proof')",
        )
        session = uow.session  # type: ignore[attr-defined]
        for proof in (None, "", "0" * 64, stolen):  # None: keep this tenant's proof
            await _switch(session, unscoped="on")
            if proof is not None:
                await _switch(session, tenant_proof=proof)
            assert await _scalar(session, "SELECT count(*) FROM users") == 0
            assert await _scalar(session, "SELECT count(*) FROM organizations") <= 1  # its own
            await _switch(session, tenant_id="")
            assert await _scalar(session, "SELECT count(*) FROM users") == 0
    async with stack.database.engine.connect() as conn:  # type: ignore[union-attr]
        await _switch(conn, unscoped="on", tenant_id=str(mine.id))
        assert await _scalar(conn, "SELECT count(*) FROM organizations") == 0


async def test_the_application_role_cannot_read_or_change_the_key(stack: Stack) -> None:
    """The key material and the signing check belong to the owner; only the two entry
    points of the policies are callable, and they reveal nothing but a verdict."""
    attempts = [
        "SELECT * FROM edu_rls_key",
        "SELECT ipad FROM edu_rls_key",
        "UPDATE edu_rls_key SET ipad = opad",
        "DELETE FROM edu_rls_key",
        "INSERT INTO edu_rls_key (id, ipad, opad) VALUES (false, '', '')",
        "TRUNCATE edu_rls_key",
        "SELECT * FROM edu_stage_users",
        "DELETE FROM edu_stage_users",
        "UPDATE edu_stage_users SET version = 2",
        "INSERT INTO edu_stage_users (edu_xact) VALUES ('1')",
        "CREATE OR REPLACE FUNCTION edu_tenant() RETURNS uuid LANGUAGE sql"
        " AS $$ SELECT NULL::uuid $$",
        "ALTER TABLE users NO FORCE ROW LEVEL SECURITY",
        "ALTER POLICY tenant_isolation ON users USING (true)",
    ]
    for sql in attempts:
        async with stack.database.engine.connect() as conn:  # type: ignore[union-attr]
            with pytest.raises(sa_exc.DBAPIError, match=r"permission denied|must be owner"):
                await conn.execute(text(sql))
    async with stack.database.engine.connect() as conn:  # type: ignore[union-attr]
        assert (await conn.execute(text("SELECT edu_tenant(), edu_unscoped()"))).one() == (
            None,
            False,
        )


async def test_the_bound_statement_path_signs_the_tenant_too(pg: PostgresDatabase) -> None:
    """At a non-default isolation level the settings cannot ride on the BEGIN: they go out
    as a separate bound statement, signed all the same."""
    async with postgres_stack() as stack:
        mine, theirs = await _populated(stack)
        database = stack.database
        assert database is not None
        database.engine = database.engine.execution_options(isolation_level="REPEATABLE READ")
        factory = SqlUnitOfWorkFactory(database, clock=stack.clock)
        async with factory(tenant=theirs.id) as uow:
            session = uow.session  # type: ignore[attr-defined]
            assert await _scalar(session, "SHOW transaction_isolation") == "repeatable read"
            assert await uow.count(User) == 1
            await _switch(session, tenant_id=str(mine.id))
            assert await _scalar(session, "SELECT count(*) FROM organizations") == 0
        async with factory.unscoped() as uow:
            assert await uow.count(User) == 1


async def test_a_stolen_proof_is_refused_later_and_its_connection_is_not_reused(
    pg: PostgresDatabase,
) -> None:
    async with postgres_stack(pool_size=1, max_overflow=0) as stack:
        mine, theirs = await _populated(stack)
        async with stack.factory(tenant=theirs.id) as victim:
            session = victim.session  # type: ignore[attr-defined]
            stolen = await _scalar(session, "SELECT current_setting('app.tenant_proof')")
            backend = await _scalar(session, "SELECT pg_backend_pid()")
        async with stack.factory(tenant=mine.id) as uow:
            session = uow.session  # type: ignore[attr-defined]
            # the pool holds one connection, but the victim's was discarded: it ran raw SQL
            assert await _scalar(session, "SELECT pg_backend_pid()") != backend
            await _switch(session, tenant_id=str(theirs.id), tenant_proof=stolen)
            assert await _scalar(session, "SELECT count(*) FROM users") == 0
