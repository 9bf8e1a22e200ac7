"""Raw asyncpg: the driver ceiling, and the same transaction shape as edu-core.

- `RawTx` connects as the application role (RLS on): BEGIN, the settings and the tenant
  signed for the transaction as edu-core signs them (`edu_enter`), the statements, COMMIT.
  Bulk: `executemany` in that shape.
- `Raw` connects as the owner, prepared statements outside any transaction (asyncpg's
  statement cache), tenant filter in the SQL; writes that need one get a transaction.
  Bulk: binary COPY (`copy_records_to_table`; COPY is refused under RLS for the app role).
Both use an `asyncpg` pool (whose release resets the connection: one round trip).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from dataset import RLS_KEY
from workload import PAGE_LIMIT, PAGE_SKIP, POOL_SIZE, Workload

from edu_infra.memory import FastHasher
from edu_infra.sqlalchemy.rls import IDENTITY_QUERY, ConnectionSigner
from edu_infra.sqlalchemy.tables import user_profiles, users

USER_COLS = [c.name for c in users.columns]
PROFILE_COLS = [c.name for c in user_profiles.columns]
SELECT_USER = ", ".join(USER_COLS)
LIVE = "organization_id = $1 AND deleted_at IS NULL"

GET = f"SELECT {SELECT_USER} FROM users WHERE {LIVE} AND id = $2"
BY_EMAIL = f"SELECT {SELECT_USER} FROM users WHERE {LIVE} AND email = $2 LIMIT 2"
PAGE = (
    f"SELECT {SELECT_USER} FROM users WHERE {LIVE} AND status = 'active'"
    f" ORDER BY created_at DESC, id DESC LIMIT {PAGE_LIMIT + 1} OFFSET {PAGE_SKIP}"
)
KEYSET = (
    f"SELECT {SELECT_USER} FROM users WHERE {LIVE} AND (created_at, id) > ($2, $3)"
    f" ORDER BY created_at, id LIMIT {PAGE_LIMIT + 1}"
)
COUNT = f"SELECT count(*) FROM users WHERE {LIVE} AND status = 'active'"
STATS = f"""
SELECT role, status, count(*),
       count(*) FILTER (WHERE email_verified),
       count(*) FILTER (WHERE created_at >= $2),
       (SELECT count(*) FROM login_sessions s
         WHERE s.organization_id = $1 AND s.deleted_at IS NULL
           AND s.revoked_at IS NULL AND s.expires_at > $3)
FROM users WHERE {LIVE} GROUP BY role, status ORDER BY role, status
"""
ORG = "SELECT status FROM organizations WHERE id = $1 AND deleted_at IS NULL"
INSERT_USER = (
    f"INSERT INTO users ({', '.join(USER_COLS)})"
    f" VALUES ({', '.join(f'${i + 1}' for i in range(len(USER_COLS)))})"
)
INSERT_PROFILE = (
    f"INSERT INTO user_profiles ({', '.join(PROFILE_COLS)})"
    f" VALUES ({', '.join(f'${i + 1}' for i in range(len(PROFILE_COLS)))})"
)
UPDATE_NAME = (
    "UPDATE users SET full_name = $3, updated_at = $4, version = version + 1"
    " WHERE organization_id = $1 AND id = $2 AND version = $5"
)
ACTIVE_SESSIONS = (
    "SELECT id FROM login_sessions WHERE organization_id = $1 AND user_id = $2"
    " AND deleted_at IS NULL AND revoked_at IS NULL AND expires_at > $3"
)
REVOKE = "UPDATE login_sessions SET revoked_at = $3 WHERE organization_id = $1 AND id = ANY($2)"
SOFT_DELETE = (
    "UPDATE users SET deleted_at = $3, deleted_by = NULL, updated_at = $3,"
    " version = version + 1 WHERE organization_id = $1 AND id = $2 AND version = $4"
)
#: the transaction's settings as edu-core sends them (bound here, one round trip after BEGIN)
ENTER = (
    "SELECT set_config('search_path', '\"public\", pg_temp', true),"
    " set_config('lock_timeout', '0', true), edu_enter($1, $2)"
)
KEY = RLS_KEY.encode()


def user_record(org: uuid.UUID, row: dict[str, Any], hashed: str, now: datetime) -> tuple[Any, ...]:
    values = {
        "organization_id": org,
        "id": uuid.uuid4(),
        "hashed_password": hashed,
        "email_verified": False,
        "email_verified_at": None,
        "last_login_at": None,
        "failed_login_count": 0,
        "locked_until": None,
        "password_changed_at": None,
        "created_at": now,
        "created_by": None,
        "updated_at": now,
        "updated_by": None,
        "deleted_at": None,
        "deleted_by": None,
        "version": 1,
        **row,
    }
    return tuple(values[c] for c in USER_COLS)


def profile_record(org: uuid.UUID, user_id: uuid.UUID, now: datetime) -> tuple[Any, ...]:
    values = {
        "organization_id": org,
        "id": uuid.uuid4(),
        "user_id": user_id,
        "bio": None,
        "skills": [],
        "avatar_url": None,
        "timezone": "UTC",
        "locale": "en",
        "created_at": now,
        "created_by": None,
        "updated_at": now,
        "updated_by": None,
        "deleted_at": None,
        "deleted_by": None,
        "version": 1,
    }
    return tuple(values[c] for c in PROFILE_COLS)


class RawBase:
    name = "raw"
    tenant_setting = False

    def __init__(self, w: Workload, dsn: str) -> None:
        self.w = w
        self.dsn = dsn
        self.pool: asyncpg.Pool[Any] | None = None
        self.hasher = FastHasher()

    async def start(self) -> None:
        self.signers: dict[int, ConnectionSigner] = {}
        self.pool = await asyncpg.create_pool(
            self.dsn, min_size=POOL_SIZE, max_size=POOL_SIZE, init=self._identify
        )

    async def _identify(self, conn: asyncpg.Connection[Any]) -> None:
        """A signer per connection, predicting its vxids as edu-core's does."""
        signer = ConnectionSigner.from_identity(await conn.fetchrow(IDENTITY_QUERY), KEY)
        self.signers[conn.get_server_pid()] = signer

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    @asynccontextmanager
    async def tx(self, org: uuid.UUID) -> AsyncIterator[asyncpg.Connection[Any]]:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            signer = self.signers[conn.get_server_pid()]
            transaction = conn.transaction()
            await transaction.start()
            if self.tenant_setting:
                transaction = await self._enter(conn, transaction, signer, org)
            try:
                yield conn
            except BaseException:
                await transaction.rollback()
                raise
            await transaction.commit()
            signer.entered()  # the pool's reset on release is usually one more transaction

    @staticmethod
    async def _enter(
        conn: asyncpg.Connection[Any], transaction: Any, signer: ConnectionSigner, org: uuid.UUID
    ) -> Any:
        """As edu-core's connection layer does: a mispredicted vxid (the pool's reset does
        not always run a transaction) is learnt and the transaction begun again, once."""
        try:
            await conn.execute(ENTER, *signer.enter(org))
        except asyncpg.PostgresError as error:
            await transaction.rollback()
            if not signer.resync(error):
                raise
            transaction = conn.transaction()
            await transaction.start()
            await conn.execute(ENTER, *signer.enter(org))
        signer.entered()
        return transaction

    async def read(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """One read: in the tenant transaction shape, or a bare prepared statement."""
        if self.tenant_setting:
            async with self.tx(self.w.org) as conn:
                return await conn.fetch(sql, self.w.org, *args)
        assert self.pool is not None
        return await self.pool.fetch(sql, self.w.org, *args)

    async def get_by_id(self) -> Any:
        return await self.read(GET, self.w.next_member()[0])

    async def get_by_email(self) -> Any:
        return await self.read(BY_EMAIL, self.w.next_member()[1])

    async def find_page(self) -> Any:
        return await self.read(PAGE)

    async def keyset_page(self) -> Any:
        assert self.w.keyset_after is not None
        return await self.read(KEYSET, *self.w.keyset_after)

    async def count(self) -> Any:
        return await self.read(COUNT)

    async def statistics(self) -> Any:
        now = self.w.now
        return await self.read(STATS, self.w.thirty_days_ago, now)

    async def register(self) -> Any:
        org = self.w.register_org
        row = self.w.new_user(self.name)
        hashed = self.hasher.hash("correct horse battery")
        now = self.w.now
        async with self.tx(org) as conn:
            status = await conn.fetchval(ORG, org)
            assert status == "active"
            user = user_record(org, row, hashed, now)
            await conn.execute(INSERT_USER, *user)
            await conn.execute(INSERT_PROFILE, *profile_record(org, user[1], now))

    async def update(self) -> Any:
        uid = self.w.next_member()[0]
        async with self.tx(self.w.org) as conn:
            user = await conn.fetchrow(GET, self.w.org, uid)
            assert user is not None
            done = await conn.execute(
                UPDATE_NAME,
                self.w.org,
                uid,
                f"Renamed {self.w.serial()}",
                self.w.now,
                user["version"],
            )
            assert done == "UPDATE 1"

    async def soft_delete(self) -> Any:
        org = self.w.delete_orgs[self.name]
        uid = self.w.next_victim(self.name)
        now = self.w.now
        async with self.tx(org) as conn:
            user = await conn.fetchrow(GET, org, uid)
            assert user is not None
            sessions = [r[0] for r in await conn.fetch(ACTIVE_SESSIONS, org, uid, now)]
            if sessions:
                await conn.execute(REVOKE, org, sessions, now)
            done = await conn.execute(SOFT_DELETE, org, uid, now, user["version"])
            assert done == "UPDATE 1"

    async def bulk(self) -> Any:
        org = self.w.bulk_org
        rows = self.w.bulk_input(self.name)
        now = self.w.now
        hashed = self.hasher.hash("correct horse battery")
        records = [user_record(org, row, hashed, now) for row in rows]
        await self.insert_many(org, records)

    async def insert_many(self, org: uuid.UUID, records: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    async def concurrent(self) -> Any:
        import asyncio

        await asyncio.gather(*(self.get_by_id() for _ in range(20)))


class RawTx(RawBase):
    """App role, RLS on: BEGIN; set_config(signed tenant); statements; COMMIT."""

    name = "raw_tx"
    tenant_setting = True

    async def insert_many(self, org: uuid.UUID, records: list[tuple[Any, ...]]) -> None:
        async with self.tx(org) as conn:
            await conn.executemany(INSERT_USER, records)


class Raw(RawBase):
    """Owner role: prepared statements outside a transaction; COPY for bulk."""

    name = "raw"

    async def insert_many(self, org: uuid.UUID, records: list[tuple[Any, ...]]) -> None:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            await conn.copy_records_to_table("users", records=records, columns=USER_COLS)


class RawRedis:
    """redis-py GET + orjson decode; a miss loads with raw asyncpg and SETs the JSON."""

    def __init__(self, w: Workload, url: str, prefix: str, raw: Raw) -> None:
        self.w = w
        self.client = aioredis.Redis.from_url(url)
        self.prefix = prefix
        self.raw = raw
        self.hit_key = ""
        self.hit_value = b""

    async def prime(self, value: bytes) -> None:
        self.hit_key = self.prefix + "hit"
        self.hit_value = value
        await self.client.set(self.hit_key, value, ex=600)

    async def cache_hit(self) -> Any:
        data = await self.client.get(self.hit_key)
        if data is None:  # someone flushed the database: store it again
            await self.prime(self.hit_value)
            data = self.hit_value
        return orjson.loads(data)

    async def cache_miss(self) -> Any:
        uid = self.w.next_miss("raw")
        key = f"{self.prefix}user:{uid}"
        data = await self.client.get(key)
        if data is not None:
            return orjson.loads(data)
        assert self.raw.pool is not None
        row = await self.raw.pool.fetchrow(GET, self.w.org, uid)
        value = {
            k: (str(v) if not isinstance(v, (int, bool)) else v) for k, v in dict(row or {}).items()
        }
        await self.client.set(key, orjson.dumps(value), ex=300)
        return value

    async def stop(self) -> None:
        await self.client.aclose()
