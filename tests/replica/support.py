"""The databases and factories the replica tests use on the session's cluster.

Each test module gets its own migrated database (`migrate`), so their data never meet; each
test gets its own engines (primary + replica pools), disposed at the end (`opened`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg

from edu_domain.model import User
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.migrate import upgrade_async
from edu_infra.sqlalchemy.replicas import ReplicaSet
from edu_infra.testing.harness import new_org, new_user
from tests.replica.cluster import Cluster
from tests.sql_harness import RLS_KEY, ensure_role

APP = "edu_app_replica"
#: (the cluster's primary port, database): several clusters may run in one session
_migrated: set[tuple[int, str]] = set()


async def migrate(cluster: Cluster, database: str) -> None:
    """Create and migrate `database` on the primary once per session; wait for the standby."""
    if (cluster.primary_port, database) in _migrated:
        return
    admin = await asyncpg.connect(cluster.dsn(cluster.primary_port, "postgres"))
    try:
        await ensure_role(admin, APP)
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    await upgrade_async(cluster.url(cluster.primary_port, database), app_role=APP, rls_key=RLS_KEY)
    await replayed(cluster, database)
    _migrated.add((cluster.primary_port, database))


async def replayed(cluster: Cluster, database: str) -> None:
    """Wait (bounded) until the standby has replayed everything the primary has written
    (`database` included: WAL positions are the cluster's, so both are asked in `postgres`,
    which the standby has from the start, while `database` may not be replayed yet)."""
    primary = await asyncpg.connect(cluster.dsn(cluster.primary_port, "postgres"))
    standby = await asyncpg.connect(cluster.dsn(cluster.standby_port, "postgres"))
    try:
        lsn = await primary.fetchval("SELECT pg_current_wal_insert_lsn()")
        for _ in range(600):
            if await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", lsn):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the standby did not replay in 30 s")
    finally:
        await primary.close()
        await standby.close()


async def superuser(cluster: Cluster, port: int, sql: str, database: str = "postgres") -> Any:
    """One statement as the cluster's superuser (pausing replay, truncating)."""
    conn = await asyncpg.connect(cluster.dsn(port, database))
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def settings(
    cluster: Cluster, database: str, *, replicas: int = 1, **options: Any
) -> DatabaseSettings:
    """The application's settings: the primary, and the standby as `replicas` replica URLs."""
    standby = cluster.url(cluster.standby_port, database, APP)
    defaults: dict[str, Any] = {
        "rls_key": RLS_KEY,
        "pool_size": 4,
        "replica_urls": (standby,) * replicas,
        "replica_wait": 5.0,
        "replica_retry": 0.05,
        "replica_max_lag": 30.0,
    }
    return DatabaseSettings(
        url=cluster.url(cluster.primary_port, database, APP), **{**defaults, **options}
    )


@asynccontextmanager
async def opened(
    cluster: Cluster, database: str, **options: Any
) -> AsyncIterator[SqlUnitOfWorkFactory]:
    """A factory over the primary and its replicas (engines disposed at exit)."""
    await migrate(cluster, database)
    db = Database(settings(cluster, database, **options))
    try:
        yield SqlUnitOfWorkFactory(db)
    finally:
        await db.dispose()


async def with_users(
    factory: SqlUnitOfWorkFactory, count: int, **fields: Any
) -> tuple[UUID, list[User]]:
    """A new organization with `count` users (`fields` for each), committed on the primary."""
    org = new_org()
    async with factory.unscoped() as uow:
        await uow.add(org)
        await uow.commit()
    users = [new_user(org, **fields) for _ in range(count)]
    async with factory(tenant=org.id) as uow:
        await uow.add_all(users)
        await uow.commit()
    return org.id, users


def replica_set(factory: SqlUnitOfWorkFactory) -> ReplicaSet:
    assert factory.database.replicas is not None
    return factory.database.replicas


__all__ = [
    "APP",
    "migrate",
    "opened",
    "replayed",
    "replica_set",
    "settings",
    "superuser",
    "with_users",
]
