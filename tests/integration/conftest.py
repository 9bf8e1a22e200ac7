"""Fixtures for the SQL integration tests: a migrated PostgreSQL database and SQLite files."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edu_infra.memory import ManualClock, RecordingCommitListener, RecordingPublisher
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.testing.harness import Harness
from tests.sql_harness import RLS_KEY, PostgresDatabase, fresh_sqlite_url, postgres_database


@pytest.fixture
async def pg(postgres_url: str) -> PostgresDatabase:
    """The session's migrated PostgreSQL test database, emptied for this test."""
    database = await postgres_database(postgres_url)
    await database.truncate()
    return database


@pytest.fixture
async def pg_db(pg: PostgresDatabase) -> AsyncIterator[Database]:
    """An engine connected as the application role (row-level security applies)."""
    database = Database(DatabaseSettings(url=pg.app_url, lock_timeout_ms=2_000, rls_key=RLS_KEY))
    yield database
    await database.dispose()


@pytest.fixture
async def pg_owner(pg: PostgresDatabase) -> AsyncIterator[Database]:
    """An engine connected as the tables' owner (a superuser here: RLS does not apply)."""
    database = Database(DatabaseSettings(url=pg.owner_url, rls_key=RLS_KEY))
    yield database
    await database.dispose()


@pytest.fixture
async def one_conn(pg: PostgresDatabase) -> AsyncIterator[Database]:
    """A pool of exactly one connection, short timeout."""
    database = Database(
        DatabaseSettings(
            url=pg.app_url, pool_size=1, max_overflow=0, pool_timeout=2, rls_key=RLS_KEY
        )
    )
    yield database
    await database.dispose()


@pytest.fixture
async def sqlite_db() -> AsyncIterator[Database]:
    database = Database(DatabaseSettings(url=await fresh_sqlite_url()))
    yield database
    await database.dispose()


def make_harness(name: str, database: Database) -> Harness:
    clock, publisher, listener = ManualClock(), RecordingPublisher(), RecordingCommitListener()
    factory = SqlUnitOfWorkFactory(database, clock=clock, publisher=publisher, listeners=[listener])
    return Harness(name, factory, clock, publisher, listener, factory.relay)


@pytest.fixture
def pg_harness(pg_db: Database) -> Harness:
    return make_harness("postgres", pg_db)


@pytest.fixture
def sqlite_harness(sqlite_db: Database) -> Harness:
    return make_harness("sqlite", sqlite_db)
