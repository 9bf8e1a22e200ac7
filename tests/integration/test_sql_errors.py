"""Driver errors become domain errors; transient ones are retryable and retried."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from edu_domain.errors import (
    DomainError,
    RetryableError,
    UnavailableError,
    ValidationError,
)
from edu_domain.model import Organization, User
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory, retrying
from edu_infra.sqlalchemy.errors import translate
from edu_infra.testing.harness import Harness, new_user
from tests.sql_harness import RLS_KEY


async def _raised_by(database: Database, sql: str) -> BaseException:
    async with database.engine.connect() as conn:
        try:
            await conn.execute(text(sql))
        except sa_exc.DBAPIError as error:
            return error
    raise AssertionError(f"{sql} did not fail")


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("40001", RetryableError),  # serialization failure
        ("40P01", RetryableError),  # deadlock
        ("57P01", RetryableError),  # admin shutdown
        ("08006", RetryableError),  # connection failure
        ("22001", ValidationError),  # string too long
        ("XX000", DomainError),  # internal error: still a domain error
    ],
)
async def test_postgres_errors_translate_by_sqlstate(
    pg_db: Database, sqlstate: str, expected: type[DomainError]
) -> None:
    error = await _raised_by(
        pg_db, f"DO $$ BEGIN RAISE EXCEPTION 'boom' USING ERRCODE = '{sqlstate}'; END $$"
    )
    assert type(translate(error)) is expected or isinstance(translate(error), expected)


@pytest.mark.postgres
async def test_a_terminated_backend_is_retryable_and_the_unit_of_work_recovers(
    pg_harness: Harness, pg_owner: Database
) -> None:
    org = await pg_harness.make_org()
    async with pg_harness.uow(org) as uow:
        await uow.count(User)
        session = uow.session  # type: ignore[attr-defined]
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with pg_owner.engine.connect() as admin:
            await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(RetryableError):
            await uow.add(new_user(org))
        await uow.add(new_user(org))
        await uow.commit()
    async with pg_harness.uow(org) as uow:
        assert await uow.count(User) == 1


@pytest.mark.postgres
async def test_a_lock_wait_beyond_the_timeout_is_retryable(pg_harness: Harness) -> None:
    org = await pg_harness.make_org()
    user = await pg_harness.make_user(org)
    async with pg_harness.uow(org) as holder, pg_harness.uow(org) as waiter:
        (await holder.require(User, user.id)).rename("Holder")
        await holder.flush()
        (await waiter.require(User, user.id)).rename("Waiter")
        with pytest.raises(RetryableError):
            await waiter.commit()


@pytest.mark.postgres
async def test_an_unreachable_server_is_a_domain_error(pg_db: Database) -> None:
    url = pg_db.url.set(port=1).render_as_string(hide_password=False)
    database = Database(DatabaseSettings(url=url, connect_timeout=2, rls_key=RLS_KEY))
    try:
        assert await database.health_check() is False
        factory = SqlUnitOfWorkFactory(database)
        async with factory.unscoped() as uow:
            with pytest.raises((UnavailableError, RetryableError)):
                await uow.count(Organization)
    finally:
        await database.dispose()


async def test_sqlite_busy_database_is_retryable(sqlite_harness: Harness) -> None:
    org = await sqlite_harness.make_org()
    database: Database = sqlite_harness.factory.database  # type: ignore[attr-defined]
    slow = Database(DatabaseSettings(url=str(database.url), sqlite_busy_timeout_ms=50))
    try:
        factory = SqlUnitOfWorkFactory(slow, clock=sqlite_harness.clock)
        async with sqlite_harness.uow(org) as writer, factory(tenant=org.id) as blocked:
            await writer.add(new_user(org))
            with pytest.raises(RetryableError):
                await blocked.add(new_user(org))
    finally:
        await slow.dispose()


async def test_retrying_runs_the_block_again_until_it_succeeds() -> None:
    attempts: list[int] = []

    async def block() -> str:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise RetryableError("transient")
        return "done"

    assert await retrying(block, attempts=3, base_delay=0.001) == "done"
    assert len(attempts) == 3


async def test_retrying_gives_up_after_the_last_attempt_and_never_retries_other_errors() -> None:
    calls: list[str] = []

    async def transient() -> None:
        calls.append("t")
        raise RetryableError("still down")

    async def broken() -> None:
        calls.append("b")
        raise ValidationError("x", "bad")

    with pytest.raises(RetryableError):
        await retrying(transient, attempts=2, base_delay=0.001)
    with pytest.raises(ValidationError):
        await retrying(broken, attempts=5, base_delay=0.001)
    assert calls == ["t", "t", "b"]


@pytest.mark.postgres
async def test_retrying_recovers_a_unit_of_work_after_a_terminated_backend(
    pg_harness: Harness, pg_owner: Database
) -> None:
    org = await pg_harness.make_org()
    killed = asyncio.Event()

    async def register() -> None:
        async with pg_harness.uow(org) as uow:
            await uow.add(new_user(org, username="retried"))
            if not killed.is_set():
                killed.set()
                session = uow.session  # type: ignore[attr-defined]
                pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                async with pg_owner.engine.connect() as admin:
                    await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            await uow.commit()

    await retrying(register, attempts=3, base_delay=0.001)
    async with pg_harness.uow(org) as uow:
        assert await uow.count(User) == 1
