"""Replica faults: down, stopped and restarted under load, lagging (replay paused). A faulty
replica is skipped (reads go to the primary) and comes back by itself; no request fails."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from typing import Any
from uuid import UUID

import pytest

from edu_domain.model import User
from edu_infra.consistency import read_your_writes
from edu_infra.sqlalchemy import SqlUnitOfWorkFactory
from tests.replica.cluster import Cluster
from tests.replica.support import APP, opened, replayed, replica_set, superuser, with_users

pytestmark = pytest.mark.postgres

DATABASE = "edu_faults"
CLIENTS = 8


async def _read(factory: SqlUnitOfWorkFactory, org: UUID) -> tuple[int, str | None, str | None]:
    """A token-less read in a request of its own: (users counted, target, reason)."""
    with read_your_writes():
        async with factory(tenant=org, read_only=True) as uow:
            count = await uow.count(User)
            route = uow.rows.route  # type: ignore[attr-defined]
    return count, route.target, None if route.reason is None else route.reason.value


async def test_a_replica_that_is_down_is_skipped(cluster: Cluster) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = cluster.url(port, DATABASE, APP)
    async with opened(cluster, DATABASE, replica_urls=(down,), connect_timeout=2.0) as factory:
        org, _ = await with_users(factory, 2)
        assert await _read(factory, org) == (2, "primary", "down")
        assert [s["health"] for s in replica_set(factory).status()] == ["down"]


async def test_a_replica_stopped_and_restarted_under_load_fails_no_request(
    cluster: Cluster,
) -> None:
    async with opened(cluster, DATABASE, replica_wait=0.05) as factory:
        org, users = await with_users(factory, CLIENTS)
        await replayed(cluster, DATABASE)
        phase = ["before"]
        served: Counter[tuple[str, str | None]] = Counter()
        failures: list[BaseException] = []
        progress = asyncio.Condition()
        done = asyncio.Event()
        requests = [0]

        async def client(index: int) -> None:
            step = 0
            while not done.is_set():
                step += 1
                try:
                    if step % 5 == 0:  # a write, read back in the same request
                        with read_your_writes():
                            async with factory(tenant=org) as uow:
                                user = await uow.require(User, users[index].id)
                                user.full_name = f"c{index}s{step}"
                                await uow.commit()
                            async with factory(tenant=org, read_only=True) as uow:
                                seen = await uow.require(User, users[index].id)
                            assert seen.full_name == f"c{index}s{step}"
                    else:
                        # The phase the read began in: a read served by the replica just
                        # before it stopped may finish (its ROLLBACK failing) after that.
                        began = phase[0]
                        count, target, _ = await _read(factory, org)
                        assert count == CLIENTS
                        async with progress:
                            served[(began, target)] += 1
                            progress.notify_all()
                except Exception as error:
                    failures.append(error)
                requests[0] += 1

        async def reached(key: tuple[str, str], count: int) -> None:
            async with progress:
                await progress.wait_for(lambda: served[key] >= count or requests[0] > 50_000)
            assert served[key] >= count, f"{key}: {served}"

        async def operator() -> None:
            try:
                await reached(("before", "replica-1"), 100)
                await asyncio.to_thread(cluster.stop_standby)
                phase[0] = "down"
                await reached(("down", "primary"), 100)
                phase[0] = "restarting"  # it may serve before pg_ctl start returns
                await asyncio.to_thread(cluster.start_standby)
                phase[0] = "after"
                await reached(("after", "replica-1"), 100)
            finally:
                done.set()

        try:
            await asyncio.gather(operator(), *(client(i) for i in range(CLIENTS)))
        finally:
            if phase[0] in ("down", "restarting"):
                cluster.start_standby()
        reasons = Counter({reason: n for (_, reason), n in replica_set(factory).reads.items()})
        print(f"\nstop/restart under load: {requests[0]} requests, {len(failures)} failed,"
              f" served {dict(served)}, routes {dict(reasons)}")  # fmt: skip
        assert failures == []
        assert served[("down", "replica-1")] == 0
        assert reasons["down"] > 0


async def test_a_lagging_replica_is_skipped_until_it_catches_up(cluster: Cluster) -> None:
    async with opened(
        cluster, DATABASE, replica_max_lag=0.3, replica_wait=0.05, replica_retry=0.05
    ) as factory:
        org, users = await with_users(factory, 2)
        await replayed(cluster, DATABASE)
        assert (await _read(factory, org))[1] == "replica-1"
        await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_pause()")
        try:
            with read_your_writes() as chain:  # a write whose token the replica cannot replay
                async with factory(tenant=org) as uow:
                    user = await uow.require(User, users[0].id)
                    user.full_name = "Written while paused"
                    await uow.commit()
                async with factory(tenant=org, read_only=True) as uow:
                    seen = await uow.require(User, users[0].id)
                    route: Any = uow.rows.route  # type: ignore[attr-defined]
            assert chain.token is not None
            assert seen.full_name == "Written while paused"
            assert (route.target, route.reason.value) == ("primary", "behind_token")
            outcomes = [await _read(factory, org)]
            for _ in range(500):  # the lag estimate passes 0.3 s: reads skip the replica
                if outcomes[-1][2] == "lagging":
                    break
                await asyncio.sleep(0.01)
                outcomes.append(await _read(factory, org))
            assert outcomes[-1] == (2, "primary", "lagging"), outcomes[-3:]
            assert [s["health"] for s in replica_set(factory).status()] == ["lagging"]
        finally:
            await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_resume()")
        back = [await _read(factory, org)]
        for _ in range(500):  # replay resumed: the replica comes back by itself
            if back[-1][1] == "replica-1":
                break
            await asyncio.sleep(0.01)
            back.append(await _read(factory, org))
        assert back[-1] == (2, "replica-1", "replica"), back[-3:]
        assert [s["health"] for s in replica_set(factory).status()] == ["ok"]


async def test_a_replica_lost_in_the_middle_of_a_unit_of_work_fails_it_over_to_the_primary(
    cluster: Cluster,
) -> None:
    async with opened(cluster, DATABASE) as factory:
        org, _ = await with_users(factory, 3)
        async with factory(tenant=org, read_only=True) as uow:
            assert await uow.count(User) == 3
            route: Any = uow.rows.route  # type: ignore[attr-defined]
            assert route.target == "replica-1"
            backend = (await uow.rows.driver()).get_server_pid()  # type: ignore[attr-defined]
            await superuser(
                cluster, cluster.standby_port, f"SELECT pg_terminate_backend({backend})"
            )
            assert await uow.count(User) == 3  # the same read once more, on the primary
            assert (route.target, route.reason.value) == ("primary", "failover")
            assert await uow.count(User, include_deleted=True) == 3  # and the rest of the unit
        assert replica_set(factory).reads[("primary", "failover")] == 1


async def test_a_dead_pooled_replica_connection_is_replaced_and_a_lost_read_only_commit_is_no_error(
    cluster: Cluster,
) -> None:
    async def kill(uow: Any) -> None:
        backend = (await uow.rows.driver()).get_server_pid()
        await superuser(cluster, cluster.standby_port, f"SELECT pg_terminate_backend({backend})")

    async with opened(cluster, DATABASE, pool_size=1, max_overflow=0) as factory:
        org, users = await with_users(factory, 2)
        async with factory(tenant=org, read_only=True) as uow:
            assert await uow.count(User) == 2
            await kill(uow)  # its connection goes back to the pool, dead
        with read_your_writes():  # a newer token: the next read probes the pooled connection
            async with factory(tenant=org) as uow:
                (await uow.require(User, users[0].id)).full_name = "Probed"
                await uow.commit()
            async with factory(tenant=org, read_only=True) as uow:
                assert (await uow.require(User, users[0].id)).full_name == "Probed"
                route: Any = uow.rows.route  # type: ignore[attr-defined]
                assert route.target == "replica-1"  # a fresh connection, after the dead one
                await kill(uow)
                await uow.commit()  # a read-only transaction lost at COMMIT: nothing lost
                assert await uow.count(User) == 2  # and the unit of work reads on
        assert replica_set(factory).reads[("primary", "failover")] == 0
