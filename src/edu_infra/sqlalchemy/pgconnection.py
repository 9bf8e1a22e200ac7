"""The one pooled connection of a PostgreSQL unit of work, and the transaction on it.

A unit of work checks out a connection on its first statement and keeps it until it
closes: reads run on the driver directly, the session writes through the same connection
(`UowSession.get_bind`), so both see one transaction.

The transaction opens with `BEGIN` and the tenant settings in one simple-protocol query,
and that query is also the liveness check of a freshly checked-out connection: a
connection the server dropped while it sat in the pool fails it, is invalidated, and the
next one is tried (what `pool_pre_ping` does, without a round trip of its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from edu_infra.sqlalchemy.errors import classify, is_driver_error
from edu_infra.sqlalchemy.session import (
    BOUND_SETTINGS,
    BegunTransaction,
    adapter_idle,
    begin_query,
)

log = logging.getLogger("edu_infra")


class UowConnection:
    """Checks out lazily, begins with the unit of work's settings, retries a dead checkout."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings_for: Callable[[Connection], dict[str, str]],
        *,
        ping: bool,
        attempts: int,
    ) -> None:
        self._engine = engine
        self._settings_for = settings_for
        self._attempts = max(1, attempts) if ping else 1
        self._conn: Connection | None = None
        #: the transaction `begin` opened (a BegunTransaction, or asyncpg's own at a
        #: non-default isolation level)
        self.begun: Any = None

    def _adapter(self) -> Any:
        assert self._conn is not None
        return self._conn.connection.dbapi_connection

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None and self._adapter()._transaction is not None

    def _retry(self, error: Exception, fresh: bool, attempt: int) -> bool:
        """True when `error` is a dead pooled connection worth replacing (the pre-ping case)."""
        return (
            fresh
            and attempt < self._attempts
            and is_driver_error(error)
            and classify(error).disconnect
        )

    def _hand_over(self) -> tuple[Any, BegunTransaction] | None:
        """The adapter's driver and a new transaction for it, or None if one is open."""
        adapter = self._adapter()
        if adapter._transaction is not None or not adapter_idle(adapter):
            return None
        begun = BegunTransaction(adapter.driver_connection)
        # handed over first: if the query fails after its BEGIN, the rollback still goes out
        adapter._transaction = begun
        return adapter, begun

    # ------------------------------------------------------------------ begin

    async def begin(self) -> Any:
        """The asyncpg connection, in a transaction begun with the settings if none is open.

        The settings are signed for the connection's server process, so the query is built
        once the connection is checked out.
        """
        attempt = 0
        while True:
            attempt += 1
            fresh = self._conn is None
            if fresh:
                self._conn = await greenlet_spawn(self._engine.sync_engine.connect)
            assert self._conn is not None
            open_adapter = self._adapter()
            if open_adapter._transaction is not None:  # the common case: already begun
                return open_adapter.driver_connection
            settings = self._settings_for(self._conn)
            query = begin_query(settings)
            handed = self._hand_over() if query is not None else None
            try:
                if handed is None:
                    return await self._begin_bound(settings)
                adapter, begun = handed
                await adapter.driver_connection.execute(query)
            except Exception as error:
                if self._retry(error, fresh, attempt):
                    log.info("a pooled connection was dead; checking out another")
                    await self.invalidate()
                    continue
                raise
            self.begun = begun
            return adapter.driver_connection

    async def _begin_bound(self, settings: dict[str, str]) -> Any:
        """BEGIN as the adapter would (its isolation level), then the settings, bound."""
        adapter = self._adapter()
        driver = adapter.driver_connection
        if adapter._transaction is None:
            await adapter._start_transaction()
            await driver.execute(
                BOUND_SETTINGS,
                settings["tenant"],
                settings["unscoped"],
                settings["signature"],
                settings["lock_timeout"],
            )
            self.begun = adapter._transaction
        return driver

    def sync_connection(self) -> Connection:
        """The connection for the session (inside SQLAlchemy's greenlet), begun if fresh."""
        attempt = 0
        while self._conn is None:
            attempt += 1
            conn = self._conn = self._engine.sync_engine.connect()
            handed = self._hand_over()
            if handed is None:
                break
            adapter, begun = handed
            query = begin_query(self._settings_for(conn))
            if query is None:  # the session's after_begin sends them bound instead
                adapter._transaction = None
                break
            try:
                adapter.run_async(lambda driver, sql=query: driver.execute(sql))
            except Exception as error:
                self._conn = None
                self.begun = None
                try:
                    conn.invalidate()
                    conn.close()
                except Exception:
                    log.debug("invalidating a lost connection failed", exc_info=True)
                if self._retry(error, True, attempt):
                    log.info("a pooled connection was dead; checking out another")
                    continue
                adapter._handle_exception(error)
            self.begun = begun
        return self._conn

    def begun_here(self, adapter: Any) -> bool:
        """True when `adapter`'s open transaction is the one `begin` opened."""
        return self.begun is not None and getattr(adapter, "_transaction", None) is self.begun

    async def commit(self) -> None:
        await self._end("COMMIT")

    async def rollback(self) -> None:
        await self._end("ROLLBACK")

    async def _end(self, command: str) -> None:
        if not self.in_transaction:
            return
        adapter = self._adapter()
        transaction = adapter._transaction
        try:
            await (transaction.commit() if command == "COMMIT" else transaction.rollback())
        finally:
            adapter._transaction = None
            self.begun = None

    # ------------------------------------------------------------------ release

    async def invalidate(self) -> None:
        """Never hand a broken connection back to the pool."""
        conn, self._conn = self._conn, None
        self.begun = None
        if conn is None:
            return
        try:
            await greenlet_spawn(conn.invalidate)
            await greenlet_spawn(conn.close)
        except Exception:
            log.debug("invalidating a lost connection failed", exc_info=True)

    async def close(self) -> None:
        """Roll back whatever is open and return the connection to the pool."""
        if self._conn is None:
            return
        try:
            await self.rollback()
        except Exception:
            log.warning("rollback failed; discarding the connection", exc_info=True)
            await self.invalidate()
            return
        conn, self._conn = self._conn, None
        try:
            await greenlet_spawn(conn.close)
        except Exception:
            log.warning("returning a connection to the pool failed", exc_info=True)


__all__ = ["UowConnection"]
