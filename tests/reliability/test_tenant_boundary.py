"""Issue 11's attacks on the tenant boundary, as raw SQL with the application role.

1. Signatures harvested from `pg_stat_activity` (the same text a server log with
   `log_statement = 'all'` records) and replayed: in the harvester's transaction, and
   later on the very backend that sent them.
2. Objects that would shadow what edu-core's statements name (temp tables, tables, types,
   functions, operators, schemas): the application role can create none of them.
3. Session state left on a pooled connection by raw SQL (settings, prepared statements,
   cursors, advisory locks, LISTEN, roles): the next unit of work never sees it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc

from edu_domain.errors import AlreadyExists
from edu_domain.model import Organization, User
from edu_domain.services import NewUser, Scope
from edu_infra.sqlalchemy.rls import SIGNER_INFO, ConnectionSigner
from edu_infra.testing.harness import new_user
from tests.reliability.conftest import Stack, postgres_stack
from tests.sql_harness import APP_ROLE, PostgresDatabase

pytestmark = pytest.mark.postgres

_ENTER = re.compile(r"edu_enter\('(?P<scope>[^']*)', '(?P<signature>[0-9a-f]{64})'\)")


@pytest.fixture
async def stack(pg: PostgresDatabase) -> AsyncIterator[Stack]:
    async with postgres_stack(pool_size=1, max_overflow=0) as running:
        yield running


async def _orgs_with_a_user(stack: Stack) -> tuple[Organization, Organization]:
    mine, theirs = await stack.org("Mine"), await stack.org("Theirs")
    async with stack.factory(tenant=theirs.id) as uow:
        await uow.add(new_user(theirs))
        await uow.commit()
    return mine, theirs


def _new(email: str, username: str) -> NewUser:
    return NewUser(email=email, username=username, password="a long enough password")


async def _scalar(session: Any, sql: str, **params: Any) -> Any:
    return (await session.execute(text(sql), params)).scalar_one()


async def _app_connection(pg: PostgresDatabase) -> asyncpg.Connection:
    """A raw connection as the application role: what injected SQL anywhere can do."""
    return await asyncpg.connect(pg.dsn(pg.app_url))


async def _harvest(pg: PostgresDatabase) -> list[tuple[str, str, int]]:
    """Every `edu_enter(scope, signature)` other backends show, with their pid."""
    spy = await _app_connection(pg)
    try:
        rows = await spy.fetch(
            "SELECT pid, query FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        )
    finally:
        await spy.close()
    return [
        (match["scope"], match["signature"], row["pid"])
        for row in rows
        if (match := _ENTER.search(row["query"] or ""))
    ]


async def _open_transaction(uow: Any) -> None:
    """Open the unit of work's transaction and stop there: its BEGIN is the backend's
    last statement, as when the victim's next statement has not been sent yet."""
    await uow.rows.driver()


async def _replay_refused(session: Any, scope: str, signature: str) -> None:
    with pytest.raises(sa_exc.DBAPIError, match="tenant signature refused"):
        await session.execute(
            text("SELECT edu_enter(:scope, :signature)"), {"scope": scope, "signature": signature}
        )


async def test_a_harvested_signature_is_refused_in_the_harvesters_transaction(
    pg: PostgresDatabase,
) -> None:
    async with postgres_stack() as stack:
        mine, theirs = await _orgs_with_a_user(stack)
        async with stack.factory(tenant=theirs.id) as victim:
            await _open_transaction(victim)
            harvested = await _harvest(pg)
            assert [scope for scope, _, _ in harvested] == [str(theirs.id)]
            async with stack.factory(tenant=mine.id) as uow:
                session = uow.session  # type: ignore[attr-defined]
                assert await _scalar(session, "SELECT count(*) FROM users") == 0
                _, signature, _ = harvested[0]
                await _replay_refused(session, str(theirs.id), signature)
        async with stack.factory(tenant=mine.id) as uow:
            assert await uow.count(User) == 0


async def test_a_harvested_signature_is_refused_later_on_the_backend_that_sent_it(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, theirs = await _orgs_with_a_user(stack)
    async with stack.factory(tenant=theirs.id) as victim:
        await _open_transaction(victim)
        [(scope, signature, victim_pid)] = await _harvest(pg)
        assert await victim.count(User) == 1
    # one pooled connection: the intruder's unit of work lands on the victim's backend
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        assert await _scalar(session, "SELECT pg_backend_pid()") == victim_pid
        await _replay_refused(session, scope, signature)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        await _scalar(session, "SELECT 1")
        for begin in ("COMMIT", "BEGIN"):  # a transaction of the intruder's own making
            await session.execute(text(begin))
        await _replay_refused(session, scope, signature)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        updated = await session.execute(
            text("UPDATE users SET full_name = 'pwned' WHERE organization_id = :o"),
            {"o": theirs.id},
        )
        assert updated.rowcount == 0
    async with stack.factory(tenant=theirs.id) as uow:
        [user] = (await uow.find(User)).items
        assert user.full_name != "pwned"


async def test_a_harvested_unscoped_signature_is_refused(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, theirs = await _orgs_with_a_user(stack)
    await stack.core.organizations.get_by_slug(theirs.slug)  # the login path: unscoped
    async with stack.factory.unscoped() as system:
        await _open_transaction(system)
        [(scope, signature, _)] = await _harvest(pg)
        assert scope == "*"
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        await _replay_refused(session, scope, signature)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        await session.execute(text("SELECT set_config('app.unscoped', 'on', true)"))
        await session.execute(text("SELECT set_config('app.tenant_id', '', true)"))
        assert await _scalar(session, "SELECT count(*) FROM organizations") == 0


async def test_a_proof_is_worthless_in_the_next_transaction_of_its_own_backend(
    stack: Stack,
) -> None:
    mine, _ = await _orgs_with_a_user(stack)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        proof = await _scalar(session, "SELECT current_setting('app.tenant_proof')")
        assert await _scalar(session, "SELECT count(*) FROM organizations") == 1
        for begin in ("COMMIT", "BEGIN"):
            await session.execute(text(begin))
        for name, value in (("tenant_id", str(mine.id)), ("tenant_proof", proof)):
            await session.execute(
                text("SELECT set_config(:n, :v, true)"), {"n": f"app.{name}", "v": value}
            )
        assert await _scalar(session, "SELECT count(*) FROM organizations") == 0


# ------------------------------------------------------------------ shadowing objects

SHADOWS = [
    "CREATE TEMP TABLE users (LIKE public.users INCLUDING DEFAULTS)",
    "CREATE TEMP TABLE user_profiles (LIKE public.user_profiles)",
    "CREATE TEMP TABLE user_tokens (LIKE public.user_tokens)",
    "CREATE TEMP VIEW organizations AS SELECT * FROM public.organizations",
    "CREATE TEMP SEQUENCE users",
    "CREATE TABLE public.users_shadow (id int)",
    "CREATE VIEW public.users_shadow AS SELECT 1",
    "CREATE SCHEMA intruder",
    "CREATE TYPE public.uuid_shadow AS (x int)",
    "CREATE FUNCTION public.edu_verified(x int) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
    "CREATE FUNCTION pg_temp.lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1'",
    "CREATE OPERATOR public.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = uuid_ne)",
    "CREATE EXTENSION IF NOT EXISTS pgcrypto",
]


@pytest.mark.parametrize("statement", SHADOWS)
async def test_the_application_role_cannot_create_what_would_shadow_edu_cores_objects(
    stack: Stack, statement: str
) -> None:
    mine, _ = await _orgs_with_a_user(stack)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        with pytest.raises(sa_exc.DBAPIError, match="permission denied"):
            await session.execute(text(statement))


async def test_a_register_after_shadowing_attempts_lands_in_the_real_table(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, theirs = await _orgs_with_a_user(stack)
    for statement in SHADOWS[:3]:
        async with stack.factory(tenant=mine.id) as uow:
            session = uow.session  # type: ignore[attr-defined]
            with pytest.raises(sa_exc.DBAPIError):
                await session.execute(text(statement))
    await stack.core.users.register(Scope.system(theirs.id), _new("new@theirs.example", "newbie"))
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    try:
        emails = await owner.fetch(
            "SELECT email FROM public.users WHERE organization_id = $1", theirs.id
        )
    finally:
        await owner.close()
    assert "new@theirs.example" in {row["email"] for row in emails}
    async with stack.factory(tenant=mine.id) as uow:
        assert await uow.count(User) == 0


async def test_no_temp_or_create_privilege_and_a_pinned_search_path(
    stack: Stack, pg: PostgresDatabase
) -> None:
    mine, _ = await _orgs_with_a_user(stack)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        privileges = await session.execute(
            text(
                "SELECT has_database_privilege(current_database(), 'TEMP'),"
                " has_database_privilege(current_database(), 'CREATE'),"
                " bool_or(has_schema_privilege(s, 'CREATE'))"
                " FROM unnest(current_schemas(true)) s"
            )
        )
        assert privileges.one() == (False, False, False)
        assert await _scalar(session, "SHOW search_path") == '"public", pg_temp'
    assert await stack.factory.boundary_problems() == []  # type: ignore[attr-defined]


async def test_health_names_a_temp_privilege_the_role_still_has(
    stack: Stack, pg: PostgresDatabase
) -> None:
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    privilege = f'TEMPORARY ON DATABASE "{pg.name}"'
    try:
        await owner.execute(f'GRANT {privilege} TO "{APP_ROLE}"')
        problems = await stack.factory.boundary_problems()  # type: ignore[attr-defined]
        await owner.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        both = await stack.factory.boundary_problems()  # type: ignore[attr-defined]
    finally:
        await owner.execute(f'REVOKE {privilege} FROM "{APP_ROLE}"')
        await owner.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        await owner.close()
    assert len(problems) == 1 and "TEMP" in problems[0]
    assert len(both) == 2 and any("CREATE" in p and "public" in p for p in both)
    assert await stack.factory.boundary_problems() == []  # type: ignore[attr-defined]


# ------------------------------------------------------------------ session state

LEFT_BEHIND = {
    "read only by default": "SET default_transaction_read_only = on",
    "statement timeout": "SET statement_timeout = 1",
    "search path": "SET search_path = pg_catalog",
    "lock timeout": "SET lock_timeout = 1",
    "prepared statement": "PREPARE edu_evil AS SELECT count(*) FROM users",
    "advisory lock": "SELECT pg_advisory_lock(4242)",
    "listen": "LISTEN edu_evil",
    "held cursor": "DECLARE edu_evil CURSOR WITH HOLD FOR SELECT 1",
    "tenant setting": "SET app.tenant_id = '00000000-0000-0000-0000-000000000000'",
    "row security off": "SET row_security = off",
}


@pytest.mark.parametrize("left", sorted(LEFT_BEHIND))
async def test_session_state_raw_sql_leaves_never_reaches_the_next_unit_of_work(
    stack: Stack, pg: PostgresDatabase, left: str
) -> None:
    mine, theirs = await _orgs_with_a_user(stack)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        await session.execute(text(LEFT_BEHIND[left]))
        await uow.commit()
    # a clean unit of work of another tenant, on the one pooled connection
    async with stack.factory(tenant=theirs.id) as uow:
        assert await uow.count(User) == 1
        await uow.add(new_user(theirs))
        await uow.commit()
    async with stack.factory(tenant=theirs.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        state = await session.execute(
            text(
                "SELECT current_setting('default_transaction_read_only'),"
                " current_setting('statement_timeout'), current_setting('row_security'),"
                " (SELECT count(*) FROM pg_prepared_statements WHERE name = 'edu_evil'),"
                " (SELECT count(*) FROM pg_cursors WHERE name = 'edu_evil'),"
                " (SELECT count(*) FROM pg_listening_channels()),"
                " (SELECT count(*) FROM users)"
            )
        )
        assert state.one() == ("off", "0", "on", 0, 0, 0, 2)
    spy = await _app_connection(pg)
    try:
        advisory = await spy.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
    finally:
        await spy.close()
    assert advisory == 0


@pytest.mark.parametrize(
    "statement",
    ["SET ROLE postgres", "SET SESSION AUTHORIZATION postgres", "SET ROLE pg_read_all_data"],
)
async def test_raw_sql_cannot_become_another_role(stack: Stack, statement: str) -> None:
    mine, _ = await _orgs_with_a_user(stack)
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        with pytest.raises(sa_exc.DBAPIError, match="permission denied"):
            await session.execute(text(statement))
    async with stack.factory(tenant=mine.id) as uow:
        session = uow.session  # type: ignore[attr-defined]
        member_of = await _scalar(
            session,
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
            " WHERE r.rolname = current_user",
        )
        assert member_of == 0


async def test_units_of_work_without_raw_sql_keep_their_connection_and_add_no_round_trip(
    stack: Stack,
) -> None:
    """One pooled connection serves every clean unit of work, and its vxid prediction
    holds: no refused BEGIN, so no extra round trip, across reads, writes and failures."""
    mine, theirs = await _orgs_with_a_user(stack)
    database = stack.database
    assert database is not None
    signers: list[ConnectionSigner] = []

    @event.listens_for(database.engine.sync_engine, "checkout")
    def _seen(_dbapi: Any, record: Any, _proxy: Any) -> None:
        signers.append(record.info[SIGNER_INFO])

    for round_ in range(5):
        async with stack.factory(tenant=theirs.id) as uow:
            assert await uow.count(User) == 1 + round_
            await uow.add(new_user(theirs))
            await uow.commit()
        async with stack.factory(tenant=mine.id) as uow:
            await uow.add(new_user(mine))
            await uow.rollback()
        async with stack.factory.unscoped() as uow:
            assert await uow.count(Organization) == 2
        taken = await _first_email(stack, theirs)
        with pytest.raises(AlreadyExists):
            await stack.core.users.register(Scope.system(theirs.id), _new(taken, f"dup{round_}"))
    assert len({id(s) for s in signers}) == 1, "one connection, never discarded"
    assert signers[0].resyncs == 0


async def _first_email(stack: Stack, org: Organization) -> str:
    async with stack.factory(tenant=org.id) as uow:
        return str((await uow.find(User)).items[0].email)


async def test_a_mispredicted_transaction_id_is_learnt_in_one_retry(stack: Stack) -> None:
    """Statements outside edu-core's transactions move a backend's numbering on: the first
    refusal names the real vxid, the unit of work goes through, and the next needs none."""
    mine, _ = await _orgs_with_a_user(stack)
    database = stack.database
    assert database is not None
    signers: list[ConnectionSigner] = []

    @event.listens_for(database.engine.sync_engine, "checkout")
    def _seen(_dbapi: Any, record: Any, _proxy: Any) -> None:
        signers.append(record.info[SIGNER_INFO])

    async with stack.factory(tenant=mine.id) as uow:
        assert await uow.count(Organization) == 1
    [signer] = {id(s): s for s in signers}.values()
    signer.next_local += 7  # as if the guess ran ahead; behind works the same way
    for _ in range(3):
        async with stack.factory(tenant=mine.id) as uow:
            assert await uow.count(Organization) == 1
    assert signer.resyncs == 1
