"""`migrate_schema` (the library form of `edu migrate`) reports an operator's mistake as one
domain error naming the setting to fix: no SQLAlchemy or driver exception, no SQL."""

from __future__ import annotations

import pytest

from edu_domain.errors import DomainError
from edu_infra.container import MigrationError, build_container, migrate_schema, shutdown
from edu_infra.sqlalchemy.migrate import UNMAPPED_TABLES
from tests.sql_harness import RLS_KEY, postgres_database

pytestmark = pytest.mark.postgres


async def _migrate(settings: dict[str, str]) -> DomainError:
    container = build_container({"EDU_CACHE_ENABLED": "false", **settings})
    try:
        with pytest.raises(MigrationError) as raised:
            await migrate_schema(container)
    finally:
        await shutdown(container)
    error = raised.value
    assert error.__cause__ is None
    text = str(error)
    assert "[SQL" not in text and "SELECT" not in text and "sqlalchemy" not in text.lower()
    assert not any(table in text for table in UNMAPPED_TABLES)
    return error


async def test_migrating_as_the_application_role_names_the_owner_setting(
    postgres_url: str,
) -> None:
    database = await postgres_database(postgres_url)
    error = await _migrate({"EDU_DATABASE_URL": database.app_url, "EDU_RLS_KEY": RLS_KEY})
    assert "permission denied" in str(error)
    assert "EDU_MIGRATION_DATABASE_URL" in str(error)


async def test_an_unreachable_server_is_one_line(postgres_url: str) -> None:
    error = await _migrate(
        {
            "EDU_DATABASE_URL": "postgresql+asyncpg://edu@127.0.0.1:9/edu",
            "EDU_RLS_KEY": RLS_KEY,
            "EDU_DB_CONNECT_TIMEOUT": "2",
        }
    )
    assert "EDU_DATABASE_URL" in str(error)
    assert "\n" not in str(error)
