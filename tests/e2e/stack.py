"""How the end-to-end tests build the example app over an edu-core.

Each core kind (only "memory" for now; SQLite and PostgreSQL + Redis later) is an async
context manager yielding `CoreParts`: the core and the doubles a test reads (the mails) and
moves (the clock). `app_under_test` wraps one in the example app and yields
`(app, core, notifier, clock)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import NamedTuple

from dependency_injector import providers
from fastapi import FastAPI

from edu_domain.services import Deps, EduCore, EventDispatcher, SecurityPolicy
from edu_infra.container import build_container, shutdown
from edu_infra.memory import (
    FastHasher,
    InMemoryUnitOfWorkFactory,
    ManualClock,
    RecordingNotifier,
    SequentialTokens,
)
from edu_infra.system import Uuid7Generator
from examples.fastapi_app import Settings, create_app

POLICY = SecurityPolicy(max_failed_logins=3, lockout=timedelta(minutes=10))
BOOTSTRAP_KEY = "e2e-bootstrap-key"
MAX_BODY_BYTES = 1024 * 1024


class CoreParts(NamedTuple):
    core: EduCore
    notifier: RecordingNotifier
    clock: ManualClock


class AppParts(NamedTuple):
    app: FastAPI
    core: EduCore
    notifier: RecordingNotifier
    clock: ManualClock


CoreFactory = Callable[[], AbstractAsyncContextManager[CoreParts]]


@asynccontextmanager
async def memory_core() -> AsyncIterator[CoreParts]:
    """The in-memory adapters with a hand-moved clock, recorded mails and a fast hasher."""
    clock = ManualClock()
    notifier = RecordingNotifier()
    uow = InMemoryUnitOfWorkFactory(clock=clock, publisher=EventDispatcher(notifier))
    deps = Deps(
        uow=uow,
        clock=clock,
        ids=Uuid7Generator(),
        tokens=SequentialTokens(),
        hasher=FastHasher(),
        policy=POLICY,
    )
    yield CoreParts(EduCore(deps), notifier, clock)


@asynccontextmanager
async def container_core(settings: dict[str, str]) -> AsyncIterator[CoreParts]:
    """edu-core built by the production container, with deterministic doubles swapped in."""
    clock = ManualClock()
    notifier = RecordingNotifier()
    container = build_container(
        {
            **settings,
            "EDU_LOCKOUT_MAX_FAILURES": str(POLICY.max_failed_logins),
            "EDU_LOCKOUT_SECONDS": str(int(POLICY.lockout.total_seconds())),
        }
    )
    container.clock.override(providers.Object(clock))
    container.notifier.override(providers.Object(notifier))
    container.hasher.override(providers.Object(FastHasher()))
    container.tokens.override(providers.Object(SequentialTokens()))
    try:
        yield CoreParts(container.core(), notifier, clock)
    finally:
        await shutdown(container)


@asynccontextmanager
async def sqlite_core() -> AsyncIterator[CoreParts]:
    """The embedded default: a migrated SQLite file and the in-memory cache."""
    from tests.sql_harness import fresh_sqlite_url

    async with container_core({"EDU_DATABASE_URL": await fresh_sqlite_url()}) as parts:
        yield parts


@asynccontextmanager
async def postgres_redis_core() -> AsyncIterator[CoreParts]:
    """Production shape: PostgreSQL as the RLS-bound app role, Redis as the cache."""
    from tests.conftest import POSTGRES_URL, REDIS_URL, require_service
    from tests.sql_harness import APP_ROLE, RLS_KEY, postgres_database

    require_service("PostgreSQL", POSTGRES_URL, 5432)
    require_service("Redis", REDIS_URL, 6379)
    database = await postgres_database(POSTGRES_URL)
    await database.truncate()
    settings = {
        "EDU_DATABASE_URL": database.app_url,
        "EDU_MIGRATION_DATABASE_URL": database.owner_url,
        "EDU_DATABASE_APP_ROLE": APP_ROLE,
        "EDU_RLS_KEY": RLS_KEY,
        "EDU_REDIS_URL": REDIS_URL,
    }
    async with container_core(settings) as parts:
        yield parts


#: Every kind of core the e2e suite runs against, by the name tests are parametrised with.
CORE_FACTORIES: dict[str, CoreFactory] = {
    "memory": memory_core,
    "sqlite": sqlite_core,
    "postgres+redis": postgres_redis_core,
}


@asynccontextmanager
async def app_under_test(core_factory: CoreFactory) -> AsyncIterator[AppParts]:
    """The example app over a fresh core, with its lifespan running."""
    async with core_factory() as parts:
        settings = Settings(bootstrap_key=BOOTSTRAP_KEY, max_body_bytes=MAX_BODY_BYTES)
        app = create_app(parts.core, settings=settings)
        async with app.router.lifespan_context(app):
            yield AppParts(app, parts.core, parts.notifier, parts.clock)
