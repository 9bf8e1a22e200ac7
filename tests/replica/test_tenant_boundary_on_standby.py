"""The tenant boundary on a read-only hot standby (issue 11: whatever proves the tenant must
work where nothing can be written and no temporary table exists).

A primary and a streaming standby of the tests' own (`cluster.py`); the data is written on
the primary through edu-core, then read on the standby as the application role.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from edu_domain.errors import DomainError
from edu_domain.model import Organization, User
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.migrate import upgrade_async
from edu_infra.testing.harness import new_org, new_user
from tests.conftest import services_required
from tests.replica.cluster import Cluster, primary_and_standby, server_binaries, wait_until
from tests.sql_harness import RLS_KEY, ensure_role

pytestmark = pytest.mark.postgres

DATABASE = "edu_replica"
APP = "edu_app_replica"


async def _seed(cluster: Cluster) -> tuple[Organization, Organization]:
    admin = await asyncpg.connect(cluster.dsn(cluster.primary_port, "postgres"))
    try:
        await ensure_role(admin, APP)
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    await upgrade_async(cluster.url(cluster.primary_port, DATABASE), app_role=APP, rls_key=RLS_KEY)
    database = Database(
        DatabaseSettings(url=cluster.url(cluster.primary_port, DATABASE, APP), rls_key=RLS_KEY)
    )
    factory = SqlUnitOfWorkFactory(database)
    orgs = []
    try:
        for name, users in (("mine", 1), ("theirs", 3)):
            org = new_org(slug=name)
            async with factory.unscoped() as uow:
                await uow.add(org)
                await uow.commit()
            async with factory(tenant=org.id) as uow:
                await uow.add_all([new_user(org) for _ in range(users)])
                await uow.commit()
            orgs.append(org)
    finally:
        await database.dispose()
    return orgs[0], orgs[1]


async def _replayed(cluster: Cluster) -> bool:
    primary = await asyncpg.connect(cluster.dsn(cluster.primary_port, DATABASE))
    standby = await asyncpg.connect(cluster.dsn(cluster.standby_port, DATABASE))
    try:
        lsn = await primary.fetchval("SELECT pg_current_wal_lsn()")
        return bool(await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", lsn))
    finally:
        await primary.close()
        await standby.close()


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[Cluster, Organization, Organization]]:
    if server_binaries() is None:
        reason = "PostgreSQL server binaries (initdb, pg_basebackup) are not installed"
        if services_required():
            pytest.fail(f"EDU_REQUIRE_SERVICES=1 but {reason}", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    with primary_and_standby() as cluster:
        mine, theirs = asyncio.run(_seed(cluster))
        wait_until(lambda: asyncio.run(_replayed(cluster)))
        yield cluster, mine, theirs


@pytest.fixture
async def standby(
    replicated: tuple[Cluster, Organization, Organization],
) -> Any:
    cluster, mine, theirs = replicated
    database = Database(
        DatabaseSettings(url=cluster.url(cluster.standby_port, DATABASE, APP), rls_key=RLS_KEY)
    )
    try:
        yield SqlUnitOfWorkFactory(database), mine, theirs
    finally:
        await database.dispose()


async def test_the_standby_is_in_recovery_and_scoped_reads_see_only_their_tenant(
    standby: Any,
) -> None:
    factory, mine, theirs = standby
    async with factory(tenant=mine.id) as uow:
        assert await uow.count(User) == 1
        assert {u.organization_id for u in (await uow.find(User)).items} == {mine.id}
        session = uow.session
        assert (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
    async with factory(tenant=theirs.id) as uow:
        assert await uow.count(User) == 3
    async with factory.unscoped() as uow:
        assert await uow.count(Organization) == 2


async def test_raw_sql_cannot_cross_tenants_on_the_standby(standby: Any) -> None:
    factory, mine, theirs = standby
    async with factory(tenant=theirs.id) as victim:
        await victim.rows.driver()  # BEGIN sent: its text is the backend's last statement
        async with factory(tenant=mine.id) as uow:
            session = uow.session
            texts = await session.execute(
                text(
                    "SELECT query FROM pg_stat_activity"
                    " WHERE query LIKE '%edu_enter(''' || :t || '%'"
                ),
                {"t": str(theirs.id)},
            )
            [harvested] = texts.scalars().all()
            signature = harvested.split("'")[-2]
            with pytest.raises(sa_exc.DBAPIError, match="tenant signature refused"):
                await session.execute(
                    text("SELECT edu_enter(:s, :g)"), {"s": str(theirs.id), "g": signature}
                )
        async with factory(tenant=mine.id) as uow:
            session = uow.session
            await session.execute(
                text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(theirs.id)}
            )
            assert (await session.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0
        async with factory(tenant=mine.id) as uow:
            session = uow.session
            rows = await session.execute(
                text(
                    "SELECT organization_id FROM users"
                    " WHERE set_config('app.unscoped', 'on', true) IS NOT NULL"
                )
            )
            assert set(rows.scalars().all()) <= {mine.id}


async def test_a_write_on_the_standby_is_a_domain_error(standby: Any) -> None:
    factory, mine, _ = standby
    async with factory(tenant=mine.id) as uow:
        with pytest.raises(DomainError) as refused:
            await uow.add(new_user(mine))
    assert "INSERT INTO" not in str(refused.value)
