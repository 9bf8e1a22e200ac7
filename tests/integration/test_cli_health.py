"""`edu health` on PostgreSQL: the database, the cache and whether the RLS key is accepted."""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import pytest

from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from tests.sql_harness import APP_ROLE, RLS_KEY, PostgresDatabase

pytestmark = pytest.mark.postgres


async def _health(pg: PostgresDatabase, key: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "EDU_DATABASE_URL": pg.app_url,
        "EDU_RLS_KEY": key,
        "EDU_CACHE_ENABLED": "false",
    }
    env.pop("EDU_REDIS_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edu_infra",
        "health",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_health_accepts_the_migrated_key(pg: PostgresDatabase) -> None:
    code, out = await _health(pg, RLS_KEY)
    assert "database: ok" in out and "row-level security key: ok" in out, out
    assert code == 0


async def test_health_fails_when_the_key_is_not_the_migrated_one(pg: PostgresDatabase) -> None:
    other = "another-key-" + "0" * 40
    code, out = await _health(pg, other)
    assert "row-level security key: REFUSED" in out, out
    assert other not in out
    assert code == 1


async def test_the_factory_tells_a_refused_key(pg: PostgresDatabase) -> None:
    for key, expected in ((RLS_KEY, True), ("wrong-key-" + "1" * 40, False)):
        database = Database(DatabaseSettings(url=pg.app_url, rls_key=key))
        try:
            assert await SqlUnitOfWorkFactory(database).rls_key_accepted() is expected
        finally:
            await database.dispose()


async def test_an_unmigrated_database_refuses_the_key_instead_of_raising(
    pg: PostgresDatabase,
) -> None:
    database = Database(DatabaseSettings(url=pg.admin_url, rls_key=RLS_KEY))  # no schema there
    try:
        assert await SqlUnitOfWorkFactory(database).rls_key_accepted() is False
    finally:
        await database.dispose()


async def test_health_fails_when_the_application_role_may_create_temp_tables(
    pg: PostgresDatabase,
) -> None:
    owner = await asyncpg.connect(pg.dsn(pg.owner_url))
    privilege = f'TEMPORARY ON DATABASE "{pg.name}"'
    try:
        await owner.execute(f'GRANT {privilege} TO "{APP_ROLE}"')
        code, out = await _health(pg, RLS_KEY)
    finally:
        await owner.execute(f'REVOKE {privilege} FROM "{APP_ROLE}"')
        await owner.close()
    assert "tenant boundary: UNSAFE" in out and "TEMP" in out, out
    assert code == 1
    code, out = await _health(pg, RLS_KEY)
    assert "UNSAFE" not in out and code == 0, out
