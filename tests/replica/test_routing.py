"""Where units of work run with read replicas: read-only ones on a replica (by the stated
policy, each replica with its own pool), read-write ones on the primary; a promoted
"replica" is skipped; a read-only unit of work cannot write, not even by raw SQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from edu_domain.errors import ValidationError
from edu_domain.model import User
from edu_infra.consistency import ConsistencyToken, current_chain, primary_reads, read_your_writes
from edu_infra.sqlalchemy import SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.routed_rows import RoutedRows
from edu_infra.testing.harness import new_org, new_user
from tests.replica.cluster import Cluster
from tests.replica.support import APP, opened, replica_set, superuser

pytestmark = pytest.mark.postgres

DATABASE = "edu_routing"


async def _org_with_user(factory: SqlUnitOfWorkFactory) -> tuple[Any, User]:
    org = new_org()
    async with factory.unscoped() as uow:
        await uow.add(org)
        await uow.commit()
    user = new_user(org)
    async with factory(tenant=org.id) as uow:
        await uow.add(user)
        await uow.commit()
    return org, user


def _target(uow: Any) -> str | None:
    assert isinstance(uow.rows, RoutedRows)
    assert uow.rows.route is not None
    return uow.rows.route.target


async def _in_recovery(uow: Any) -> bool:
    return bool((await uow.session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one())


async def test_read_only_units_of_work_read_on_the_replica_and_the_rest_on_the_primary(
    cluster: Cluster,
) -> None:
    async with opened(cluster, DATABASE) as factory:
        org, user = await _org_with_user(factory)
        async with factory(tenant=org.id) as uow:
            assert (await uow.require(User, user.id)).email == user.email
            assert not await _in_recovery(uow)
        async with factory(tenant=org.id, read_only=True) as uow:
            got = await uow.require(User, user.id)  # the chain's token: the replica waits
            assert _target(uow) == "replica-1"
            assert await _in_recovery(uow)
        assert got.email == user.email
        reads = replica_set(factory).reads
        assert sum(n for (target, _), n in reads.items() if target == "replica-1") == 1
        assert not any(target == "primary" for target, _ in reads)


async def test_commits_that_write_give_growing_tokens_and_advance_the_chain(
    cluster: Cluster,
) -> None:
    async with opened(cluster, DATABASE) as factory:
        with read_your_writes() as chain:
            org, user = await _org_with_user(factory)
            first = chain.token
            async with factory(tenant=org.id) as uow:
                renamed = await uow.require(User, user.id)
                renamed.full_name = "Renamed"
                await uow.commit()
                token = uow.consistency_token
            async with factory(tenant=org.id) as reader:
                await reader.require(User, user.id)
                await reader.commit()  # wrote nothing: no token
                assert reader.consistency_token is None
        assert first is not None
        assert token is not None
        assert chain.token == ConsistencyToken.parse(token) > first
        assert replica_set(factory).latest == chain.token
        assert current_chain() is not chain  # the scope is over


async def test_a_read_only_unit_of_work_on_the_primary_cannot_write_by_raw_sql(
    cluster: Cluster,
) -> None:
    async with opened(cluster, DATABASE) as factory:
        org, user = await _org_with_user(factory)
        with primary_reads():
            async with factory(tenant=org.id, read_only=True) as uow:
                assert await uow.get(User, user.id) is not None
                assert _target(uow) == "primary"
                with pytest.raises(sa_exc.DBAPIError, match="read-only transaction"):
                    await uow.session.execute(text("UPDATE users SET full_name = 'x'"))
        assert replica_set(factory).reads == Counter({("primary", "primary_required"): 1})
        async with factory(tenant=org.id) as uow:
            assert (await uow.require(User, user.id)).full_name == user.full_name


async def test_round_robin_takes_the_replicas_in_turn(cluster: Cluster) -> None:
    async with opened(cluster, DATABASE, replicas=2) as factory:
        org, user = await _org_with_user(factory)
        for _ in range(6):
            async with factory(tenant=org.id, read_only=True) as uow:
                assert await uow.get(User, user.id) is not None
        targets = Counter(t for (t, _), n in replica_set(factory).reads.items() for _ in range(n))
        assert targets == Counter({"replica-1": 3, "replica-2": 3})


async def test_least_busy_takes_the_replica_with_fewer_connections_in_use(
    cluster: Cluster,
) -> None:
    async with opened(cluster, DATABASE, replicas=2, replica_policy="least_busy") as factory:
        org, user = await _org_with_user(factory)
        for _ in range(3):
            async with factory(tenant=org.id, read_only=True) as held:
                await held.get(User, user.id)  # holds a connection of its replica
                async with factory(tenant=org.id, read_only=True) as other:
                    await other.get(User, user.id)
                    assert {_target(held), _target(other)} == {"replica-1", "replica-2"}


async def test_a_replica_that_is_not_in_recovery_is_skipped_as_promoted(
    cluster: Cluster,
) -> None:
    promoted = cluster.url(cluster.primary_port, DATABASE, APP)  # "a replica that was promoted"
    standby = cluster.url(cluster.standby_port, DATABASE, APP)
    async with opened(cluster, DATABASE, replica_urls=(promoted, standby)) as factory:
        org, user = await _org_with_user(factory)
        for _ in range(4):
            async with factory(tenant=org.id, read_only=True) as uow:
                assert await uow.get(User, user.id) is not None
                assert _target(uow) == "replica-2"
        status = {s["name"]: s["health"] for s in replica_set(factory).status()}
        assert status == {"replica-1": "promoted", "replica-2": "ok"}
    async with opened(cluster, DATABASE, replica_urls=(promoted,)) as factory:
        org, user = await _org_with_user(factory)
        async with factory(tenant=org.id, read_only=True) as uow:
            assert await uow.get(User, user.id) is not None
            assert _target(uow) == "primary"
        assert replica_set(factory).reads == Counter({("primary", "promoted"): 1})


async def test_a_malformed_token_is_a_validation_error(cluster: Cluster) -> None:
    async with opened(cluster, DATABASE) as factory:
        org, _ = await _org_with_user(factory)
        for bad in ("", "16B3748", "0/XYZ", "1/2/3", "123456789/0"):
            with pytest.raises(ValidationError, match="consistency_token"):
                factory(tenant=org.id, read_only=True, after=bad)
            with pytest.raises(ValidationError, match="consistency_token"), read_your_writes(bad):
                pass
        assert str(ConsistencyToken.parse("16/b374d848")) == "16/B374D848"


async def test_a_read_only_unit_of_work_opened_before_a_commit_of_its_chain_reads_it(
    cluster: Cluster,
) -> None:
    async with opened(cluster, DATABASE, replica_wait=0.05) as factory:
        org, user = await _org_with_user(factory)
        await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_pause()")
        try:
            with read_your_writes():
                async with factory(tenant=org.id, read_only=True) as reader:
                    async with factory(tenant=org.id) as writer:
                        renamed = await writer.require(User, user.id)
                        renamed.full_name = "Renamed later"
                        await writer.commit()
                    got = await reader.require(User, user.id)
                    assert (_target(reader), str(reader.rows.route.reason)) == (  # type: ignore[attr-defined]
                        "primary",
                        "behind_token",
                    )
        finally:
            await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_resume()")
        assert got.full_name == "Renamed later"
