"""The connection pool: first come, first served, and a checkout without the greenlet.

SQLAlchemy's `AsyncAdaptedQueuePool` waits on an `asyncio.Queue`: a returned connection
wakes the oldest waiter, but the task that returned it runs on, asks again, finds the
connection still queued and takes it; the woken waiter queues again at the back. Under a
saturated pool one request can be overtaken for seconds (bench/README.md, *Tail latency*).
`FairQueuePool` hands a returned connection to the oldest waiter directly, and nobody
takes an idle connection while anyone waits: connections are served in arrival order.

`checkout` / `checkin` are every unit of work's way in and out of a pool. An idle
connection is taken, and a clean one returned, without SQLAlchemy's greenlet bridge when
the pool needs no I/O for it (two greenlet switches and a greenlet per call saved); else
they go through `greenlet_spawn` as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_only, greenlet_spawn
from sqlalchemy.util import queue as sqla_queue

from edu_infra.sqlalchemy.sa_internals import is_live

log = logging.getLogger("edu_infra")


class _Idle(sqla_queue.QueueCommon[ConnectionPoolEntry]):
    """The idle connections, oldest first (the pool's waiters wait in the pool, not here)."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[ConnectionPoolEntry] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: ConnectionPoolEntry) -> None:
        if self.full():
            raise sqla_queue.Full()
        self._items.append(item)

    def put(
        self, item: ConnectionPoolEntry, block: bool = True, timeout: float | None = None
    ) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> ConnectionPoolEntry:
        if not self._items:
            raise sqla_queue.Empty()
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> ConnectionPoolEntry:
        return self.get_nowait()

    def next(self) -> ConnectionPoolEntry | None:
        """The connection `get_nowait` would take."""
        if not self._items:
            return None
        return self._items[-1] if self.use_lifo else self._items[0]


class FairQueuePool(AsyncAdaptedQueuePool):
    """`AsyncAdaptedQueuePool` that serves waiting checkouts in arrival order."""

    _queue_class = _Idle
    _pool: _Idle

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        #: checkouts waiting for a connection, oldest first (each gets a record, or None:
        #: room for a new connection was freed, try again)
        self._waiters: deque[asyncio.Future[ConnectionPoolEntry | None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def idle_ready(self) -> bool:
        """True when a checkout now takes an idle connection that needs no I/O first (no
        reconnect, recycle or invalidation due) and nobody is ahead of it."""
        if self._waiters or self._pre_ping:
            return False
        record = self._pool.next()
        return record is not None and is_live(self, record)

    def returns_without_io(self) -> bool:
        """True when a returned connection is kept (handed on or queued), not closed."""
        return bool(self._waiters) or not self._pool.full()

    def _do_get(self) -> ConnectionPoolEntry:
        may_take = not self._waiters  # else wait behind those who came first
        while True:
            if may_take:
                if not self._pool.empty():
                    return self._pool.get_nowait()
                if self._inc_overflow():
                    try:
                        return self._create_connection()
                    except BaseException:
                        self._dec_overflow()
                        raise
            record = await_only(self._wait())
            if record is not None:
                return record
            may_take = True  # room for a new connection was freed for this waiter

    async def _wait(self) -> ConnectionPoolEntry | None:
        waiter: asyncio.Future[ConnectionPoolEntry | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                return await waiter
        except BaseException as error:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self._pass_on(waiter.result())  # handed to us as we gave up
            if isinstance(error, TimeoutError):
                raise exc.TimeoutError(
                    f"QueuePool limit of size {self.size()} overflow {self.overflow()} reached,"
                    f" connection timed out, timeout {self._timeout:.2f}",
                    code="3o7r",
                ) from None
            raise

    def _hand_on(self, record: ConnectionPoolEntry | None) -> bool:
        """Give `record` (None: room for a new connection) to the oldest waiter, if any."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(record)
                return True
        return False

    def _pass_on(self, record: ConnectionPoolEntry | None) -> None:
        """What a waiter got as it gave up: to the next waiter, or (a connection nobody
        waits for) back among the idle ones; room for a new connection is free already."""
        if record is None:
            self._hand_on(None)
        else:
            self._do_return_conn(record)

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        if not self._hand_on(record):
            super()._do_return_conn(record)

    def _dec_overflow(self) -> Any:
        done = super()._dec_overflow()
        self._hand_on(None)
        return done


async def checkout(engine: AsyncEngine) -> Connection:
    """A pooled connection of `engine`; an idle one without the greenlet bridge."""
    sync_engine = engine.sync_engine
    pool = sync_engine.pool
    if isinstance(pool, FairQueuePool) and pool.idle_ready():
        try:
            return sync_engine.connect()
        except exc.MissingGreenlet:
            # the idle connection needed I/O first (recycled, invalidated): SQLAlchemy put
            # its record back; check out through the greenlet bridge
            log.debug("an idle connection needs reconnecting")
    conn: Connection = await greenlet_spawn(sync_engine.connect)
    return conn


async def checkin(conn: Connection, *, clean: bool) -> None:
    """Return `conn` to its pool (`clean`: no transaction left open on the driver, none on
    the connection, vouched for): without the greenlet bridge when that needs no I/O."""
    pool = conn.engine.pool
    if (
        clean
        and isinstance(pool, FairQueuePool)
        and pool.returns_without_io()
        and not conn.invalidated
        and not conn.in_transaction()
    ):
        conn.close()
        return
    await greenlet_spawn(conn.close)


__all__ = ["FairQueuePool", "checkin", "checkout"]
