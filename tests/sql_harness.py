"""Harnesses that run the unit-of-work contract suite on SQLite and PostgreSQL.

Migrating is the slow part, so it happens once per test session:
- SQLite: one migrated template file, copied to a fresh file for every test;
- PostgreSQL: one dedicated database (`edu_test_<random>`, dropped at exit), migrated as
  its owner, with the test RLS key stored; tests connect as the non-superuser application
  role (so row-level security applies) and the tables are truncated, as owner, before each
  test.
Every test gets its own engine on its own event loop, disposed at the end.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from edu_infra.memory import ManualClock, RecordingCommitListener, RecordingPublisher
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.migrate import upgrade_async
from edu_infra.sqlalchemy.tables import TABLES
from edu_infra.testing.harness import Harness

#: The application role of this test run: unique per run (runs share the server), dropped at
#: exit after the run's databases (a role is server-wide).
APP_ROLE = os.environ.get("EDU_TEST_APP_ROLE") or f"edu_app_test_{uuid.uuid4().hex[:8]}"
#: EDU_RLS_KEY of every test database: stored by the migration, used by every app engine.
RLS_KEY = "edu-test-rls-key-0123456789abcdef0123456789abcdef"
_TRUNCATE = "TRUNCATE " + ", ".join(t.name for t in TABLES.values()) + " CASCADE"

_sqlite_template: Path | None = None
_sqlite_dir: Path | None = None
_postgres: dict[str, PostgresDatabase] = {}


# ---------------------------------------------------------------------- SQLite


async def sqlite_template() -> Path:
    """A migrated SQLite file, made once per process."""
    global _sqlite_template, _sqlite_dir
    if _sqlite_template is None:
        _sqlite_dir = Path(tempfile.mkdtemp(prefix="edu-sqlite-"))
        atexit.register(shutil.rmtree, _sqlite_dir, True)
        template = _sqlite_dir / "template.db"
        await upgrade_async(f"sqlite+aiosqlite:///{template}")
        _sqlite_template = template
    return _sqlite_template


async def fresh_sqlite_url() -> str:
    template = await sqlite_template()
    assert _sqlite_dir is not None
    path = _sqlite_dir / f"{uuid.uuid4().hex}.db"
    shutil.copyfile(template, path)
    return f"sqlite+aiosqlite:///{path}"


@asynccontextmanager
async def sqlite_harness() -> AsyncIterator[Harness]:
    url = await fresh_sqlite_url()
    database = Database(DatabaseSettings(url=url, sqlite_busy_timeout_ms=2_000))
    try:
        yield _harness("sqlite", database)
    finally:
        await database.dispose()
        _remove_sqlite_files(make_url(url).database or "")


def _remove_sqlite_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


# ---------------------------------------------------------------------- PostgreSQL


class PostgresDatabase:
    """A dedicated, migrated test database: owner URL (migrations) and app-role URL."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.name = f"edu_test_{uuid.uuid4().hex[:12]}"
        base = make_url(admin_url)
        self.owner_url = base.set(database=self.name).render_as_string(hide_password=False)
        self.app_url = base.set(
            database=self.name, username=APP_ROLE, password=None
        ).render_as_string(hide_password=False)

    def dsn(self, url: str) -> str:
        return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def create(self) -> None:
        admin = await asyncpg.connect(self.dsn(self.admin_url))
        try:
            await ensure_role(admin, APP_ROLE)
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        atexit.register(_drop_database, self.dsn(self.admin_url), self.name)
        await upgrade_async(self.owner_url, app_role=APP_ROLE, rls_key=RLS_KEY)

    async def truncate(self) -> None:
        owner = await asyncpg.connect(self.dsn(self.owner_url))
        try:
            await owner.execute(_TRUNCATE)
        finally:
            await owner.close()


_role_drop_registered: set[str] = set()


async def ensure_role(admin: asyncpg.Connection, role: str) -> None:
    """The application role: LOGIN, no superuser, owns nothing (race-safe creation).

    Dropped at exit, after this run's databases (atexit runs in reverse order).
    """
    if role not in _role_drop_registered:
        _role_drop_registered.add(role)
        atexit.register(_drop_role, _admin_dsn(), role)
    await admin.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END
        $$
        """
    )


def _admin_dsn() -> str:
    from tests.conftest import POSTGRES_URL

    return make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)


def _drop_role(dsn: str, role: str) -> None:
    async def drop() -> None:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()

    try:
        asyncio.run(drop())
    except Exception as error:  # best effort at interpreter exit
        print(f"could not drop test role {role}: {error}")


def _drop_database(dsn: str, name: str) -> None:
    async def drop() -> None:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    try:
        asyncio.run(drop())
    except Exception as error:  # best effort at interpreter exit
        print(f"could not drop test database {name}: {error}")


async def postgres_database(admin_url: str) -> PostgresDatabase:
    """The session's migrated test database (created on first use)."""
    database = _postgres.get(admin_url)
    if database is None:
        database = PostgresDatabase(admin_url)
        await database.create()
        _postgres[admin_url] = database
    return database


@asynccontextmanager
async def postgres_harness(url: str) -> AsyncIterator[Harness]:
    test_db = await postgres_database(url)
    await test_db.truncate()
    database = Database(
        DatabaseSettings(url=test_db.app_url, pool_size=5, lock_timeout_ms=2_000, rls_key=RLS_KEY)
    )
    try:
        yield _harness("postgres", database)
    finally:
        await database.dispose()


#: A member of the application role that bypasses row-level security: with it only the
#: unit of work's own tenant filter stands, so the contract suite proves that layer alone.
BYPASS_ROLE = f"{APP_ROLE}_bypassrls"


@asynccontextmanager
async def postgres_app_filter_harness(url: str) -> AsyncIterator[Harness]:
    """PostgreSQL through BYPASS_ROLE: row-level security out of the way."""
    test_db = await postgres_database(url)
    admin = await asyncpg.connect(test_db.dsn(test_db.admin_url))
    try:
        await ensure_role(admin, BYPASS_ROLE)
        await admin.execute(f'ALTER ROLE "{BYPASS_ROLE}" BYPASSRLS')
        await admin.execute(f'GRANT "{APP_ROLE}" TO "{BYPASS_ROLE}"')
    finally:
        await admin.close()
    await test_db.truncate()
    bypass_url = make_url(test_db.app_url).set(username=BYPASS_ROLE).render_as_string(False)
    database = Database(
        DatabaseSettings(url=bypass_url, pool_size=5, lock_timeout_ms=2_000, rls_key=RLS_KEY)
    )
    try:
        yield _harness("postgres-app-filter", database)
    finally:
        await database.dispose()


def _harness(name: str, database: Database) -> Harness:
    clock, publisher, listener = ManualClock(), RecordingPublisher(), RecordingCommitListener()
    factory = SqlUnitOfWorkFactory(database, clock=clock, publisher=publisher, listeners=[listener])
    return Harness(name, factory, clock, publisher, listener, factory.relay)
