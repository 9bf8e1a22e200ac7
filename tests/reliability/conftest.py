"""Reliability fixtures: a dedicated PostgreSQL database, and edu-cores on every adapter.

The PostgreSQL database is this suite's own (created once per session, dropped at exit):
it carries a test-only deferred trigger that can make COMMIT slow on request, so a backend
can be terminated while its commit is in progress without touching the shared test database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from attrs import define, field
from sqlalchemy import text

from edu_domain.model import Organization
from edu_domain.ports import UnitOfWorkFactory
from edu_domain.services import Deps, EduCore, EventDispatcher, SecurityPolicy
from edu_infra.memory import (
    FastHasher,
    InMemoryStore,
    InMemoryUnitOfWorkFactory,
    ManualClock,
    RecordingNotifier,
    RecordingPublisher,
    SequentialTokens,
)
from edu_infra.sqlalchemy import Database, DatabaseSettings, SqlUnitOfWorkFactory
from edu_infra.sqlalchemy.tables import TABLES
from edu_infra.system import Uuid7Generator
from tests.conftest import POSTGRES_URL, require_service
from tests.sql_harness import RLS_KEY, PostgresDatabase, fresh_sqlite_url

POLICY = SecurityPolicy(max_failed_logins=5, lockout=timedelta(minutes=10))

#: Makes COMMIT of a transaction that set `edu_test.slow_commit` sleep (deferred trigger).
SLOW_COMMIT_DDL = """
CREATE OR REPLACE FUNCTION edu_test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('edu_test.slow_commit', true) = 'on' THEN
        PERFORM pg_sleep(5);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER IF EXISTS edu_test_slow_commit ON users;
CREATE CONSTRAINT TRIGGER edu_test_slow_commit AFTER INSERT OR UPDATE ON users
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION edu_test_slow_commit();
"""

_database: PostgresDatabase | None = None


async def reliability_database() -> PostgresDatabase:
    """This suite's migrated PostgreSQL database (skips loudly if the server is absent)."""
    global _database
    require_service("PostgreSQL", POSTGRES_URL, 5432)
    if _database is None:
        database = PostgresDatabase(POSTGRES_URL)
        await database.create()
        owner = await asyncpg.connect(database.dsn(database.owner_url))
        try:
            await owner.execute(SLOW_COMMIT_DDL)
        finally:
            await owner.close()
        _database = database
    return _database


@pytest.fixture
async def pg() -> PostgresDatabase:
    database = await reliability_database()
    await database.truncate()
    return database


async def lock_waiters(pg: PostgresDatabase, *, until: int) -> int:
    """Backends of the test database waiting on a lock, polled until `until` (or 10 s)."""
    admin = await asyncpg.connect(pg.dsn(pg.owner_url))
    try:
        for _ in range(200):
            waiting: int = await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = $1 AND wait_event_type = 'Lock'",
                pg.name,
            )
            if waiting >= until:
                return waiting
            await asyncio.sleep(0.05)
        return waiting
    finally:
        await admin.close()


Snapshot = dict[str, frozenset[tuple[Any, ...]]]


async def snapshot_of(factory: UnitOfWorkFactory) -> Snapshot:
    """Every committed row of every table behind a unit-of-work factory (memory or SQL)."""
    store = getattr(factory, "store", None)
    if isinstance(store, InMemoryStore):
        return {
            cls.__name__: frozenset(
                tuple(sorted((k, repr(v)) for k, v in row.items()))
                for row in store.rows(cls).values()
            )
            for cls in TABLES
        }
    rows: Snapshot = {}
    async with factory.unscoped() as uow:
        session = uow.session  # type: ignore[attr-defined]
        for table in TABLES.values():
            result = await session.execute(text(f"SELECT * FROM {table.name}"))
            rows[table.name] = frozenset(tuple(repr(v) for v in row) for row in result)
    return rows


def changed_rows(before: Snapshot, after: Snapshot) -> list[str]:
    """Rows added, removed or changed between two snapshots, as reprs."""
    return sorted(
        repr(row) for table in before for row in before[table].symmetric_difference(after[table])
    )


@define
class Stack:
    """An edu-core on one adapter, with the doubles tests read and a way to see every row."""

    name: str
    core: EduCore
    factory: UnitOfWorkFactory
    clock: ManualClock
    notifier: RecordingNotifier
    events: RecordingPublisher
    database: Database | None = None
    store: InMemoryStore | None = None
    extra: dict[str, Any] = field(factory=dict)

    async def snapshot(self) -> Snapshot:
        """Every committed row of every table, read as unscoped system work."""
        return await snapshot_of(self.factory)

    async def org(self, name: str = "School") -> Organization:
        return await self.core.organizations.create(name)


def _core(
    name: str,
    factory: UnitOfWorkFactory,
    clock: ManualClock,
    notifier: RecordingNotifier,
    events: RecordingPublisher,
    policy: SecurityPolicy,
    **parts: Any,
) -> Stack:
    deps = Deps(
        uow=factory,
        clock=clock,
        ids=Uuid7Generator(),
        tokens=SequentialTokens(),
        hasher=FastHasher(),
        policy=policy,
    )
    return Stack(name, EduCore(deps), factory, clock, notifier, events, **parts)


@asynccontextmanager
async def memory_stack(policy: SecurityPolicy = POLICY) -> AsyncIterator[Stack]:
    clock, notifier, events = ManualClock(), RecordingNotifier(), RecordingPublisher()
    store = InMemoryStore()
    factory = InMemoryUnitOfWorkFactory(
        store, clock=clock, publisher=EventDispatcher(notifier, [events])
    )
    yield _core("memory", factory, clock, notifier, events, policy, store=store)


@asynccontextmanager
async def sql_stack(
    name: str, settings: DatabaseSettings, policy: SecurityPolicy = POLICY
) -> AsyncIterator[Stack]:
    clock, notifier, events = ManualClock(), RecordingNotifier(), RecordingPublisher()
    database = Database(settings)
    try:
        factory = SqlUnitOfWorkFactory(
            database, clock=clock, publisher=EventDispatcher(notifier, [events])
        )
        yield _core(name, factory, clock, notifier, events, policy, database=database)
    finally:
        await database.dispose()


@asynccontextmanager
async def sqlite_stack(policy: SecurityPolicy = POLICY) -> AsyncIterator[Stack]:
    settings = DatabaseSettings(url=await fresh_sqlite_url(), sqlite_busy_timeout_ms=5_000)
    async with sql_stack("sqlite", settings, policy) as stack:
        yield stack


@asynccontextmanager
async def postgres_stack(policy: SecurityPolicy = POLICY, **options: Any) -> AsyncIterator[Stack]:
    database = await reliability_database()
    await database.truncate()
    settings = DatabaseSettings(
        url=database.app_url, rls_key=RLS_KEY, **{"lock_timeout_ms": 10_000, **options}
    )
    async with sql_stack("postgres", settings, policy) as stack:
        stack.extra["pg"] = database
        yield stack


@asynccontextmanager
async def container_stack(policy: SecurityPolicy = POLICY, **settings: str) -> AsyncIterator[Stack]:
    """The production container (read-through cache included) over the memory store."""
    from dependency_injector import providers

    from edu_infra.container import build_container, shutdown

    clock, notifier, events = ManualClock(), RecordingNotifier(), RecordingPublisher()
    container = build_container(
        {
            "EDU_DATABASE_URL": "memory://",
            "EDU_LOCKOUT_MAX_FAILURES": str(policy.max_failed_logins),
            "EDU_LOCKOUT_SECONDS": str(int(policy.lockout.total_seconds())),
            **settings,
        }
    )
    container.clock.override(providers.Object(clock))
    container.notifier.override(providers.Object(notifier))
    container.hasher.override(providers.Object(FastHasher()))
    container.tokens.override(providers.Object(SequentialTokens()))
    try:
        core: EduCore = container.core()
        core.deps.uow.publisher.subscribe(events)  # type: ignore[attr-defined]
        store = container.store()
        yield Stack("container", core, core.deps.uow, clock, notifier, events, store=store)
    finally:
        await shutdown(container)


async def redis_container_stack(policy: SecurityPolicy = POLICY) -> AsyncIterator[Stack]:
    """Like `container_stack`, with the cache on the test Redis (database 15)."""
    from tests.conftest import REDIS_URL

    require_service("Redis", REDIS_URL, 6379)
    async with container_stack(policy, EDU_REDIS_URL=REDIS_URL) as stack:
        yield stack


StackFactory = Callable[[], AbstractAsyncContextManager[Stack]]
STACKS: dict[str, StackFactory] = {
    "memory": memory_stack,
    "sqlite": sqlite_stack,
    "postgres": postgres_stack,
    "container": container_stack,
    "container+redis": asynccontextmanager(redis_container_stack),
}
