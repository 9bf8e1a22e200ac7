"""Engine settings: pool, health, PgBouncer mode, SQLite pragmas and text functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from edu_domain.errors import ValidationError
from edu_domain.model import Organization
from edu_domain.query import fold
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from tests.sql_harness import RLS_KEY, PostgresDatabase


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(
    sqlite_db: Database,
) -> None:
    async with sqlite_db.engine.connect() as conn:
        mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar_one()
        keys = (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one()
        busy = (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one()
    assert (mode, keys, busy) == ("wal", 1, 5_000)


async def test_sqlite_lower_folds_like_the_domain_and_postgresql(sqlite_db: Database) -> None:
    """Each character lowered on its own, to one character (`edu_domain.query.fold`)."""
    sample = "ÀÉÎ ΣΑΣ Straße İ"
    async with sqlite_db.engine.connect() as conn:
        lowered = (await conn.execute(text("SELECT lower(:s)"), {"s": sample})).scalar_one()
    assert lowered == fold(sample) == "àéî σασ straße i"  # noqa: RUF001 - Greek on purpose


def test_an_in_memory_sqlite_database_is_refused() -> None:
    with pytest.raises(ValidationError):
        Database(DatabaseSettings(url="sqlite+aiosqlite:///:memory:"))


def test_an_unsupported_driver_is_refused() -> None:
    with pytest.raises(ValidationError):
        Database(DatabaseSettings(url="postgresql+psycopg2://localhost/x"))


def test_postgresql_without_an_rls_key_is_refused_naming_the_variable() -> None:
    url = "postgresql+asyncpg://app@localhost/x"
    for key in (None, "", "short-secret"):
        with pytest.raises(ValidationError, match="EDU_RLS_KEY") as refused:
            Database(DatabaseSettings(url=url, rls_key=key))
        assert refused.value.field == "rls_key"
        assert "short-secret" not in str(refused.value)


async def test_the_rls_key_stays_out_of_reprs_and_sqlite_ignores_it(tmp_path: Path) -> None:
    settings = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", rls_key=RLS_KEY)
    assert RLS_KEY not in repr(settings)
    database = Database(settings)
    try:
        assert await database.health_check()
    finally:
        await database.dispose()


async def test_health_check_and_pool_status_report_the_pool(sqlite_db: Database) -> None:
    assert await sqlite_db.health_check() is True
    status = sqlite_db.pool_status()
    assert {"pool", "status", "size", "checked_out"} <= set(status)
    assert status["checked_out"] == 0


@pytest.mark.postgres
async def test_pool_settings_reach_the_postgres_engine(pg: PostgresDatabase) -> None:
    database = Database(
        DatabaseSettings(
            url=pg.app_url, pool_size=3, max_overflow=2, pool_timeout=1.5, rls_key=RLS_KEY
        )
    )
    try:
        pool = database.engine.pool
        assert database.pool_status()["size"] == 3
        assert pool._max_overflow == 2  # type: ignore[attr-defined]
        assert pool._timeout == 1.5  # type: ignore[attr-defined]
        assert await database.health_check() is True
    finally:
        await database.dispose()


@pytest.mark.postgres
async def test_units_of_work_run_with_the_statement_cache_disabled(pg: PostgresDatabase) -> None:
    database = Database(DatabaseSettings(url=pg.app_url, statement_cache_size=0, rls_key=RLS_KEY))
    try:
        factory = SqlUnitOfWorkFactory(database)
        for _ in range(3):
            async with factory.unscoped() as uow:
                await uow.add(Organization(name="Cache", slug=f"cache-{_}"))
                assert await uow.count(Organization) == _ + 1
                await uow.commit()
        async with database.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            assert driver._stmt_cache.get_max_size() == 0
    finally:
        await database.dispose()
