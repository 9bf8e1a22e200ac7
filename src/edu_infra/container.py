"""The dependency-injector container: configuration -> adapters -> use cases.

    container = Container(settings=providers.Object(Settings.from_env()))
    core = container.core()
    ...
    await shutdown(container)

Swap any adapter with `container.<provider>.override(...)` (e.g. `container.notifier`,
`container.cache`, `container.clock`). The unit-of-work factory is a singleton *factory*:
each request opens its own unit of work from it, never a shared one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from dependency_injector import containers, providers

from edu_domain.caching import Cache, NoReadCache, ReadCache
from edu_domain.ports import Notifier, UnitOfWorkFactory
from edu_domain.services import Deps, EduCore, EventDispatcher
from edu_infra.caching import CacheInvalidator, ReadThroughCache
from edu_infra.caching.read_through import DEFAULT_OUTAGE_FENCE, DEFAULT_RETRY_INTERVAL
from edu_infra.memory import InMemoryStore, InMemoryUnitOfWorkFactory
from edu_infra.memory.cache import InMemoryCache
from edu_infra.notifier import LoggingNotifier
from edu_infra.security import Argon2PasswordHasher
from edu_infra.settings import ConfigurationError, Settings, redact_url
from edu_infra.system import SecretTokenGenerator, SystemClock, Uuid7Generator


def _database(settings: Settings, closables: list[Any]) -> Any:
    from edu_infra.sqlalchemy import Database, DatabaseSettings

    database = Database(
        DatabaseSettings(
            url=settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            pool_timeout=settings.db_pool_timeout,
            pool_pre_ping=settings.db_pool_pre_ping,
            statement_cache_size=settings.db_statement_cache_size,
            echo=settings.db_echo,
            connect_timeout=settings.db_connect_timeout,
            command_timeout=settings.db_command_timeout,
            rls_key=settings.rls_key,
        )
    )
    closables.append(database.dispose)
    return database


def _cache(settings: Settings, clock: Any, closables: list[Any]) -> Cache:
    if settings.redis_url is None:
        return InMemoryCache(clock=clock)
    from edu_infra.redis import RedisCache

    try:
        cache = RedisCache.from_url(
            settings.redis_url,
            connect_timeout_ms=settings.redis_connect_timeout_ms,
            command_timeout_ms=settings.redis_command_timeout_ms,
        )
    except ValueError as error:
        raise ConfigurationError(f"EDU_REDIS_URL: {error}") from None
    closables.append(cache.aclose)
    return cache


def _read_cache(settings: Settings, cache: Cache, closables: list[Any]) -> ReadCache:
    if not settings.cache_enabled:
        return NoReadCache()
    fence = DEFAULT_OUTAGE_FENCE
    if settings.redis_url is not None:
        from edu_infra.redis import RedisCache

        if isinstance(cache, RedisCache) and cache.operation_timeout is not None:
            # outlast another writer's retry: its interval, one operation deadline, slack
            fence = max(fence, DEFAULT_RETRY_INTERVAL + cache.operation_timeout + 0.1)
    reads = ReadThroughCache(cache, ttls=settings.cache_ttls, outage_fence=fence)
    closables.append(reads.aclose)
    return reads


def _listeners(reads: ReadCache) -> list[Any]:
    return [CacheInvalidator(reads)] if isinstance(reads, ReadThroughCache) else []


def _uow_factory(
    settings: Settings, clock: Any, publisher: Any, listeners: list[Any], store: Any, database: Any
) -> UnitOfWorkFactory:
    if settings.uses_memory_database:
        return InMemoryUnitOfWorkFactory(
            store, clock=clock, publisher=publisher, listeners=listeners
        )
    from edu_infra.sqlalchemy import SqlUnitOfWorkFactory

    return SqlUnitOfWorkFactory(database(), clock=clock, publisher=publisher, listeners=listeners)


class Container(containers.DeclarativeContainer):
    """Everything edu-core needs, built lazily from `settings`."""

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid7Generator)
    tokens = providers.Singleton(SecretTokenGenerator)
    hasher = providers.Singleton(
        Argon2PasswordHasher,
        time_cost=settings.provided.argon2_time_cost,
        memory_cost=settings.provided.argon2_memory_kib,
        parallelism=settings.provided.argon2_parallelism,
    )
    notifier: providers.Provider[Notifier] = providers.Singleton(LoggingNotifier)
    publisher = providers.Singleton(EventDispatcher, notifier=notifier)

    closables: providers.Singleton[list[Any]] = providers.Singleton(list)
    database = providers.Singleton(_database, settings, closables)
    store = providers.Singleton(InMemoryStore)
    cache = providers.Singleton(_cache, settings, clock, closables)
    reads = providers.Singleton(_read_cache, settings, cache, closables)
    listeners = providers.Singleton(_listeners, reads)
    uow_factory = providers.Singleton(
        _uow_factory, settings, clock, publisher, listeners, store, database.provider
    )

    deps = providers.Singleton(
        Deps,
        uow=uow_factory,
        clock=clock,
        ids=ids,
        tokens=tokens,
        hasher=hasher,
        policy=settings.provided.policy,
        reads=reads,
    )
    core = providers.Singleton(EduCore, deps)


def build_container(settings: Settings | Mapping[str, Any] | None = None) -> Container:
    """A container for `settings` (a Settings, a dict of EDU_* values, or the environment)."""
    if settings is None:
        resolved = Settings.from_env()
    elif isinstance(settings, Settings):
        resolved = settings
    else:
        resolved = Settings.from_mapping(settings)
    return Container(settings=providers.Object(resolved))


async def migrate_schema(container: Container) -> None:
    """Bring the database schema to the latest migration (no-op for the memory profile).

    On PostgreSQL this also stores EDU_RLS_KEY for row-level security (a new key rotates it).
    """
    settings: Settings = container.settings()
    if settings.uses_memory_database:
        return
    from edu_infra.sqlalchemy.migrate import upgrade_async

    await upgrade_async(
        settings.migration_database_url,
        app_role=settings.database_app_role,
        rls_key=settings.rls_key,
    )


async def shutdown(container: Container) -> None:
    """Close what the container opened (the engine's pool, the Redis client), once.

    Every closer runs even if an earlier one fails; the first failure is raised at the end.
    """
    closables: list[Any] = container.closables()
    first: BaseException | None = None
    while closables:
        try:
            await closables.pop()()
        except Exception as error:
            first = first or error
    if first is not None:
        raise first


def describe(settings: Settings) -> str:
    database = (
        "in-memory store" if settings.uses_memory_database else redact_url(settings.database_url)
    )
    cache = "Redis " + redact_url(settings.redis_url) if settings.redis_url else "in-memory cache"
    return f"{database} + {cache}"


@asynccontextmanager
async def open_core(
    settings: Settings | Mapping[str, Any] | None = None,
    *,
    notifier: Notifier | None = None,
    migrate: bool = False,
) -> AsyncIterator[tuple[EduCore, str]]:
    """An EduCore for the configuration, migrated if asked, shut down on exit."""
    container = build_container(settings)
    if notifier is not None:
        container.notifier.override(providers.Object(notifier))
    try:
        if migrate:
            await migrate_schema(container)
        yield container.core(), describe(container.settings())
    finally:
        await shutdown(container)
