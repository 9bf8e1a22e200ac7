"""Review 17b: false and missed LAGGING, tokens that no standby reports, and reads that are
cancelled while they wait for a token (the session's primary + standby, `tests/replica`).

- a commit position at the start of a WAL page: `pg_current_wal_insert_lsn()` names the
  byte after the page header, which a standby never reports as replayed while the primary
  is idle; the token then sends every read to the primary and the replica turns LAGGING;
- after the primary was idle longer than `max_lag`, one write the standby has not yet
  replayed makes its own estimate (the age of the last replayed transaction) say "idle
  time", so a replica milliseconds behind is skipped as LAGGING;
- a replication link that stalls without closing (the walsender stopped): the receiver is
  still there and has replayed all it received, so the commits of another instance never
  make the replica LAGGING and it serves their old rows well past the lag bound.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text

from edu_domain.model import User
from edu_infra.consistency import ConsistencyToken, read_your_writes
from edu_infra.sqlalchemy import SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.replicas import Replica
from tests.replica.cluster import Cluster
from tests.replica.support import opened, replayed, replica_set, superuser, with_users

pytestmark = pytest.mark.postgres

DATABASE = "edu_review17b_lag"
PAGE = 8192
SHORT_PAGE_HEADER = 24


def _replica(factory: SqlUnitOfWorkFactory) -> Replica:
    return replica_set(factory).replicas[0]


async def _read(factory: SqlUnitOfWorkFactory, org: UUID, user: UUID) -> tuple[str, Any]:
    with read_your_writes():
        async with factory(tenant=org, read_only=True) as uow:
            seen = await uow.require(User, user)
            route: Any = uow.rows.route  # type: ignore[attr-defined]
    return seen.full_name, route


def _position(text_lsn: str) -> int:
    high, low = (int(part, 16) for part in text_lsn.split("/"))
    return (high << 32) | low


async def _wal_to_a_page_end(cluster: Cluster) -> None:
    """Pad the primary's WAL (logical messages, as the superuser) so that its last record
    ends exactly at a page boundary: the insert position is then just past a page header."""
    conn = await asyncpg.connect(cluster.dsn(cluster.primary_port, "postgres"))
    try:
        for _ in range(50):
            before = _position(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
            await conn.execute("SELECT pg_logical_emit_message(false, 'r', repeat('x', 300))")
            now = _position(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
            overhead, size = now - before - 300, PAGE - now % PAGE - (now - before - 300)
            if size < 300 or overhead > 200:  # too close to the page end, or crossed a page
                await conn.execute("SELECT pg_logical_emit_message(false, 'r', repeat('x', 4000))")
                continue
            await conn.execute(f"SELECT pg_logical_emit_message(false, 'r', repeat('x', {size}))")
            end = _position(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
            if end % PAGE == SHORT_PAGE_HEADER:
                return
        raise AssertionError("could not end the WAL at a page boundary")
    finally:
        await conn.close()


async def test_a_token_at_a_wal_page_boundary_is_reached_by_a_caught_up_standby(
    cluster: Cluster,
) -> None:
    async with opened(
        cluster, DATABASE, replica_wait=0.3, replica_max_lag=0.3, replica_retry=0.05
    ) as factory:
        org, _ = await with_users(factory, 1, full_name="Before")
        await replayed(cluster, DATABASE)
        token: str | None = None
        for _ in range(10):  # a commit of the library's own whose position is a page start
            await _wal_to_a_page_end(cluster)
            async with factory(tenant=org) as uow:
                await uow.execute(text("SELECT 1"))  # type: ignore[attr-defined]
                await uow.commit()
                token = uow.consistency_token
            if token is not None and _position(token) % PAGE == 0:
                break
        # the insert position was just past the next page's header (SHORT_PAGE_HEADER bytes);
        # the token names the page's start, where the WAL really ends
        assert token is not None and _position(token) % PAGE == 0
        boundary = _position(token)
        for _ in range(600):  # the standby has replayed all the primary wrote
            replay = await superuser(
                cluster, cluster.standby_port, "SELECT pg_last_wal_replay_lsn()::text"
            )
            if _position(replay) >= boundary:
                break
            await asyncio.sleep(0.05)
        with read_your_writes(token):
            async with factory(tenant=org, read_only=True) as uow:
                await uow.count(User)
                route: Any = uow.rows.route  # type: ignore[attr-defined]
        # at once: nothing the token names is missing on the standby
        assert (route.target, route.reason.value) == ("replica-1", "replica"), route.waited


async def test_a_replica_just_behind_a_write_after_an_idle_period_is_not_lagging(
    cluster: Cluster,
) -> None:
    async with opened(
        cluster, DATABASE, replica_wait=0.05, replica_max_lag=1.0, replica_retry=0.05
    ) as factory:
        org, (user,) = await with_users(factory, 1, full_name="Before")
        await replayed(cluster, DATABASE)
        await asyncio.sleep(2.5)  # the primary idle for more than max_lag
        await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_pause()")
        try:
            with read_your_writes():
                async with factory(tenant=org) as uow:
                    (await uow.require(User, user.id)).full_name = "Now"
                    await uow.commit()
            await asyncio.sleep(0.1)  # past the retry interval: the next read probes
            _name, route = await _read(factory, org, user.id)
            status = replica_set(factory).status()
        finally:
            await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_resume()")
        # it is one commit (made a fraction of max_lag ago) behind: within the bound
        assert [s["health"] for s in status] == ["ok"], status
        assert route.target == "replica-1"


async def test_a_stalled_replication_link_is_lagging_for_another_instances_commits(
    cluster: Cluster,
) -> None:
    max_lag, retry = 0.3, 0.05
    async with (
        opened(
            cluster, DATABASE, replica_wait=0.05, replica_max_lag=max_lag, replica_retry=retry
        ) as factory,
        opened(cluster, DATABASE) as other_instance,
    ):
        org, (user,) = await with_users(factory, 1, full_name="Before")
        await replayed(cluster, DATABASE)
        walsender = await superuser(
            cluster, cluster.primary_port, "SELECT pid FROM pg_stat_replication"
        )
        assert isinstance(walsender, int)
        os.kill(walsender, signal.SIGSTOP)
        try:
            with read_your_writes():
                async with other_instance(tenant=org) as uow:
                    (await uow.require(User, user.id)).full_name = "Other instance"
                    await uow.commit()
            await asyncio.sleep(5 * (max_lag + retry))  # well past the stated staleness bound
            name, route = await _read(factory, org, user.id)
        finally:
            os.kill(walsender, signal.SIGCONT)
        await replayed(cluster, DATABASE)
        assert name == "Other instance", (route.target, replica_set(factory).status())


async def _cancelled_waits(factory: SqlUnitOfWorkFactory, org: UUID, token: str, n: int) -> None:
    async def read() -> None:
        async with factory(tenant=org, read_only=True, after=token) as uow:
            await uow.count(User)

    for _ in range(n):
        waiting = asyncio.create_task(read())
        for _ in range(500):
            if _replica(factory).waiting:
                break
            await asyncio.sleep(0.01)
        assert _replica(factory).waiting == 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting


async def _paused_write(
    cluster: Cluster, factory: SqlUnitOfWorkFactory, org: UUID, user: UUID
) -> str:
    await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_pause()")
    with read_your_writes() as chain:
        async with factory(tenant=org) as uow:
            (await uow.require(User, user)).full_name = "Written while paused"
            await uow.commit()
    assert chain.token is not None
    return str(chain.token)


async def test_reads_cancelled_while_waiting_for_a_token_free_their_waiter_slot(
    cluster: Cluster,
) -> None:
    async with opened(
        cluster, DATABASE, pool_size=2, max_overflow=0, replica_wait=30.0, replica_retry=30.0
    ) as factory:
        org, (user,) = await with_users(factory, 1, full_name="Before")
        await replayed(cluster, DATABASE)
        try:
            token = await _paused_write(cluster, factory, org, user.id)
            await _cancelled_waits(factory, org, token, 3)  # more than the cap (1) in turn
            assert _replica(factory).waiting == 0
        finally:
            await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_resume()")
        await replayed(cluster, DATABASE)
        with read_your_writes(ConsistencyToken.parse(token)):
            async with factory(tenant=org, read_only=True) as uow:
                assert (await uow.require(User, user.id)).full_name == "Written while paused"
                route: Any = uow.rows.route  # type: ignore[attr-defined]
        assert route.target == "replica-1"


async def test_a_read_cancelled_while_waiting_returns_its_connection(cluster: Cluster) -> None:
    async with opened(
        cluster,
        DATABASE,
        pool_size=2,
        max_overflow=0,
        pool_timeout=0.2,
        replica_wait=30.0,
        replica_retry=30.0,
    ) as factory:
        org, (user,) = await with_users(factory, 1, full_name="Before")
        await replayed(cluster, DATABASE)
        try:
            token = await _paused_write(cluster, factory, org, user.id)
            await _cancelled_waits(factory, org, token, 2)  # the host's timeouts, say
            gc.collect()
            in_use = _replica(factory).in_use()
        finally:
            await superuser(cluster, cluster.standby_port, "SELECT pg_wal_replay_resume()")
        await replayed(cluster, DATABASE)
        _name, route = await _read(factory, org, user.id)
        assert in_use == 0  # no read is in flight
        assert (route.target, route.reason.value) == ("replica-1", "replica")


async def test_a_busy_replica_sends_reads_to_the_primary_and_stays_in_use(
    cluster: Cluster,
) -> None:
    async with opened(
        cluster, DATABASE, pool_size=1, max_overflow=0, pool_timeout=0.2, replica_retry=30.0
    ) as factory:
        org, (user,) = await with_users(factory, 1, full_name="Before")
        await replayed(cluster, DATABASE)
        async with factory(tenant=org, read_only=True) as holder:  # holds its one connection
            assert await holder.count(User) == 1
            assert holder.rows.route.target == "replica-1"  # type: ignore[attr-defined]
            name, route = await _read(factory, org, user.id)
        assert (name, route.target, route.reason.value) == ("Before", "primary", "busy")
        assert replica_set(factory).reads[("primary", "busy")] == 1
        assert [s["health"] for s in replica_set(factory).status()] == ["ok"]
        assert (await _read(factory, org, user.id))[1].target == "replica-1"
