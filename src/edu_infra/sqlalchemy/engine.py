"""The async engine and its settings, for PostgreSQL (asyncpg) and SQLite (aiosqlite).

One `Database` per process and event loop: a pooled async engine must not outlive its loop,
so tests build one per test and `dispose()` it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from attrs import evolve, field, frozen
from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from edu_domain.errors import ValidationError
from edu_domain.model.rules import INT64_MAX, INT64_MIN
from edu_infra.settings import redact_url
from edu_infra.sqlalchemy.connection import CLEAN_INFO
from edu_infra.sqlalchemy.pool import FairQueuePool
from edu_infra.sqlalchemy.replicas import POLICIES, Replica, ReplicaSet
from edu_infra.sqlalchemy.rls import SIGNER_INFO, ConnectionSigner, check_key, install_signer
from edu_infra.sqlalchemy.sqlite import install_sqlite_functions

log = logging.getLogger("edu_infra")


def _url_tuple(urls: Iterable[str]) -> tuple[str, ...]:
    return tuple(urls)


@frozen(kw_only=True)
class DatabaseSettings:
    """How to reach the database and how long to wait.

    `statement_cache_size=0` is for PgBouncer in transaction mode. `lock_timeout_ms` bounds
    how long a PostgreSQL statement waits for a row lock (then RetryableError); None waits.
    `command_timeout` bounds how long any PostgreSQL command waits for the server's answer
    (a server or network that stops answering mid-run); None waits forever. `rls_key`
    (EDU_RLS_KEY) signs the tenant row-level security trusts: required on PostgreSQL. The
    signature is bound to the server process, which a pooler such as PgBouncer hides:
    connect to PostgreSQL directly.

    `replica_urls` are hot standbys of this primary (same roles, same key), each with a pool
    of these sizes: read-only units of work read there (README, *Read replicas*).
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
    command_timeout: float | None = 30.0
    sqlite_busy_timeout_ms: int = 5_000
    lock_timeout_ms: int | None = None
    #: the schema of edu-core's tables: every transaction pins `search_path` to it
    schema: str = "public"
    rls_key: str | None = field(default=None, repr=lambda key: "None" if key is None else "'***'")
    replica_urls: tuple[str, ...] = field(
        default=(), converter=_url_tuple, repr=lambda urls: repr(tuple(map(redact_url, urls)))
    )
    #: how a read picks among healthy replicas: `round_robin` or `least_busy`
    replica_policy: str = "round_robin"
    #: seconds a replica may stay behind a position of the primary before reads skip it
    replica_max_lag: float = 5.0
    #: seconds a read given a consistency token waits for a replica to replay it (else: primary)
    replica_wait: float = 0.05
    #: seconds a replica's last check stays good, and a skipped replica stays skipped
    replica_retry: float = 1.0


class Database:
    """The engine plus what operators need: a health check, pool status and disposal."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.url: URL = make_url(settings.url)
        self.engine: AsyncEngine = _create_engine(self.url, settings)
        #: the read replicas (None: every unit of work runs on this database)
        self.replicas: ReplicaSet | None = (
            _replicas(self.url, settings) if settings.replica_urls else None
        )

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
        """True when a connection can be checked out and answers `SELECT 1`.

        Tried twice: on PostgreSQL the pool does not ping (units of work check a connection
        with their first statement), so the first try may meet a connection the server
        dropped while it sat in the pool; that failure invalidates the pool's old connections.
        """
        for attempt in (1, 2):
            try:
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                    vouch_after_one_transaction(conn)
            except Exception:  # a failed health check is an answer, not an error
                if attempt == 2:
                    log.warning("database health check failed", exc_info=True)
                    return False
            else:
                return True
        return False

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
        try:
            if self.replicas is not None:
                await self.replicas.dispose()
        finally:
            await self.engine.dispose()


def _replicas(primary: URL, settings: DatabaseSettings) -> ReplicaSet:
    """One engine (and pool) per replica URL, built like the primary's."""
    if primary.get_backend_name() != "postgresql":
        raise ValidationError("replica_urls", "read replicas need a PostgreSQL primary")
    if settings.replica_policy not in POLICIES:
        raise ValidationError("replica_policy", f"must be one of {', '.join(POLICIES)}")
    for name in ("replica_max_lag", "replica_wait", "replica_retry"):
        value = getattr(settings, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise ValidationError(name, "must be a finite number of seconds, at least 0")
    replicas = []
    for index, replica_url in enumerate(settings.replica_urls, start=1):
        url = make_url(replica_url)
        if url.get_backend_name() != "postgresql":
            raise ValidationError("replica_urls", "a read replica must be a PostgreSQL URL")
        engine = _create_engine(url, evolve(settings, url=replica_url, replica_urls=()))
        replicas.append(Replica(f"replica-{index}", f"{url.host}:{url.port or 5432}", engine))
    return ReplicaSet(
        replicas,
        policy=settings.replica_policy,
        max_lag=settings.replica_max_lag,
        wait=settings.replica_wait,
        retry=settings.replica_retry,
        max_waiting=max(1, (settings.pool_size + settings.max_overflow) // 2),
    )


def _create_engine(url: URL, settings: DatabaseSettings) -> AsyncEngine:
    backend = url.get_backend_name()
    # bound values include password and token hashes: never format them into errors or logs
    options: dict[str, Any] = {"echo": settings.echo, "hide_parameters": True}
    if backend == "postgresql":
        if url.get_driver_name() != "asyncpg":
            raise ValidationError("database_url", "PostgreSQL needs postgresql+asyncpg://")
        key = check_key(settings.rls_key)
        connect_args: dict[str, Any] = {"timeout": settings.connect_timeout}
        if settings.command_timeout is not None:
            connect_args["command_timeout"] = settings.command_timeout
        if settings.statement_cache_size is not None:
            connect_args["statement_cache_size"] = settings.statement_cache_size
            if settings.statement_cache_size == 0:
                url = url.update_query_dict({"prepared_statement_cache_size": "0"})
        engine = create_async_engine(
            url,
            json_serializer=dump_json,
            json_deserializer=load_json,
            connect_args=connect_args,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            pool_recycle=settings.pool_recycle,
            # units of work check a pooled connection with their first statement (BEGIN and
            # the tenant settings) and retry on a fresh one: no round trip of its own
            pool_pre_ping=False,
            poolclass=FairQueuePool,
            **options,
        )
        install_signer(engine, key)
        _discard_unvouched(engine)
        return engine
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
            pool_pre_ping=settings.pool_pre_ping,
            poolclass=FairQueuePool,
            **options,
        )
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    raise ValidationError("database_url", f"unsupported database {backend!r}")


def vouch_after_one_transaction(conn: Any) -> None:
    """Our own statement ran in one transaction on `conn`: pool it, with the signer's
    prediction moved past that transaction (else the next one is refused once)."""
    signer = conn.info.get(SIGNER_INFO)
    if isinstance(signer, ConnectionSigner):
        signer.entered()
    conn.info[CLEAN_INFO] = True


def _discard_unvouched(engine: AsyncEngine) -> None:
    """Pool only connections a unit of work returned clean (`connection.CLEAN_INFO`).

    Anything else (the engine used directly, a unit of work that handed out its session)
    may carry session state raw SQL left behind: settings, prepared statements, cursors,
    advisory locks, LISTENs. Such a connection is closed rather than reused.
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        record.info[CLEAN_INFO] = False

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if dbapi_connection is not None and not record.info.pop(CLEAN_INFO, False):
            record.invalidate()


def _int_or_float(text: str) -> int | float:
    """JSONB prints every number without an exponent: 1e300 comes back as 1000...0.

    The domain keeps integers within 64 bits, so a longer integer literal was a float.
    """
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else float(text)


def dump_json(value: Any) -> str:
    """JSON for JSONB that keeps a float a float.

    JSONB stores numbers as `numeric`: `1e+16` (how Python writes large floats) would come
    back as the integer 10000000000000000. Integral floats are written out with a `.0`.
    """
    return "".join(_encode(value))


def _encode(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ("," if i else "") + json.dumps(key) + ":"
            yield from _encode(item)
        yield "}"
    elif isinstance(value, (list, tuple)):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ","
            yield from _encode(item)
        yield "]"
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        digits = f"{Decimal(repr(value)):f}"
        yield digits if "." in digits else digits + ".0"
    else:
        yield json.dumps(value)


def load_json(text: str) -> Any:
    """JSON as PostgreSQL returns it, with floats that JSONB printed as integers restored."""
    return json.loads(text, parse_int=_int_or_float)


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
