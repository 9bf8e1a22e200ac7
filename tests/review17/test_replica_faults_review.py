"""Review 17: replica faults the replica tests do not cover.

- a standby cut off from its primary (its WAL receiver cannot connect) keeps serving
  token-less reads at any age: the lag estimate is 0 while it has replayed all it received;
- a consistency token no server has reached holds a replica connection for the whole wait:
  other requests' reads then time out on the replica's pool and mark a healthy replica down;
- a real promotion (`pg_promote()` on the standby, then writes on it): reads leave it.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import pytest

from edu_domain.model import User
from edu_infra.consistency import read_your_writes
from edu_infra.sqlalchemy import SqlUnitOfWorkFactory
from tests.replica.cluster import Cluster, primary_and_standby
from tests.replica.support import opened, replayed, replica_set, superuser, with_users

pytestmark = pytest.mark.postgres

DATABASE = "edu_review17_faults"
PROMOTED_DATABASE = "edu_review17_promoted"
#: a token no server will reach: the highest WAL position there is
FAR_AHEAD = "FFFFFFFF/FFFFFFFF"


async def _read(factory: SqlUnitOfWorkFactory, org: UUID, user: UUID) -> tuple[str | None, Any]:
    """A token-less read in a request of its own: (the user's name, its route)."""
    with read_your_writes():
        async with factory(tenant=org, read_only=True) as uow:
            seen = await uow.require(User, user)
            route: Any = uow.rows.route  # type: ignore[attr-defined]
    return seen.full_name, route


async def _rename(factory: SqlUnitOfWorkFactory, org: UUID, user: UUID, name: str) -> None:
    with read_your_writes():  # the token stays in this request
        async with factory(tenant=org) as uow:
            (await uow.require(User, user)).full_name = name
            await uow.commit()


async def test_a_standby_cut_off_from_its_primary_is_not_served_beyond_the_lag_bound(
    cluster: Cluster,
) -> None:
    max_lag, retry = 0.3, 0.05
    async with opened(
        cluster, DATABASE, replica_max_lag=max_lag, replica_retry=retry, replica_wait=0.05
    ) as factory:
        org, (user,) = await with_users(factory, 1, full_name="Before")
        await replayed(cluster, DATABASE)
        assert (await _read(factory, org, user.id))[1].target == "replica-1"
        port = cluster.standby_port
        conninfo = await superuser(cluster, port, "SHOW primary_conninfo")
        await superuser(
            cluster, port, "ALTER SYSTEM SET primary_conninfo = 'host=127.0.0.1 port=1'"
        )
        await superuser(cluster, port, "SELECT pg_reload_conf()")
        try:
            for _ in range(600):  # the WAL receiver is gone
                if not await superuser(cluster, port, "SELECT count(*) FROM pg_stat_wal_receiver"):
                    break
                await asyncio.sleep(0.05)
            await _rename(factory, org, user.id, "After")
            await asyncio.sleep(3 * (max_lag + retry))  # well past the stated staleness bound
            name, route = await _read(factory, org, user.id)
            assert name == "After", (route.target, route.reason, replica_set(factory).status())
        finally:
            quoted = conninfo.replace("'", "''")
            await superuser(cluster, port, f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")
            await superuser(cluster, port, "SELECT pg_reload_conf()")
            await replayed(cluster, DATABASE)


async def test_a_forged_token_slows_only_its_own_read_and_never_marks_a_replica_down(
    cluster: Cluster,
) -> None:
    async with opened(
        cluster,
        DATABASE,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.5,
        replica_wait=2.0,
        replica_retry=30.0,
    ) as factory:
        org, (user,) = await with_users(factory, 1, full_name="Before")
        await replayed(cluster, DATABASE)
        assert (await _read(factory, org, user.id))[1].target == "replica-1"
        waiting = asyncio.Event()

        async def forged() -> Any:
            with read_your_writes(FAR_AHEAD):
                async with factory(tenant=org, read_only=True) as uow:
                    waiting.set()
                    await uow.count(User)
                    return uow.rows.route  # type: ignore[attr-defined]

        async def honest() -> Any:
            await waiting.wait()
            await asyncio.sleep(0.2)  # the forged read holds the replica's connection now
            return (await _read(factory, org, user.id))[1]

        forged_route, honest_route = await asyncio.gather(forged(), honest())
        assert (forged_route.target, forged_route.reason.value) == ("primary", "behind_token")
        assert [s["health"] for s in replica_set(factory).status()] == ["ok"]
        assert honest_route.reason.value != "down"
        assert replica_set(factory).reads[("primary", "down")] == 0


async def test_a_really_promoted_standby_that_diverged_is_skipped(cluster: Cluster) -> None:
    """pg_promote() on a standby of a private cluster (the session's must stay a standby),
    then a write on it: no read is served from it after the retry interval."""
    del cluster  # the binaries are there; this test needs a cluster of its own
    with primary_and_standby() as own:
        async with opened(own, PROMOTED_DATABASE, replica_retry=0.05) as factory:
            org, (user,) = await with_users(factory, 1, full_name="Before")
            await replayed(own, PROMOTED_DATABASE)
            assert (await _read(factory, org, user.id))[1].target == "replica-1"
            await superuser(own, own.standby_port, "SELECT pg_promote(true, 60)")
            await superuser(
                own,
                own.standby_port,
                f"UPDATE users SET full_name = 'Diverged' WHERE id = '{user.id}'",
                PROMOTED_DATABASE,
            )
            await asyncio.sleep(0.2)  # past the retry interval
            name, route = await _read(factory, org, user.id)
            assert (name, route.target, route.reason.value) == ("Before", "primary", "promoted")
            await _rename(factory, org, user.id, "On the primary")
            name, route = await _read(factory, org, user.id)
            assert (name, route.target) == ("On the primary", "primary")
            assert [s["health"] for s in replica_set(factory).status()] == ["promoted"]
            served = sum(n for (t, _), n in replica_set(factory).reads.items() if t == "replica-1")
            assert served == 1  # the read before the promotion only
