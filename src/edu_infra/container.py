"""The dependency-injector container: configuration -> adapters -> use cases.

    container = Container(settings=providers.Object(Settings.from_env()))
    core = container.core()
    await start(container)  # the outbox relay's loop
    ...
    await shutdown(container)

Swap any adapter with `container.<provider>.override(...)` (e.g. `container.notifier`,
`container.cache`, `container.clock`). The unit-of-work factory is a singleton *factory*:
each request opens its own unit of work from it, never a shared one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from dependency_injector import containers, providers

from edu_domain.caching import Cache, NoReadCache, ReadCache
from edu_domain.errors import DomainError
from edu_domain.ports import Notifier, UnitOfWorkFactory
from edu_domain.services import Deps, EduCore, EventDispatcher
from edu_infra.caching import CacheInvalidator, ReadThroughCache
from edu_infra.caching.read_through import DEFAULT_OUTAGE_FENCE, DEFAULT_RETRY_INTERVAL
from edu_infra.memory import InMemoryStore, InMemoryUnitOfWorkFactory
from edu_infra.memory.cache import InMemoryCache
from edu_infra.notifier import LoggingNotifier
from edu_infra.outbox import OutboxRelay
from edu_infra.security import Argon2PasswordHasher
from edu_infra.settings import ConfigurationError, Settings, redact_url
from edu_infra.system import SecretTokenGenerator, SystemClock, Uuid7Generator

log = logging.getLogger("edu_infra")


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
            replica_urls=settings.database_replica_urls,
            replica_policy=settings.database_replica_policy,
            replica_max_lag=settings.database_replica_max_lag,
            replica_wait=settings.database_replica_wait,
            replica_retry=settings.database_replica_retry,
        )
    )
    closables.append(database.dispose)
    return database


def _notifier(settings: Settings) -> Notifier:
    """SMTP when EDU_SMTP_HOST is set, else a notifier that only logs (never the token)."""
    if settings.smtp is None:
        return LoggingNotifier()
    assert settings.mail_links is not None
    from edu_infra.extras import require_extra
    from edu_infra.mail.templates import MailTemplates

    with require_extra("smtp", "EDU_SMTP_HOST"):
        from edu_infra.mail.smtp import SmtpNotifier
    directory = settings.mail_template_dir
    try:
        templates = MailTemplates.from_directory(directory) if directory else None
    except ValueError as error:
        raise ConfigurationError(f"EDU_MAIL_TEMPLATE_DIR: {error}") from None
    return SmtpNotifier(settings.smtp, settings.mail_links, templates)


def _hasher(settings: Settings, closables: list[Any]) -> Argon2PasswordHasher:
    hasher = Argon2PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        max_threads=settings.hash_threads,
    )
    closables.append(hasher.aclose)
    return hasher


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


def _read_cache(
    settings: Settings, cache: Cache, closables: list[Any], telemetry: Any = None
) -> ReadCache:
    if not settings.cache_enabled:
        return NoReadCache()
    fence = DEFAULT_OUTAGE_FENCE
    if settings.redis_url is not None:
        from edu_infra.redis import RedisCache

        if isinstance(cache, RedisCache) and cache.operation_timeout is not None:
            # outlast another writer's retry: its interval, one operation deadline, slack
            fence = max(fence, DEFAULT_RETRY_INTERVAL + cache.operation_timeout + 0.1)
    traced = _traced_cache(cache, telemetry)
    reads = ReadThroughCache(traced, ttls=settings.cache_ttls, outage_fence=fence)
    closables.append(reads.aclose)
    return reads


def _service_reads(settings: Settings, reads: ReadCache) -> ReadCache:
    """The read cache the use cases get: with read replicas, its loads read the primary."""
    if not settings.database_replica_urls or isinstance(reads, NoReadCache):
        return reads
    from edu_infra.consistency import PrimaryLoads

    return PrimaryLoads(reads)


def _listeners(reads: ReadCache) -> list[Any]:
    return [CacheInvalidator(reads)] if isinstance(reads, ReadThroughCache) else []


def _telemetry(settings: Settings) -> Any:
    """edu-core's OpenTelemetry instruments, or None (then nothing is wrapped: no cost)."""
    if not settings.otel_enabled:
        return None
    from edu_infra.extras import require_extra

    with require_extra("otel", "EDU_OTEL_ENABLED"):
        from edu_infra.telemetry import Telemetry

    return Telemetry()


def _traced_cache(cache: Cache, telemetry: Any) -> Cache:
    if telemetry is None:
        return cache
    from edu_infra.telemetry import TracedCache

    telemetry.observe_cache(cache)
    return TracedCache(cache, telemetry)


def _traced_publisher(publisher: Any, telemetry: Any) -> Any:
    if telemetry is None:
        return publisher
    from edu_infra.telemetry import TracedPublisher

    return TracedPublisher(publisher, telemetry)


def _uow_factory(
    settings: Settings,
    clock: Any,
    publisher: Any,
    listeners: list[Any],
    store: Any,
    database: Any,
    telemetry: Any,
) -> UnitOfWorkFactory:
    factory: UnitOfWorkFactory
    outbox = settings.outbox
    if settings.uses_memory_database:
        factory = InMemoryUnitOfWorkFactory(
            store, clock=clock, publisher=publisher, listeners=listeners, outbox=outbox
        )
    else:
        from edu_infra.sqlalchemy import SqlUnitOfWorkFactory

        db = database()
        if telemetry is not None:
            from edu_infra.telemetry import instrument_database

            instrument_database(db, telemetry)
        factory = SqlUnitOfWorkFactory(
            db, clock=clock, publisher=publisher, listeners=listeners, outbox=outbox
        )
    if telemetry is None:
        return factory
    from edu_infra.telemetry import TracedUnitOfWorkFactory

    return TracedUnitOfWorkFactory(factory, telemetry)


def _core(deps: Deps, telemetry: Any) -> EduCore:
    core = EduCore(deps)
    if telemetry is None:
        return core
    from edu_infra.telemetry import instrument_core

    return instrument_core(core, telemetry)


class Container(containers.DeclarativeContainer):
    """Everything edu-core needs, built lazily from `settings`."""

    settings = providers.Dependency(instance_of=Settings)
    closables: providers.Singleton[list[Any]] = providers.Singleton(list)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(Uuid7Generator)
    tokens = providers.Singleton(SecretTokenGenerator)
    hasher = providers.Singleton(_hasher, settings, closables)
    telemetry = providers.Singleton(_telemetry, settings)
    notifier: providers.Provider[Notifier] = providers.Singleton(_notifier, settings)
    publisher = providers.Singleton(EventDispatcher, notifier=notifier)

    database = providers.Singleton(_database, settings, closables)
    store = providers.Singleton(InMemoryStore)
    cache = providers.Singleton(_cache, settings, clock, closables)
    reads = providers.Singleton(_read_cache, settings, cache, closables, telemetry)
    listeners = providers.Singleton(_listeners, reads)
    uow_factory = providers.Singleton(
        _uow_factory,
        settings,
        clock,
        providers.Singleton(_traced_publisher, publisher, telemetry),
        listeners,
        store,
        database.provider,
        telemetry,
    )

    deps = providers.Singleton(
        Deps,
        uow=uow_factory,
        clock=clock,
        ids=ids,
        tokens=tokens,
        hasher=hasher,
        policy=settings.provided.policy,
        reads=providers.Singleton(_service_reads, settings, reads),
    )
    core = providers.Singleton(_core, deps, telemetry)


def build_container(settings: Settings | Mapping[str, Any] | None = None) -> Container:
    """A container for `settings` (a Settings, a dict of EDU_* values, or the environment)."""
    if settings is None:
        resolved = Settings.from_env()
    elif isinstance(settings, Settings):
        resolved = settings
    else:
        resolved = Settings.from_mapping(settings)
    return Container(settings=providers.Object(resolved))


def relay_of(container: Container) -> OutboxRelay | None:
    """The outbox relay of the container's unit-of-work factory (None: the outbox is off)."""
    factory = container.uow_factory()
    relay = getattr(getattr(factory, "inner", factory), "relay", None)
    return relay if isinstance(relay, OutboxRelay) else None


async def start(container: Container) -> None:
    """Start what runs in the background: the outbox relay's loop, unless EDU_OUTBOX_RELAY
    is false (`edu relay` runs it elsewhere). `shutdown` stops it; `open_core` does both."""
    settings: Settings = container.settings()
    relay = relay_of(container)
    if relay is None or not settings.outbox_relay_in_process or relay.running:
        return
    relay.start()
    container.closables().append(relay.stop)


class MigrationError(DomainError):
    """Migrating failed for an operator's reason (wrong role, unreachable server, ...)."""


async def migrate_schema(container: Container) -> None:
    """Bring the database schema to the latest migration (no-op for the memory profile).

    On PostgreSQL this also stores EDU_RLS_KEY for row-level security (a new key rotates it).
    A failure is a `MigrationError` whose one line names the cause and the setting to fix
    (the same line `edu migrate` prints); no driver exception or SQL reaches the caller.
    """
    settings: Settings = container.settings()
    if settings.uses_memory_database:
        return
    from edu_infra.diagnose import explain
    from edu_infra.sqlalchemy.errors import is_driver_error
    from edu_infra.sqlalchemy.migrate import upgrade_async

    url, setting = settings.migration_database_url, settings.migration_url_setting
    try:
        await upgrade_async(url, app_role=settings.database_app_role, rls_key=settings.rls_key)
    except Exception as error:
        line = explain(error, url, setting, migrating=True)
        if line is None and not (is_driver_error(error) or isinstance(error, OSError)):
            raise
        log.debug("migrating failed", exc_info=True)
        raise MigrationError(line or f"migrating the database of {setting} failed") from None


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
    """An EduCore for the configuration, migrated if asked, its outbox relay running;
    shut down on exit."""
    container = build_container(settings)
    if notifier is not None:
        container.notifier.override(providers.Object(notifier))
    try:
        if migrate:
            await migrate_schema(container)
        core = container.core()
        await start(container)
        yield core, describe(container.settings())
    finally:
        await shutdown(container)
