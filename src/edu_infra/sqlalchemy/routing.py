"""Where a unit of work's rows go when the database has read replicas.

A read-only unit of work reads on a replica (`ReadRoute`), chosen by the `ReplicaSet`'s
policy among the usable ones, on the replica's own pool. Before its first statement:
- with no look at the replica younger than `retry` seconds, or with a consistency token the
  replica was not yet seen to have replayed, one probe on the connection it will use
  (`pg_is_in_recovery()`, `pg_last_wal_replay_lsn()`, whether a WAL receiver runs), and, at
  most every `retry` seconds for the whole set, a look at the primary's flushed position
  (the lag is the age of the oldest position of the primary the replica has not replayed);
- a token not yet replayed: the probe repeats (1 to 5 ms apart) until it is, at most
  `wait` seconds in all; then the primary;
- a replica down, lagging beyond `max_lag` or promoted: the next one, then the primary.
Every transaction then opens as on the primary (`connection.py`: BEGIN READ ONLY and the
signed tenant), so the guard and row-level security are the same. A replica lost in the
middle of the unit of work fails it over to the primary (`fail_over`).

`routed_rows.RoutedRows` wraps the row path of every unit of work when replicas are
configured: it refuses the writes of a read-only one and records the tokens of commits.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.util import greenlet_spawn

from edu_infra import consistency
from edu_infra.consistency import ConsistencyToken
from edu_infra.sqlalchemy.connection import CLEAN_INFO
from edu_infra.sqlalchemy.engine import Database
from edu_infra.sqlalchemy.errors import is_driver_error
from edu_infra.sqlalchemy.pool import checkout
from edu_infra.sqlalchemy.replicas import PRIMARY, Health, Probe, Reason, Replica, ReplicaSet
from edu_infra.sqlalchemy.rls import THIS_VXID, signer_of

log = logging.getLogger("edu_infra")

#: What a replica says about itself (one statement between transactions): whether it is a
#: standby, how far it replayed, and whether a WAL receiver runs (`pg_stat_wal_receiver`
#: shows every role whether one runs; a standby cut off from its primary has replayed all
#: it received, so its replay position alone looks current).
PROBE = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"  # noqa: S608
    " EXISTS (SELECT FROM pg_stat_wal_receiver), " + THIS_VXID
)
#: Where the primary is (what a standby can have: the flushed WAL), for the lag.
PRIMARY_POSITION = "SELECT pg_current_wal_flush_lsn()::text, " + THIS_VXID
_FIRST_PAUSE, _LONGEST_PAUSE = 0.001, 0.005
_SKIPPED = {
    Health.DOWN: Reason.DOWN,
    Health.LAGGING: Reason.LAGGING,
    Health.PROMOTED: Reason.PROMOTED,
    Health.UNKNOWN: Reason.UNCHECKED,
    Health.BUSY: Reason.BUSY,
}


async def _release(conn: Connection) -> None:
    """Back to its pool: only our probes ran on it, between transactions."""
    conn.info[CLEAN_INFO] = True
    await greenlet_spawn(conn.close)


async def _dropped(conn: Connection, error: BaseException) -> None:
    """A connection whose probe failed or was cancelled is discarded (never left checked
    out); anything but a driver error, a cancellation included, goes on up."""
    await _discard(conn)
    if not (isinstance(error, Exception) and is_driver_error(error)):
        raise error


async def _discard(conn: Connection) -> None:
    try:
        await greenlet_spawn(conn.invalidate)
        await greenlet_spawn(conn.close)
    except Exception:
        log.debug("discarding a replica connection failed", exc_info=True)


def token_of(text: object) -> ConsistencyToken | None:
    return None if text is None else ConsistencyToken.parse(text)


class ReadRoute:
    """Picks the server of one read-only unit of work, at its first statement: the token is
    the newest of `after` and the call chain's at that moment (`edu_infra.consistency`)."""

    def __init__(
        self, database: Database, replicas: ReplicaSet, after: ConsistencyToken | None
    ) -> None:
        self._database = database
        self._replicas = replicas
        self._after = after
        self.token: ConsistencyToken | None = None
        self._pinned = False
        self._current: Replica | None = None
        self._excluded: set[str] = set()
        #: where the reads went ("primary" or a replica's name; None: no statement yet) and why
        self.target: str | None = None
        self.reason: Reason | None = None
        #: seconds spent waiting for a replica to replay the token
        self.waited = 0.0

    async def checkout(self) -> Connection:
        """The connection for this unit of work (`connection.Checkout`)."""
        if self._current is not None:  # asked again: the connection handed out died unused
            await self._replicas.failed(self._current, down=False)
            self._excluded.add(self._current.name)
            self._current = None
        if self.target is None:  # the first statement
            chain = consistency.current_chain()
            tokens = [t for t in (self._after, chain.token if chain else None) if t is not None]
            self.token = max(tokens, default=None)
            self._pinned = consistency.primary_required()
        if self._pinned:
            return await self._primary(self.reason or Reason.PRIMARY_REQUIRED)
        replicas = self._replicas
        deadline = replicas.clock() + replicas.wait
        reason: Reason | None = None
        for replica in replicas.order(frozenset(self._excluded)):
            conn, why = await self._try(replica, deadline)
            if conn is not None:
                self._current = replica
                self._decide(replica.name, why)
                return conn
            self._excluded.add(replica.name)
            reason = reason or why
        skipped = replicas.skipped(frozenset(self._excluded))
        if reason is None and skipped is not None:
            reason = _SKIPPED[skipped]
        return await self._primary(reason or Reason.DOWN)

    async def fail_over(self) -> bool:
        """The replica was lost mid-unit: read from the primary from now on (True), unless
        this unit of work is on the primary already (False)."""
        if self._current is None:
            return False
        await self._replicas.failed(self._current, down=False)
        self._current = None
        self._pinned = True
        self.reason = Reason.FAILOVER
        return True

    def _decide(self, target: str, reason: Reason) -> None:
        self.target, self.reason = target, reason
        self._replicas.count(target, reason)

    async def _primary(self, reason: Reason) -> Connection:
        if self.target != PRIMARY:  # (a retry on a fresh primary connection is no new route)
            self._decide(PRIMARY, reason)
        self._pinned = True
        engine = self._database.engine
        conn: Connection = await checkout(engine)
        return conn

    async def _try(self, replica: Replica, deadline: float) -> tuple[Connection | None, Reason]:
        """A connection to `replica` fit for this read, or None and why not."""
        skipped = replica.health in (Health.DOWN, Health.LAGGING, Health.PROMOTED)
        replica.probing = skipped  # due for another look: this read looks, others pass it by
        try:
            conn, health = await self._connect(replica)
        finally:
            replica.probing = False
        if conn is None or health is not Health.OK:
            return None, _SKIPPED[health]
        if self.token is None or (replica.replayed is not None and replica.replayed >= self.token):
            return conn, Reason.REPLICA
        if replica.waiting >= self._replicas.max_waiting:  # enough reads wait there already
            await _release(conn)
            return None, Reason.BEHIND_TOKEN
        replica.waiting += 1
        try:
            if await self._caught_up(replica, conn, deadline):
                return conn, Reason.WAITED
        finally:
            replica.waiting -= 1
        return None, Reason.BEHIND_TOKEN

    async def probe(self, replica: Replica) -> Health:
        """Look at `replica` once (a health check), its connection back in its pool."""
        conn, health = await self._connect(replica)
        if conn is not None:
            await _release(conn)
        return health

    async def _connect(self, replica: Replica) -> tuple[Connection | None, Health]:
        """A connection, probed first if the last look is stale or the token asks for more;
        None when the replica is down or not fit (the connection is back in its pool)."""
        replicas = self._replicas
        needs_probe = replicas.needs_probe(replica, self.token)
        try:
            conn: Connection = await checkout(replica.engine)
        except sa_exc.TimeoutError:  # its pool is exhausted: busy, not down
            return None, Health.BUSY
        except Exception as error:  # the pool has no I/O of its own: this was a new connection
            if not is_driver_error(error):
                raise
            await replicas.failed(replica, down=True)
            return None, Health.DOWN
        if not needs_probe:
            return conn, Health.OK
        if replicas.primary_due():
            await self._look_at_primary()
        probed = await self._probe(replica, conn)
        if probed is None:
            return None, Health.DOWN
        conn, health = probed
        if health is not Health.OK:
            await _release(conn)
            return None, health
        return conn, health

    async def _probe(self, replica: Replica, conn: Connection) -> tuple[Connection, Health] | None:
        """Ask the replica; a pooled connection that died gets one fresh try (its pool is
        emptied first). None: the replica is down."""
        for attempt in (1, 2):
            try:
                row = await self._ask(conn)
            except BaseException as error:
                await _dropped(conn, error)
                await self._replicas.failed(replica, down=attempt == 2)
                if attempt == 2:
                    return None
                try:
                    conn = await checkout(replica.engine)
                except Exception as again:
                    if not is_driver_error(again):
                        raise
                    await self._replicas.failed(replica, down=True)
                    return None
                continue
            probe = Probe(bool(row[0]), token_of(row[1]), bool(row[2]))
            return conn, self._replicas.observe(replica, probe)
        return None  # pragma: no cover - the loop returns

    async def _look_at_primary(self) -> None:
        """Record the primary's flushed position (one read at most every `retry`): a
        replica that has not replayed it within `max_lag` lags, whichever instance wrote.
        A failure costs only this look."""
        replicas = self._replicas
        previous, replicas.primary_checked = replicas.primary_checked, replicas.clock()
        try:
            conn: Connection = await greenlet_spawn(self._database.engine.sync_engine.connect)
        except Exception as error:
            if not is_driver_error(error):
                raise
            return
        try:
            row = await self._ask(conn, PRIMARY_POSITION)
        except BaseException as error:
            await _dropped(conn, error)
            return
        await _release(conn)
        position = token_of(row[0])
        if position is not None:
            replicas.looked(position, previous)

    async def _ask(self, conn: Connection, statement: str = PROBE) -> Any:
        driver = conn.connection.dbapi_connection.driver_connection  # type: ignore[union-attr]
        row = await driver.fetchrow(statement)
        signer_of(conn).ran(row[-1])
        return row

    async def _caught_up(self, replica: Replica, conn: Connection, deadline: float) -> bool:
        """Probe until the replica has replayed the token or the deadline passes; a connection
        that fails meanwhile is discarded (False)."""
        assert self.token is not None
        clock, pause = self._replicas.clock, _FIRST_PAUSE
        started = clock()
        try:
            while clock() < deadline:
                await asyncio.sleep(min(pause, max(0.0, deadline - clock())))
                pause = min(pause * 2, _LONGEST_PAUSE)
                row = await self._ask(conn)
                self._replicas.replayed(replica, token_of(row[1]))
                if replica.replayed is not None and replica.replayed >= self.token:
                    return True
        except BaseException as error:
            await _dropped(conn, error)
            await self._replicas.failed(replica, down=False)
            return False
        finally:
            self.waited += clock() - started
        await _release(conn)
        return False


__all__ = ["PRIMARY_POSITION", "PROBE", "ReadRoute", "token_of"]
