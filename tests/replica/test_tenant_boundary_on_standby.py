"""The tenant boundary on a read-only hot standby (issue 11: whatever proves the tenant must
work where nothing can be written and no temporary table exists).

A primary and a streaming standby of the tests' own (`cluster.py`); the data is written on
the primary through edu-core, then read on the standby as the application role: once by an
engine on the standby itself, once through the primary's read replicas (read-only units of
work routed there, issue 17), where every read must have gone to the replica.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from edu_domain.errors import ReadOnlyError
from edu_domain.model import Organization, User
from edu_domain.ports import UnitOfWork
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.testing.harness import new_org, new_user
from tests.replica.cluster import Cluster
from tests.replica.support import APP, migrate, replayed, settings
from tests.sql_harness import RLS_KEY

pytestmark = pytest.mark.postgres

DATABASE = "edu_replica"


class ReadOnly:
    """A factory whose units of work are all read-only (routed to the replica)."""

    def __init__(self, inner: SqlUnitOfWorkFactory) -> None:
        self.inner = inner

    def __call__(self, *, tenant: Any) -> UnitOfWork:
        return self.inner(tenant=tenant, read_only=True)

    def unscoped(self) -> UnitOfWork:
        return self.inner.unscoped(read_only=True)


async def _seed(cluster: Cluster) -> tuple[Organization, Organization]:
    await migrate(cluster, DATABASE)
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


@pytest.fixture(scope="module")
def replicated(cluster: Cluster) -> tuple[Cluster, Organization, Organization]:
    mine, theirs = asyncio.run(_seed(cluster))
    asyncio.run(replayed(cluster, DATABASE))
    return cluster, mine, theirs


@pytest.fixture(params=["standby", "routed"])
async def standby(
    replicated: tuple[Cluster, Organization, Organization], request: pytest.FixtureRequest
) -> Any:
    cluster, mine, theirs = replicated
    if request.param == "standby":
        url = cluster.url(cluster.standby_port, DATABASE, APP)
        database = Database(DatabaseSettings(url=url, rls_key=RLS_KEY))
        factory: Any = SqlUnitOfWorkFactory(database)
    else:
        database = Database(settings(cluster, DATABASE))
        factory = ReadOnly(SqlUnitOfWorkFactory(database))
    try:
        yield factory, mine, theirs
        if database.replicas is not None:  # routed: every read went to the replica
            assert database.replicas.reads
            assert {target for target, _ in database.replicas.reads} == {"replica-1"}
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
        with pytest.raises(ReadOnlyError) as refused:
            await uow.add(new_user(mine))
        assert await uow.count(User) == 1
    assert "INSERT INTO" not in str(refused.value)
