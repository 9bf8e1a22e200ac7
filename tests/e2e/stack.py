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

from examples.fastapi_app import Settings, create_app
from fastapi import FastAPI

from edu_domain.services import Deps, EduCore, EventDispatcher, SecurityPolicy
from edu_infra.memory import (
    FastHasher,
    InMemoryUnitOfWorkFactory,
    ManualClock,
    RecordingNotifier,
    SequentialTokens,
)
from edu_infra.system import Uuid7Generator

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


#: Every kind of core the e2e suite runs against, by the name tests are parametrised with.
CORE_FACTORIES: dict[str, CoreFactory] = {"memory": memory_core}


@asynccontextmanager
async def app_under_test(core_factory: CoreFactory) -> AsyncIterator[AppParts]:
    """The example app over a fresh core, with its lifespan running."""
    async with core_factory() as parts:
        settings = Settings(bootstrap_key=BOOTSTRAP_KEY, max_body_bytes=MAX_BODY_BYTES)
        app = create_app(parts.core, settings=settings)
        async with app.router.lifespan_context(app):
            yield AppParts(app, parts.core, parts.notifier, parts.clock)
