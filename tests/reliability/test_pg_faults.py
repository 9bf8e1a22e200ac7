"""PostgreSQL faults: terminated backends, unreachable or silent servers, an exhausted pool.

Whatever fails, the caller gets a domain error (RetryableError or UnavailableError), no
partial write is ever visible, the retry helper then succeeds, and nothing hangs beyond the
configured timeouts. Bounds are hang detectors with a generous margin, not speed targets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from edu_domain.errors import RetryableError, UnavailableError
from edu_domain.model import Organization, User, UserProfile
from edu_domain.model.session import UserToken
from edu_domain.services import NewUser, Scope
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory, retrying
from edu_infra.sqlalchemy.connection import UowConnection
from edu_infra.sqlalchemy.pg_rows import PgRows
from edu_infra.sqlalchemy.rls import SIGNER_INFO
from edu_infra.testing.harness import new_user
from tests.reliability.conftest import Stack, postgres_stack
from tests.reliability.netfaults import closed_port, freezable_proxy, silent_listener
from tests.sql_harness import RLS_KEY, PostgresDatabase

pytestmark = pytest.mark.postgres

MARGIN = 10.0  # seconds on top of every configured timeout before we call it a hang


@pytest.fixture
async def stack(pg: PostgresDatabase) -> AsyncIterator[Stack]:
    async with postgres_stack(pool_size=2, max_overflow=0) as running:
        yield running


@pytest.fixture
async def admin(pg: PostgresDatabase) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(pg.dsn(pg.owner_url))
    yield connection
    await connection.close()


async def terminate(admin: asyncpg.Connection, pid: int) -> None:
    """Terminate a backend and wait until it is really gone."""
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    deadline = time.monotonic() + 5
    while await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
        assert time.monotonic() < deadline, f"backend {pid} survived pg_terminate_backend"
        await asyncio.sleep(0.01)


async def owner_counts(admin: asyncpg.Connection) -> dict[str, int]:
    """Rows per table as the owner sees them (no RLS): what is really committed."""
    tables = ("organizations", "users", "user_profiles", "user_tokens")
    return {t: await admin.fetchval(f"SELECT count(*) FROM {t}") for t in tables}


def _pid(connection: Any) -> int:
    pid: int = connection.connection.driver_connection.get_server_pid()
    return pid


def _newcomer(name: str) -> NewUser:
    return NewUser(email=f"{name}@example.org", username=name, password="correct horse battery")


async def test_terminated_in_the_middle_of_a_use_case_nothing_is_written_and_a_retry_succeeds(
    stack: Stack, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registration writes user, profile and token in one UoW; kill it between the first two."""
    org = await stack.org()
    before = await owner_counts(admin)
    kills: list[int] = []
    insert_row = PgRows.insert  # PostgreSQL inserts go to the driver directly

    async def kill_before_profile(rows: PgRows, entity: Any) -> None:
        if isinstance(entity, UserProfile) and not kills:
            kills.append((await rows.driver()).get_server_pid())
            await terminate(admin, kills[0])
        await insert_row(rows, entity)

    monkeypatch.setattr(PgRows, "insert", kill_before_profile)

    with pytest.raises(RetryableError):
        await stack.core.users.register(Scope.system(org.id), _newcomer("ada"))
    assert kills and await owner_counts(admin) == before

    account = await retrying(
        lambda: stack.core.users.register(Scope.system(org.id), _newcomer("ada"))
    )
    after = await owner_counts(admin)
    assert {k: after[k] - before[k] for k in after} == {
        "organizations": 0,
        "users": 1,
        "user_profiles": 1,
        "user_tokens": 1,
    }
    async with stack.factory(tenant=org.id) as uow:
        assert (await uow.require(User, account.user.id)).email == "ada@example.org"
    assert len(kills) == 1


async def test_terminated_after_the_writes_and_before_commit_nothing_is_visible(
    stack: Stack, admin: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await stack.org()
    kills: list[int] = []
    commit = UowConnection.commit  # the unit of work commits on its own connection

    async def kill_before_commit(holder: UowConnection) -> None:
        if not kills:
            kills.append(holder._adapter().driver_connection.get_server_pid())
            await terminate(admin, kills[0])
        await commit(holder)

    monkeypatch.setattr(UowConnection, "commit", kill_before_commit)

    async def write_three() -> None:
        async with stack.factory(tenant=org.id) as uow:
            await uow.add_all([new_user(org) for _ in range(3)])
            await uow.flush()
            await uow.commit()

    with pytest.raises(RetryableError):
        await write_three()
    assert kills and (await owner_counts(admin))["users"] == 0
    await retrying(write_three)
    assert (await owner_counts(admin))["users"] == 3


async def test_terminated_while_commit_is_in_progress_nothing_is_visible(
    stack: Stack, admin: asyncpg.Connection
) -> None:
    """A deferred trigger makes COMMIT sleep server-side; the backend dies inside it."""
    org = await stack.org()

    async def slow_commit() -> None:
        async with stack.factory(tenant=org.id) as uow:
            session = uow.session  # type: ignore[attr-defined]
            await session.execute(text("SELECT set_config('edu_test.slow_commit', 'on', true)"))
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await uow.add(new_user(org, username="committing"))
            committing = asyncio.create_task(uow.commit())
            deadline = time.monotonic() + 5
            sql = "SELECT query FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'"
            while (await admin.fetchval(sql, pid)) is None:
                assert time.monotonic() < deadline, "COMMIT never reached the deferred trigger"
                assert not committing.done(), "COMMIT finished before it could be interrupted"
                await asyncio.sleep(0.01)
            assert (await admin.fetchval(sql, pid)).upper().startswith("COMMIT")
            await terminate(admin, pid)
            await committing

    with pytest.raises(RetryableError):
        await asyncio.wait_for(slow_commit(), 10 + MARGIN)
    assert (await owner_counts(admin))["users"] == 0

    async def register_again() -> None:
        async with stack.factory(tenant=org.id) as uow:
            await uow.add(new_user(org, username="committing"))
            await uow.commit()

    await retrying(register_again)
    assert (await owner_counts(admin))["users"] == 1


async def test_the_pool_replaces_a_connection_killed_while_idle(
    pg: PostgresDatabase, admin: asyncpg.Connection
) -> None:
    async with postgres_stack(pool_size=1, max_overflow=0) as stack:
        org = await stack.org()
        pids: list[int] = []
        engine = stack.database.engine  # type: ignore[union-attr]

        @event.listens_for(engine.sync_engine, "checkout")
        def _checked_out(_dbapi: Any, record: Any, _proxy: Any) -> None:
            pids.append(record.info[SIGNER_INFO].server_pid)  # no raw SQL: it stays pooled

        for _ in range(2):
            async with stack.factory(tenant=org.id) as uow:
                assert await uow.count(User) == 0
            if len(pids) == 1:
                await terminate(admin, pids[0])  # idle in the pool: pre-ping must notice
        assert pids[0] != pids[-1]  # the dead one was replaced
        assert await stack.database.health_check()  # type: ignore[union-attr]


def _url_at(pg: PostgresDatabase, port: int) -> str:
    return make_url(pg.app_url).set(host="127.0.0.1", port=port).render_as_string(False)


async def _first_read(database: Database) -> None:
    factory = SqlUnitOfWorkFactory(database)
    async with factory.unscoped() as uow:
        await uow.count(Organization)


@pytest.mark.parametrize("where", ["closed port", "silent listener"])
async def test_an_unreachable_server_at_start_up_is_a_prompt_domain_error(
    pg: PostgresDatabase, where: str
) -> None:
    connect_timeout = 1.0
    async with silent_listener() as silent_port:
        port = closed_port() if where == "closed port" else silent_port
        database = Database(
            DatabaseSettings(
                url=_url_at(pg, port), connect_timeout=connect_timeout, rls_key=RLS_KEY
            )
        )
        try:
            started = time.monotonic()
            with pytest.raises((UnavailableError, RetryableError)):
                # pre-ping may retry a connect once: two connect timeouts at most
                await asyncio.wait_for(_first_read(database), 2 * connect_timeout + MARGIN)
            assert time.monotonic() - started < 2 * connect_timeout + MARGIN
            assert await asyncio.wait_for(database.health_check(), connect_timeout + MARGIN) is (
                False
            )
        finally:
            await database.dispose()


async def test_a_server_that_stops_answering_mid_run_is_a_bounded_domain_error(
    pg: PostgresDatabase,
) -> None:
    """Regression: with no command timeout, a read on a hung connection waited forever."""
    command_timeout = connect_timeout = 1.0
    async with freezable_proxy("127.0.0.1", make_url(pg.app_url).port or 5432) as proxy:
        database = Database(
            DatabaseSettings(
                url=_url_at(pg, proxy.port),
                rls_key=RLS_KEY,
                connect_timeout=connect_timeout,
                command_timeout=command_timeout,
                pool_size=1,
                max_overflow=0,
            )
        )
        factory = SqlUnitOfWorkFactory(database)
        try:
            async with factory.unscoped() as uow:
                assert await uow.count(Organization) == 0
                proxy.frozen = True  # mid-UoW: the connection is checked out
                with pytest.raises((UnavailableError, RetryableError)):
                    await asyncio.wait_for(uow.count(User), command_timeout + MARGIN)
            # the next unit of work: pre-ping, then a new connection, both time out
            bound = command_timeout + 2 * connect_timeout + MARGIN
            with pytest.raises((UnavailableError, RetryableError)):
                await asyncio.wait_for(_first_read(database), bound)
            proxy.frozen = False
            await asyncio.wait_for(_first_read(database), bound)  # and it recovers
        finally:
            proxy.frozen = False
            await database.dispose()


async def test_an_exhausted_pool_is_a_retryable_error_after_the_pool_timeout(
    pg: PostgresDatabase,
) -> None:
    pool_timeout = 0.5
    async with postgres_stack(pool_size=1, max_overflow=0, pool_timeout=pool_timeout) as stack:
        org = await stack.org()
        async with stack.factory(tenant=org.id) as holder:
            await holder.count(UserProfile)  # holds the only connection
            async with stack.factory(tenant=org.id) as starved:
                with pytest.raises(RetryableError):
                    await asyncio.wait_for(starved.count(UserToken), pool_timeout + MARGIN)
        async with stack.factory(tenant=org.id) as uow:
            assert await uow.count(UserToken) == 0
