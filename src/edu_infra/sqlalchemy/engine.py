"""The async engine and its settings, for PostgreSQL (asyncpg) and SQLite (aiosqlite).

One `Database` per process and event loop: a pooled async engine must not outlive its loop,
so tests build one per test and `dispose()` it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from attrs import frozen
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from edu_domain.errors import ValidationError
from edu_infra.sqlalchemy.sqlite import install_sqlite_functions

log = logging.getLogger("edu_infra")


@frozen(kw_only=True)
class DatabaseSettings:
    """How to reach the database and how long to wait.

    `statement_cache_size=0` is for PgBouncer in transaction mode. `lock_timeout_ms` bounds
    how long a PostgreSQL statement waits for a row lock (then RetryableError); None waits.
    """

    url: str
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 30.0
    pool_pre_ping: bool = True
    pool_recycle: int = 1_800
    statement_cache_size: int | None = None
    echo: bool = False
    connect_timeout: float = 10.0
    sqlite_busy_timeout_ms: int = 5_000
    lock_timeout_ms: int | None = None


class Database:
    """The engine plus what operators need: a health check, pool status and disposal."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.url: URL = make_url(settings.url)
        self.engine: AsyncEngine = _create_engine(self.url, settings)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Database:
        return cls(DatabaseSettings(url=url, **options))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def health_check(self) -> bool:
        """True when a connection can be checked out and answers `SELECT 1`."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # a failed health check is an answer, not an error
            log.warning("database health check failed", exc_info=True)
            return False
        return True

    def pool_status(self) -> Mapping[str, int | str]:
        """Pool counters for troubleshooting (size, checked out, overflow)."""
        pool = self.engine.pool
        status: dict[str, int | str] = {"pool": type(pool).__name__, "status": pool.status()}
        if isinstance(pool, QueuePool):
            status.update(
                size=pool.size(),
                checked_in=pool.checkedin(),
                checked_out=pool.checkedout(),
                overflow=pool.overflow(),
            )
        return status

    async def dispose(self) -> None:
        await self.engine.dispose()


def _create_engine(url: URL, settings: DatabaseSettings) -> AsyncEngine:
    backend = url.get_backend_name()
    options: dict[str, Any] = {"echo": settings.echo, "pool_pre_ping": settings.pool_pre_ping}
    if backend == "postgresql":
        if url.get_driver_name() != "asyncpg":
            raise ValidationError("database_url", "PostgreSQL needs postgresql+asyncpg://")
        connect_args: dict[str, Any] = {"timeout": settings.connect_timeout}
        if settings.statement_cache_size is not None:
            connect_args["statement_cache_size"] = settings.statement_cache_size
            if settings.statement_cache_size == 0:
                url = url.update_query_dict({"prepared_statement_cache_size": "0"})
        return create_async_engine(
            url,
            connect_args=connect_args,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            pool_recycle=settings.pool_recycle,
            **options,
        )
    if backend == "sqlite":
        if url.get_driver_name() != "aiosqlite":
            raise ValidationError("database_url", "SQLite needs sqlite+aiosqlite://")
        if url.database in (None, "", ":memory:"):
            raise ValidationError(
                "database_url", "use a SQLite file: units of work need their own connections"
            )
        engine = create_async_engine(
            url,
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            **options,
        )
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    raise ValidationError("database_url", f"unsupported database {backend!r}")


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()
        install_sqlite_functions(dbapi_connection)


__all__ = ["Database", "DatabaseSettings"]
