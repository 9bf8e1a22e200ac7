"""The one pooled connection of a PostgreSQL unit of work, and the transaction on it.

A unit of work checks out a connection on its first statement and keeps it until it
closes: reads run on the driver directly, the session writes through the same connection
(`UowSession.get_bind`), so both see one transaction. Every transaction on it is opened
here, and only here:

- `BEGIN` and the transaction's settings in one simple-protocol query: a pinned
  `search_path` (the tables' schema, then `pg_temp`), the `lock_timeout`, and
  `edu_enter(scope, signature)`, which proves the tenant for this transaction alone
  (`rls.py`). At a non-default isolation level asyncpg begins and the same settings follow
  as one bound statement.
- A refused signature naming another vxid means the prediction was off (raw SQL ran other
  transactions): the opener learns the real one and retries once, in the same round trip
  as the ROLLBACK. A second refusal is a wrong EDU_RLS_KEY, reported as such.
- The query is also the liveness check of a freshly checked-out connection: one the server
  dropped while it sat in the pool fails it, is invalidated, and the next one is tried
  (what `pool_pre_ping` does, without a round trip of its own).

A unit of work that handed out its session may have run raw SQL: session settings,
prepared statements, cursors, advisory locks or LISTENs could outlive it. Its connection
is discarded at close instead of going back to the pool (`engine.py` discards any
connection no unit of work vouched for), so units of work that ran no raw SQL pay nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from attrs import frozen
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only, greenlet_spawn

from edu_infra.sqlalchemy.errors import DatabaseError, classify, is_driver_error, sqlstate_of
from edu_infra.sqlalchemy.pool import checkin, checkout
from edu_infra.sqlalchemy.rls import REFUSED_SQLSTATE, ConnectionSigner, signer_of
from edu_infra.sqlalchemy.sa_internals import (
    begin_at_adapter_level,
    hand_transaction,
    open_transaction,
)

log = logging.getLogger("edu_infra")

#: Where a pooled connection records that a unit of work returned it clean (`engine.py`).
CLEAN_INFO = "edu_clean"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_LITERAL = re.compile(r"[0-9a-f-]{36}|\*|[0-9a-f]{64}|[0-9]+ms|0")
_UNMIGRATED = {"42883", "42P01", "3F000"}  # undefined function / table / schema


@frozen
class TransactionSettings:
    """What every transaction of a unit of work starts with, besides its tenant."""

    schema: str = "public"
    lock_timeout_ms: int | None = None
    #: `BEGIN READ ONLY`: the server refuses every write, raw SQL's included
    read_only: bool = False

    def __attrs_post_init__(self) -> None:
        if not _IDENTIFIER.fullmatch(self.schema):
            raise ValueError("schema must be a plain identifier")

    @property
    def search_path(self) -> str:
        return f'"{self.schema}", pg_temp'

    @property
    def lock_timeout(self) -> str:
        ms = self.lock_timeout_ms
        return f"{int(ms)}ms" if ms is not None else "0"

    def begin_query(self, scope: str, signature: str) -> str:
        """BEGIN and the settings as one simple-protocol query (literals, checked)."""
        for value in (scope, signature, self.lock_timeout):
            if not _LITERAL.fullmatch(value):
                raise ValueError("refusing to write an unexpected value into SQL")
        begin = "BEGIN READ ONLY" if self.read_only else "BEGIN"
        return (
            f"{begin}; SELECT set_config('search_path', '{self.search_path}', true),"
            f" set_config('lock_timeout', '{self.lock_timeout}', true),"
            f" \"{self.schema}\".edu_enter('{scope}', '{signature}')"
        )

    @property
    def bound_query(self) -> str:
        """The settings as one bound statement, inside a transaction asyncpg began."""
        return (
            "SELECT set_config('search_path', $1, true), set_config('lock_timeout', $2, true),"
            f' "{self.schema}".edu_enter($3, $4)'
        )


class BegunTransaction:
    """A transaction opened by `BEGIN; ...` on the driver, as SQLAlchemy's asyncpg adapter sees it."""

    def __init__(self, driver_connection: Any) -> None:
        self._driver = driver_connection

    async def commit(self) -> None:
        await self._driver.execute("COMMIT")

    async def rollback(self) -> None:
        await self._driver.execute("ROLLBACK")


def _default_level(adapter: Any) -> bool:
    """True when the asyncpg adapter runs at the server's defaults (a plain BEGIN will do)."""
    return (
        getattr(adapter, "isolation_level", "") is None
        and not getattr(adapter, "readonly", True)
        and not getattr(adapter, "deferrable", True)
    )


def _key_refused() -> DatabaseError:
    return DatabaseError(
        "the database refused this process's tenant signature: EDU_RLS_KEY differs from the"
        " key `edu migrate` stored (`edu health` checks it)"
    )


def _not_migrated() -> DatabaseError:
    return DatabaseError(
        "the database is not migrated for this edu-core version: run `edu migrate`"
    )


#: Checks out the connection a unit of work runs on (a read replica's router, `routing.py`).
Checkout = Callable[[], Awaitable[Connection]]


class UowConnection:
    """Checks out lazily, opens every transaction with the unit of work's proven tenant.

    `checkout` replaces the engine's own checkout (read replicas: the router picks the pool
    and may probe the server first); a retry after a dead connection asks it again.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        tenant: UUID | None,
        settings: TransactionSettings,
        *,
        ping: bool,
        attempts: int,
        checkout: Checkout | None = None,
    ) -> None:
        self._engine = engine
        self._checkout = checkout
        self._tenant = tenant
        self._settings = settings
        self._attempts = max(1, attempts) if ping else 1
        self._conn: Connection | None = None
        #: raw SQL may have run: the connection must not go back to the pool
        self.tainted = False
        #: the transaction `_open` opened (a BegunTransaction, or asyncpg's own at a
        #: non-default isolation level)
        self.begun: Any = None

    def _adapter(self) -> Any:
        assert self._conn is not None
        return self._conn.connection.dbapi_connection

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None and open_transaction(self._adapter()) is not None

    def _retry(self, error: Exception, fresh: bool, attempt: int) -> bool:
        """True when `error` is a dead pooled connection worth replacing (the pre-ping case)."""
        return (
            fresh
            and attempt < self._attempts
            and is_driver_error(error)
            and classify(error).disconnect
        )

    # ------------------------------------------------------------------ begin

    async def begin(self) -> Any:
        """The asyncpg connection, in a transaction opened with the settings if none is."""
        attempt = 0
        while True:
            attempt += 1
            fresh = self._conn is None
            if fresh:
                self._conn = await (
                    checkout(self._engine) if self._checkout is None else self._checkout()
                )
            try:
                return await self._open()
            except Exception as error:
                if not self._retry(error, fresh, attempt):
                    raise
                log.info("a pooled connection was dead; checking out another")
                await self.invalidate()

    def sync_connection(self) -> Connection:
        """The connection for the session (inside SQLAlchemy's greenlet), in a transaction."""
        attempt = 0
        while True:
            attempt += 1
            fresh = self._conn is None
            if fresh:
                self._conn = (
                    self._engine.sync_engine.connect()
                    if self._checkout is None
                    else await_only(self._checkout())
                )
            try:
                await_only(self._open())
            except Exception as error:
                if not self._retry(error, fresh, attempt):
                    raise
                log.info("a pooled connection was dead; checking out another")
                await_only(self.invalidate())
                continue
            assert self._conn is not None
            return self._conn

    async def _open(self) -> Any:
        """Open the transaction unless one is: BEGIN + settings, one retry on a stale guess."""
        adapter = self._adapter()
        driver = adapter.driver_connection
        if open_transaction(adapter) is not None:  # the common case: already begun
            return driver
        assert self._conn is not None
        signer = signer_of(self._conn)
        try:
            await self._send(adapter, signer)
        except Exception as error:
            state, cause = sqlstate_of(error)
            if state in _UNMIGRATED:
                raise _not_migrated() from None
            if state != REFUSED_SQLSTATE:
                raise
            if not signer.resync(cause):
                raise _key_refused() from None
            log.info("resynchronised the tenant signature of a pooled connection")
            try:
                await self._send(adapter, signer)
            except Exception as again:
                if sqlstate_of(again)[0] == REFUSED_SQLSTATE:
                    raise _key_refused() from None
                raise
        signer.entered()
        return driver

    async def _send(self, adapter: Any, signer: ConnectionSigner) -> None:
        """Open the transaction (after rolling back a refused one of ours, if any)."""
        scope, signature = signer.enter(self._tenant)
        settings = self._settings
        driver = adapter.driver_connection
        refused = open_transaction(adapter)
        if _default_level(adapter):
            begun = BegunTransaction(driver)
            # handed over first: if the query fails after its BEGIN, the rollback still goes out
            hand_transaction(adapter, begun)
            self.begun = begun
            query = settings.begin_query(scope, signature)
            await driver.execute(query if refused is None else "ROLLBACK; " + query)
            return
        if refused is not None:
            hand_transaction(adapter, None)
            await refused.rollback()
        self.begun = await begin_at_adapter_level(adapter)
        if settings.read_only:
            await driver.execute("SET TRANSACTION READ ONLY")
        await driver.execute(
            settings.bound_query, settings.search_path, settings.lock_timeout, scope, signature
        )

    async def between_transactions(self, query: str) -> Any:
        """One row of `query` (whose last column is `rls.THIS_VXID`) run between this unit of
        work's transactions on its connection; None when it holds none or is in one."""
        if self._conn is None or self.in_transaction:
            return None
        row = await self._adapter().driver_connection.fetchrow(query)
        signer_of(self._conn).ran(row[-1])
        return row

    async def commit(self) -> None:
        await self._end(commit=True)

    async def rollback(self) -> None:
        await self._end(commit=False)

    async def _end(self, *, commit: bool) -> None:
        if not self.in_transaction:
            return
        adapter = self._adapter()
        transaction = open_transaction(adapter)
        try:
            await (transaction.commit() if commit else transaction.rollback())
        finally:
            hand_transaction(adapter, None)
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
        """Roll back whatever is open and return the connection to the pool, vouching
        that it is clean; a connection raw SQL may have touched is discarded instead."""
        if self._conn is None:
            return
        if self.tainted:
            log.debug("discarding a connection that raw SQL may have changed")
            await self.invalidate()
            return
        try:
            await self.rollback()
        except Exception:
            log.warning("rollback failed; discarding the connection", exc_info=True)
            await self.invalidate()
            return
        conn, self._conn = self._conn, None
        conn.info[CLEAN_INFO] = True
        try:
            await checkin(conn, clean=True)
        except Exception:
            log.warning("returning a connection to the pool failed", exc_info=True)


__all__ = ["CLEAN_INFO", "BegunTransaction", "TransactionSettings", "UowConnection"]
