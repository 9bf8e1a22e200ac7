"""Migrating an empty database gives exactly the mapped metadata; downgrading removes it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from edu_infra.sqlalchemy.migrate import (
    UNMAPPED_TABLES,
    downgrade_async,
    include_name,
    include_object_for,
    upgrade_async,
)
from edu_infra.sqlalchemy.rls import key_material
from edu_infra.sqlalchemy.tables import metadata
from edu_infra.sqlalchemy.versioning import VERSION_TABLE
from tests.sql_harness import APP_ROLE, RLS_KEY, ensure_role

#: Migrated but deliberately unmapped: the RLS key material (PostgreSQL only).
KEY_TABLE = "edu_rls_key"


def _diff(connection: Connection) -> list[Any]:
    include = include_object_for(connection.dialect.name)
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "include_object": include,
            "include_name": include_name,
            "version_table": VERSION_TABLE,
        },
    )
    return list(compare_metadata(context, metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {VERSION_TABLE}


async def _inspect(url: str) -> tuple[list[Any], set[str]]:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_diff)
            tables = await connection.run_sync(_tables)
    finally:
        await engine.dispose()
    return diff, tables


@pytest.fixture
async def empty_postgres(postgres_url: str) -> AsyncIterator[str]:
    dsn = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    name = f"edu_migrate_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    try:
        await ensure_role(admin, APP_ROLE)
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield make_url(postgres_url).set(database=name).render_as_string(False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_sqlite_migrates_to_the_mapped_metadata_and_back(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    await upgrade_async(url)
    diff, tables = await _inspect(url)
    assert diff == []
    assert tables == set(metadata.tables)  # the entities' tables and the outbox
    await downgrade_async(url)
    _, tables = await _inspect(url)
    assert tables == set()


@pytest.mark.postgres
async def test_postgres_migrates_to_the_mapped_metadata_and_back(empty_postgres: str) -> None:
    await upgrade_async(empty_postgres, app_role=APP_ROLE)
    diff, tables = await _inspect(empty_postgres)
    assert diff == []
    assert tables == set(metadata.tables) | UNMAPPED_TABLES
    assert KEY_TABLE in UNMAPPED_TABLES
    await downgrade_async(empty_postgres, app_role=APP_ROLE)
    _, tables = await _inspect(empty_postgres)
    assert tables == set()


@pytest.mark.postgres
async def test_postgres_migration_forces_row_level_security_and_grants_the_app_role(
    empty_postgres: str,
) -> None:
    await upgrade_async(empty_postgres, app_role=APP_ROLE)
    dsn = make_url(empty_postgres).set(drivername="postgresql").render_as_string(False)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE relname = ANY($1::text[])",
            [t.name for t in metadata.tables.values()],
        )
        policies = await conn.fetch("SELECT tablename, qual, with_check FROM pg_policies")
        grants = await conn.fetch(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = $1",
            APP_ROLE,
        )
        owners = {r["tableowner"] for r in await conn.fetch("SELECT tableowner FROM pg_tables")}
    finally:
        await conn.close()
    assert {(r["relname"], r["relrowsecurity"], r["relforcerowsecurity"]) for r in rows} == {
        (t.name, True, True) for t in metadata.tables.values()
    }
    assert {p["tablename"] for p in policies} == {t.name for t in metadata.tables.values()}
    assert all(p["qual"] == p["with_check"] for p in policies)
    assert all("( SELECT edu_tenant() AS edu_tenant)" in p["qual"] for p in policies)
    assert all("( SELECT edu_unscoped() AS edu_unscoped)" in p["qual"] for p in policies)
    assert all("current_setting" not in p["qual"] for p in policies)  # never beside a verdict
    assert {(g["table_name"], g["privilege_type"]) for g in grants} == {
        (t.name, p)
        for t in metadata.tables.values()
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE")
    }
    assert APP_ROLE not in owners


async def _policies_and_functions(url: str) -> tuple[set[tuple[str, str, str]], set[str]]:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        policies = await conn.fetch("SELECT tablename, qual, with_check FROM pg_policies")
        functions = await conn.fetch(
            "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace"
        )
    finally:
        await conn.close()
    return {tuple(p) for p in policies}, {f["proname"] for f in functions}


@pytest.mark.postgres
async def test_postgres_downgrade_of_the_signed_tenant_restores_the_first_policies(
    empty_postgres: str,
) -> None:
    await upgrade_async(empty_postgres, revision="0001", app_role=APP_ROLE)
    first = await _policies_and_functions(empty_postgres)
    await upgrade_async(empty_postgres, revision="0002", app_role=APP_ROLE, rls_key=RLS_KEY)
    signed = await _policies_and_functions(empty_postgres)
    assert {"edu_tenant", "edu_unscoped", "edu_rls_signed"} <= signed[1]
    assert all("edu_unscoped()" in qual for _, qual, _ in signed[0])
    await upgrade_async(empty_postgres, app_role=APP_ROLE)
    bound = await _policies_and_functions(empty_postgres)
    assert {"edu_enter", "edu_verified", "edu_stage_move"} <= bound[1]
    assert "edu_rls_signed" not in bound[1]
    await downgrade_async(empty_postgres, revision="0002", app_role=APP_ROLE)
    assert await _policies_and_functions(empty_postgres) == signed
    await downgrade_async(empty_postgres, revision="0001", app_role=APP_ROLE)
    assert await _policies_and_functions(empty_postgres) == first
    assert KEY_TABLE not in (await _inspect(empty_postgres))[1]


@pytest.mark.postgres
async def test_postgres_migration_stores_the_rls_key_idempotently_and_rotates_it(
    empty_postgres: str,
) -> None:
    dsn = make_url(empty_postgres).set(drivername="postgresql").render_as_string(False)

    async def stored() -> list[tuple[bytes, bytes, object]]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT ipad, opad, rotated_at FROM edu_rls_key")
        finally:
            await conn.close()
        return [tuple(r) for r in rows]

    await upgrade_async(empty_postgres, app_role=APP_ROLE)
    assert await stored() == []  # no key given: nothing stored, every tenant unsigned
    await upgrade_async(empty_postgres, app_role=APP_ROLE, rls_key=RLS_KEY)
    first = await stored()
    await upgrade_async(empty_postgres, app_role=APP_ROLE, rls_key=RLS_KEY)
    assert await stored() == first  # same key: untouched
    assert [row[:2] for row in first] == [key_material(RLS_KEY.encode())]
    await upgrade_async(empty_postgres, app_role=APP_ROLE, rls_key=RLS_KEY[::-1])
    rotated = await stored()
    assert len(rotated) == 1 and rotated[0][:2] == key_material(RLS_KEY[::-1].encode())
