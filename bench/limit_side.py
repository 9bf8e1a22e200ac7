"""`limit`: raw asyncpg doing exactly edu-core's transaction shape, the honest ceiling.

What edu-core sends per unit of work (`src/edu_infra/sqlalchemy/connection.py`, checked with
asyncpg's query logger), and nothing more:

1. `BEGIN [READ ONLY]; SELECT set_config('search_path', ...), set_config('lock_timeout', ...),
   edu_enter('<tenant>', '<signature>')` as one simple-protocol query, the same text
   (`TransactionSettings.begin_query`) signed for the transaction's predicted vxid with the
   benchmark's RLS key (`ConnectionSigner`, one per connection, learning a mispredicted vxid
   from the refusal and retrying once in the same round trip as the ROLLBACK, as edu-core);
2. the statements, prepared (asyncpg's statement cache);
3. `ROLLBACK` for reads, `COMMIT` for writes (simple protocol).

Same application role (RLS on). Connections come from a FIFO queue of its own: no reset on
release (asyncpg's pool runs `Connection.reset()`, one more round trip, unless given
`reset=`), no `max_queries` recycling, and first come, first served like edu-core's pool
(`FairQueuePool`: a released connection goes to the oldest waiter), so that the tail latency
run compares the same hand-off. Use-case reads that edu-core opens `BEGIN READ ONLY` open it here too.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

import asyncpg
from dataset import RLS_KEY
from raw_side import (
    ACTIVE_SESSIONS,
    BY_EMAIL,
    COUNT,
    GET,
    INSERT_PROFILE,
    INSERT_USER,
    KEYSET,
    PAGE,
    REVOKE,
    SOFT_DELETE,
    STATS,
    UPDATE_NAME,
    profile_record,
    user_record,
)
from workload import CONCURRENCY, POOL_SIZE, Workload

from edu_infra.memory import FastHasher
from edu_infra.sqlalchemy.connection import TransactionSettings
from edu_infra.sqlalchemy.rls import IDENTITY_QUERY, REFUSED_SQLSTATE, ConnectionSigner

T = TypeVar("T")
KEY = RLS_KEY.encode()
PASSWORD = "correct horse battery"
#: the organization check of register and soft delete, as edu-core's (the row, locked for a delete)
ORG = (
    "SELECT id, name, slug, status, created_at, created_by, updated_at, updated_by,"
    " deleted_at, deleted_by, version FROM organizations WHERE id = $1 AND deleted_at IS NULL"
)
ORG_LOCKED = ORG + " FOR UPDATE"
WRITE = TransactionSettings()
READ = TransactionSettings(read_only=True)


class FairQueue(Generic[T]):
    """Idle connections and waiters, served in arrival order (an `asyncio.Queue` lets the
    task that released a connection take it back before the woken waiter runs)."""

    def __init__(self) -> None:
        self.idle: deque[T] = deque()
        self.waiters: deque[asyncio.Future[T]] = deque()

    async def get(self) -> T:
        if self.idle and not self.waiters:
            return self.idle.popleft()
        waiter: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled():
                self.put_nowait(waiter.result())
            raise

    def put_nowait(self, item: T) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        self.idle.append(item)


class Limit:
    """edu-core's round trips on raw asyncpg; see the module docstring."""

    name = "limit"

    def __init__(self, w: Workload, dsn: str, pool_size: int = POOL_SIZE) -> None:
        self.w = w
        self.dsn = dsn
        self.pool_size = pool_size
        self.free: FairQueue[tuple[asyncpg.Connection[Any], ConnectionSigner]] = FairQueue()
        self.all: list[asyncpg.Connection[Any]] = []
        self.hasher = FastHasher()
        self.resyncs = 0

    async def start(self) -> None:
        for conn in await asyncio.gather(
            *(asyncpg.connect(self.dsn) for _ in range(self.pool_size))
        ):
            signer = ConnectionSigner.from_identity(await conn.fetchrow(IDENTITY_QUERY), KEY)
            self.all.append(conn)
            self.free.put_nowait((conn, signer))

    async def stop(self) -> None:
        await asyncio.gather(*(conn.close() for conn in self.all), return_exceptions=True)
        self.all.clear()

    @asynccontextmanager
    async def unit(
        self, org: uuid.UUID, *, read_only: bool = False, commit: bool = False
    ) -> AsyncIterator[asyncpg.Connection[Any]]:
        """One unit of work: BEGIN + signed settings, the body's statements, COMMIT/ROLLBACK."""
        conn, signer = await self.free.get()
        try:
            await self._begin(conn, signer, READ if read_only else WRITE, org)
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            self.free.put_nowait((conn, signer))

    async def _begin(
        self,
        conn: asyncpg.Connection[Any],
        signer: ConnectionSigner,
        settings: TransactionSettings,
        org: uuid.UUID,
    ) -> None:
        query = settings.begin_query(*signer.enter(org))
        try:
            await conn.execute(query)
        except asyncpg.PostgresError as error:
            if error.sqlstate != REFUSED_SQLSTATE or not signer.resync(error):
                await conn.execute("ROLLBACK")
                raise
            self.resyncs += 1
            await conn.execute("ROLLBACK; " + settings.begin_query(*signer.enter(org)))
        signer.entered()

    async def read(self, sql: str, *args: Any, read_only: bool = True) -> list[asyncpg.Record]:
        async with self.unit(self.w.org, read_only=read_only) as conn:
            return await conn.fetch(sql, self.w.org, *args)

    # ------------------------------------------------------------------ reads

    async def get(self, uid: uuid.UUID, *, read_only: bool = False) -> asyncpg.Record:
        async with self.unit(self.w.org, read_only=read_only) as conn:
            row = await conn.fetchrow(GET, self.w.org, uid)
        assert row is not None
        return row

    async def get_by_id(self) -> Any:
        """As `uow.get` in a plain unit of work: BEGIN (not read-only)."""
        return await self.get(self.w.next_member()[0])

    async def get_by_email(self) -> Any:
        rows = await self.read(BY_EMAIL, self.w.next_member()[1])
        assert len(rows) == 1
        return rows[0]

    async def find_page(self) -> Any:
        return await self.read(PAGE)

    async def keyset_page(self) -> Any:
        assert self.w.keyset_after is not None
        return await self.read(KEYSET, *self.w.keyset_after)

    async def count(self) -> Any:
        return (await self.read(COUNT))[0][0]

    async def statistics(self) -> Any:
        return await self.read(STATS, self.w.thirty_days_ago, self.w.now)

    async def concurrent(self) -> Any:
        await asyncio.gather(*(self.get_by_id() for _ in range(CONCURRENCY)))

    # ------------------------------------------------------------------ writes

    async def register(self) -> Any:
        org = self.w.register_org
        row = self.w.new_user(self.name)
        hashed = self.hasher.hash(PASSWORD)
        now = self.w.now
        async with self.unit(org, commit=True) as conn:
            found = await conn.fetchrow(ORG, org)
            assert found is not None
            assert found["status"] == "active"
            user = user_record(org, row, hashed, now)
            await conn.execute(INSERT_USER, *user)
            await conn.execute(INSERT_PROFILE, *profile_record(org, user[1], now))

    async def update(self) -> Any:
        await self.rename(self.w.next_member()[0])

    async def rename(self, uid: uuid.UUID) -> None:
        org = self.w.org
        async with self.unit(org, commit=True) as conn:
            user = await conn.fetchrow(GET, org, uid)
            assert user is not None
            done = await conn.execute(
                UPDATE_NAME, org, uid, f"Renamed {self.w.serial()}", self.w.now, user["version"]
            )
            if done != "UPDATE 1":
                raise RuntimeError("concurrent update (version moved)")

    async def soft_delete(self) -> Any:
        org = self.w.delete_orgs[self.name]
        uid = self.w.next_victim(self.name)
        now = self.w.now
        async with self.unit(org, commit=True) as conn:
            assert await conn.fetchrow(ORG_LOCKED, org) is not None
            user = await conn.fetchrow(GET, org, uid)
            assert user is not None
            sessions = [r[0] for r in await conn.fetch(ACTIVE_SESSIONS, org, uid, now)]
            if sessions:
                await conn.execute(REVOKE, org, sessions, now)
            done = await conn.execute(SOFT_DELETE, org, uid, now, user["version"])
            assert done == "UPDATE 1"

    async def bulk(self) -> Any:
        """10,000 users by `executemany` in one unit of work (COPY is refused under RLS)."""
        org = self.w.bulk_org
        now = self.w.now
        hashed = self.hasher.hash(PASSWORD)
        records = [user_record(org, row, hashed, now) for row in self.w.bulk_input(self.name)]
        async with self.unit(org, commit=True) as conn:
            await conn.executemany(INSERT_USER, records)
