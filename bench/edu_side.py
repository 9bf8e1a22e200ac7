"""edu-core through its public API: `SqlUnitOfWorkFactory` units of work and `EduCore` use cases.

Connected as the application role (row-level security on), tenant-scoped, with the
production defaults of `DatabaseSettings` except the pool size (10, no overflow).
"""

from __future__ import annotations

import asyncio
from typing import Any

from dataset import RLS_KEY
from workload import CONCURRENCY, PAGE_LIMIT, PAGE_SKIP, POOL_SIZE, Workload

from edu_domain.model import User, UserStatus
from edu_domain.query import Query
from edu_domain.services import Deps, EduCore, NewUser, Scope
from edu_infra.caching import CacheInvalidator, ReadThroughCache
from edu_infra.codec import dumps, to_json
from edu_infra.memory import FastHasher
from edu_infra.redis import RedisCache
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.uow import SqlUnitOfWork
from edu_infra.system import SecretTokenGenerator, SystemClock, Uuid7Generator

PASSWORD = "correct horse battery"


class Edu:
    name = "edu"

    def __init__(self, w: Workload, url: str, redis_url: str, prefix: str) -> None:
        self.w = w
        self.database = Database(
            DatabaseSettings(url=url, pool_size=POOL_SIZE, max_overflow=0, rls_key=RLS_KEY)
        )
        clock = SystemClock()
        self.hasher = FastHasher()
        self.factory = SqlUnitOfWorkFactory(self.database, clock=clock)
        deps = Deps(
            uow=self.factory,
            clock=clock,
            ids=Uuid7Generator(),
            tokens=SecretTokenGenerator(),
            hasher=self.hasher,
        )
        self.core = EduCore(deps)
        self.cache = RedisCache.from_url(redis_url, prefix=prefix)
        self.reads = ReadThroughCache(self.cache)
        cached_factory = SqlUnitOfWorkFactory(
            self.database, clock=clock, listeners=[CacheInvalidator(self.reads)]
        )
        self.cached_core = EduCore(
            Deps(
                uow=cached_factory,
                clock=clock,
                ids=Uuid7Generator(),
                tokens=SecretTokenGenerator(),
                hasher=self.hasher,
                reads=self.reads,
            )
        )
        self.scope = Scope.system(w.org)
        self.active_page = (
            Query.where(status=UserStatus.ACTIVE)
            .order_by("-created_at", "-id")
            .page(PAGE_SKIP, PAGE_LIMIT)
        )
        self.active = Query.where(status=UserStatus.ACTIVE)

    async def start(self) -> None:
        first = await self.core.users.find(
            self.scope, Query().order_by("created_at", "id").after(None, PAGE_LIMIT)
        )
        self.w.keyset_cursor = first.next_cursor
        last = first.items[-1]
        assert last.created_at is not None
        self.w.keyset_after = (last.created_at, last.id)

    async def stop(self) -> None:
        await self.reads.aclose()
        await self.cache.aclose()
        await self.database.dispose()

    async def get_by_id(self) -> Any:
        async with self.factory(tenant=self.w.org) as uow:
            user = await uow.get(User, self.w.next_member()[0])
        assert user is not None
        return user

    async def get_by_email(self) -> Any:
        user = await self.core.users.get_by_email(self.scope, self.w.next_member()[1])
        assert user is not None
        return user

    async def find_page(self) -> Any:
        page = await self.core.users.find(self.scope, self.active_page)
        assert len(page) == PAGE_LIMIT
        return page

    async def keyset_page(self) -> Any:
        query = Query().order_by("created_at", "id").after(self.w.keyset_cursor, PAGE_LIMIT)
        page = await self.core.users.find(self.scope, query)
        assert len(page) == PAGE_LIMIT
        return page

    async def count(self) -> Any:
        return await self.core.users.count(self.scope, self.active)

    async def statistics(self) -> Any:
        return await self.core.users.statistics(self.scope)

    async def register(self) -> Any:
        row = self.w.new_user(self.name)
        return await self.core.users.register(
            Scope.system(self.w.register_org),
            NewUser(**row, password=PASSWORD),
            send_verification=False,
        )

    async def update(self) -> Any:
        uid = self.w.next_member()[0]
        return await self.core.users.update(
            self.scope, uid, {"full_name": f"Renamed {self.w.serial()}"}
        )

    async def soft_delete(self) -> Any:
        org = self.w.delete_orgs[self.name]
        done = await self.core.users.delete(Scope.system(org), self.w.next_victim(self.name))
        assert done

    async def bulk(self) -> Any:
        """Seed style: 10,000 `User` entities built from the rows, `add_all`, one commit."""
        org = self.w.bulk_org
        hashed = self.hasher.hash(PASSWORD)
        entities = [
            User(organization_id=org, hashed_password=hashed, **row)
            for row in self.w.bulk_input("add_all")
        ]
        async with self.factory(tenant=org) as uow:
            await uow.add_all(entities)
            await uow.commit()

    @property
    def can_import(self) -> bool:
        """Whether this edu-core has the bulk import verb (`UnitOfWork.import_rows`, P4)."""
        return hasattr(SqlUnitOfWork, "import_rows")

    async def import_rows(self) -> Any:
        """The same 10,000 rows as plain mappings: `uow.import_rows(User, rows)`, one commit."""
        org = self.w.bulk_org
        hashed = self.hasher.hash(PASSWORD)
        rows = [
            {"organization_id": org, "hashed_password": hashed, **row}
            for row in self.w.bulk_input(self.name)
        ]
        async with self.factory(tenant=org) as uow:
            done = await uow.import_rows(User, rows)  # type: ignore[attr-defined]
            await uow.commit()
        assert done == len(rows)

    async def concurrent(self) -> Any:
        await asyncio.gather(*(self.get_by_id() for _ in range(CONCURRENCY)))

    # ------------------------------------------------------------------ cache

    async def cached_user_json(self) -> bytes:
        """The JSON edu-core caches for the hit user (the raw contender stores the same)."""
        async with self.factory(tenant=self.w.org) as uow:
            user = await uow.get(User, self.w.members[0][0])
        return dumps(to_json(user, User))

    async def cache_hit(self) -> Any:
        return await self.cached_core.users.get(self.scope, self.w.members[0][0])

    async def cache_miss(self) -> Any:
        return await self.cached_core.users.get(self.scope, self.w.next_miss("edu"))
