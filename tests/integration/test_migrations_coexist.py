"""edu-core's migrations share a database with a host service's own Alembic tree.

edu-core records its revision in `edu_alembic_version`, the host in Alembic's default
`alembic_version`; both trees even use the revision id "0001". Migrating either first, both
end at their heads with their own tables, the host's autogenerate ignores edu-core's tables,
and each tree downgrades without touching the other. A database migrated by an older
edu-core (its revision in `alembic_version`) is adopted: the revision moves to
`edu_alembic_version` and migrating continues from there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from edu_infra.sqlalchemy.migrate import alembic_config, upgrade_async
from edu_infra.sqlalchemy.migrate import downgrade_async as edu_downgrade
from edu_infra.sqlalchemy.versioning import LEGACY_REVISIONS, skip_edu_tables
from tests.host_alembic.models import metadata as host_metadata
from tests.sql_harness import APP_ROLE, ensure_role

HOST_TREE = Path(__file__).resolve().parents[1] / "host_alembic"
EDU_HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _host_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HOST_TREE))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def _host(url: str, action: str) -> None:
    """Run the host's Alembic command (it runs its own event loop, so in a thread)."""
    config = _host_config(url)
    if action == "upgrade":
        await asyncio.to_thread(command.upgrade, config, "head")
    else:
        await asyncio.to_thread(command.downgrade, config, "base")


async def _state(url: str) -> dict[str, object]:
    def read(connection: Connection) -> dict[str, object]:
        tables = set(inspect(connection).get_table_names())

        def versions(table: str) -> list[str] | None:
            if table not in tables:
                return None
            return list(connection.execute(text(f"SELECT version_num FROM {table}")).scalars())

        context = MigrationContext.configure(connection, opts={"include_name": skip_edu_tables})
        return {
            "host": versions("alembic_version"),
            "edu": versions("edu_alembic_version"),
            "tables": tables,
            "host_diff": list(compare_metadata(context, host_metadata)),
        }

    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def _both_orders(url_for: object, app_role: str | None) -> None:
    for order in ("host first", "edu first"):
        url = await url_for()  # type: ignore[operator]
        steps = [_host(url, "upgrade"), upgrade_async(url, app_role=app_role)]
        for step in steps if order == "host first" else reversed(steps):
            await step
        state = await _state(url)
        assert state["host"] == ["0001"], order
        assert state["edu"] == [EDU_HEAD], order
        assert {"host_widgets", "organizations", "users"} <= state["tables"], order  # type: ignore[operator]
        assert state["host_diff"] == [], order  # the host's autogenerate ignores edu's tables

        await _host(url, "downgrade")
        state = await _state(url)
        assert state["host"] == [] and "host_widgets" not in state["tables"]  # type: ignore[operator]
        assert state["edu"] == [EDU_HEAD] and "organizations" in state["tables"]  # type: ignore[operator]
        await edu_downgrade(url, app_role=app_role)
        assert (await _state(url))["edu"] == []


async def test_host_and_edu_migrations_share_a_sqlite_database(tmp_path: Path) -> None:
    async def fresh() -> str:
        return f"sqlite+aiosqlite:///{tmp_path / uuid.uuid4().hex}.db"

    await _both_orders(fresh, None)


async def test_a_database_of_the_old_version_table_is_adopted(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade_async(url, revision="0001")
    engine = create_async_engine(url, poolclass=NullPool)
    try:  # what edu-core 0.1 left: its revision in Alembic's default table
        async with engine.begin() as connection:
            await connection.execute(
                text("ALTER TABLE edu_alembic_version RENAME TO alembic_version")
            )
    finally:
        await engine.dispose()

    await upgrade_async(url)
    state = await _state(url)
    assert state["edu"] == [EDU_HEAD] and state["host"] is None
    await _host(url, "upgrade")  # the host's own Alembic now has the default table to itself
    assert (await _state(url))["host"] == ["0001"]


async def test_a_host_revision_in_the_old_table_is_left_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'host.db'}"
    await _host(url, "upgrade")
    await upgrade_async(url)
    state = await _state(url)
    assert state["host"] == ["0001"] and state["edu"] == [EDU_HEAD]


@pytest.fixture
async def postgres_databases(postgres_url: str) -> AsyncIterator[object]:
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    names: list[str] = []

    async def fresh() -> str:
        name = f"edu_coexist_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(dsn)
        try:
            await ensure_role(admin, APP_ROLE)
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        names.append(name)
        return make_url(postgres_url).set(database=name).render_as_string(False)

    yield fresh
    admin = await asyncpg.connect(dsn)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.mark.postgres
async def test_host_and_edu_migrations_share_a_postgres_database(
    postgres_databases: object,
) -> None:
    await _both_orders(postgres_databases, APP_ROLE)


@pytest.mark.postgres
async def test_postgres_adopts_only_edu_cores_own_legacy_revision(
    postgres_databases: object,
) -> None:
    """On PostgreSQL the proof at 0003 includes the RLS key and COPY stage tables; a host's
    '0001' next to its own `organizations` table is never adopted: a SchemaConflict, and the
    host's version table and tables are as they were."""
    from edu_infra.sqlalchemy.versioning import SchemaConflict

    url = await postgres_databases()  # type: ignore[operator]
    await upgrade_async(url, revision=LEGACY_REVISIONS[-1], app_role=APP_ROLE)
    engine = create_async_engine(url, poolclass=NullPool)
    try:  # what edu-core 0.1 left (its last revision)
        async with engine.begin() as connection:
            await connection.execute(
                text("ALTER TABLE edu_alembic_version RENAME TO alembic_version")
            )
            await connection.execute(
                text(
                    "ALTER TABLE alembic_version"
                    " RENAME CONSTRAINT edu_alembic_version_pkc TO alembic_version_pkc"
                )
            )
        await upgrade_async(url, app_role=APP_ROLE)
        state = await _state(url)
        assert state["edu"] == [EDU_HEAD] and state["host"] is None

        host = await postgres_databases()  # type: ignore[operator]
        host_engine = create_async_engine(host, poolclass=NullPool)
        async with host_engine.begin() as connection:
            await connection.execute(text("CREATE TABLE alembic_version (version_num text)"))
            await connection.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
            await connection.execute(text("CREATE TABLE organizations (id int PRIMARY KEY)"))
        await host_engine.dispose()
        with pytest.raises(SchemaConflict, match="organizations"):
            await upgrade_async(host, app_role=APP_ROLE)
        state = await _state(host)
        assert state["host"] == ["0001"] and state["edu"] is None
        assert state["tables"] == {"alembic_version", "organizations"}
    finally:
        await engine.dispose()
