"""A span per SQL statement, on both of the adapter's paths, without touching the adapter.

- The ORM path (SQLite; PostgreSQL flushes): SQLAlchemy's `before_cursor_execute` /
  `after_cursor_execute` / `handle_error` engine events.
- The PostgreSQL driver path (reads, inserts, BEGIN with the tenant settings) calls asyncpg
  directly and so bypasses those events: an asyncpg query logger
  (`Connection.add_query_logger`), added to each new connection from the engine's `connect`
  event, reports each statement after it ran (text, elapsed time, error). Its span is
  back-dated to the statement's start. asyncpg does not log `copy_records_to_table` (the COPY
  of `add_all`); the statements around it are logged.

Spans carry the statement text (parameters are placeholders; bound values never appear).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from typing import Any

from opentelemetry.trace import SpanKind
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from edu_infra.sqlalchemy.engine import Database
from edu_infra.telemetry.core import Telemetry, mark_error

_MAX_STATEMENT = 2_000
#: Set while SQLAlchemy runs a statement: asyncpg then logs it too, and must not repeat it.
_in_orm_statement: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "edu_in_orm_statement", default=False
)
_SPAN_KEY = "_edu_otel_span"


def _operation(statement: str) -> str:
    words = statement.lstrip(" (\n").split(None, 1)
    return words[0].upper() if words else "SQL"


def _attributes(system: str, statement: str, path: str, server: str) -> dict[str, Any]:
    return {
        "db.system": system,
        "db.operation.name": _operation(statement),
        "db.query.text": statement[:_MAX_STATEMENT],
        "edu.sql.path": path,
        "edu.db.server": server,
    }


def instrument_database(database: Database, telemetry: Telemetry) -> Database:
    """Add statement spans to `database`'s engines (its read replicas' too: their spans name
    the replica, `edu.db.server`), its pool and replica routing to the metrics."""
    _instrument_engine(database.engine, database.is_postgres, telemetry, "primary")
    if database.replicas is not None:
        for replica in database.replicas.replicas:
            _instrument_engine(replica.engine, True, telemetry, replica.name)
        telemetry.observe_replicas(database.replicas)
    pool = database.engine.pool
    telemetry.observe_pool(lambda: int(getattr(pool, "checkedout", lambda: 0)()))
    return database


def _instrument_engine(
    async_engine: AsyncEngine, is_postgres: bool, telemetry: Telemetry, server: str
) -> None:
    engine = async_engine.sync_engine
    system = "postgresql" if is_postgres else "sqlite"
    tracer = telemetry.tracer

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        if ctx is None:
            return
        span = tracer.start_span(
            _operation(statement),
            kind=SpanKind.CLIENT,
            attributes=_attributes(system, statement, "orm", server),
        )
        setattr(ctx, _SPAN_KEY, (span, _in_orm_statement.set(True)))

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        _end(ctx, None)

    @event.listens_for(engine, "handle_error")
    def _error(exception_context: Any) -> None:
        _end(exception_context.execution_context, exception_context.original_exception)

    if is_postgres:

        def _logged(record: Any) -> None:
            if _in_orm_statement.get():
                return
            ended = time.time_ns()
            span = tracer.start_span(
                _operation(record.query),
                kind=SpanKind.CLIENT,
                attributes=_attributes(system, record.query, "driver", server),
                start_time=ended - int(record.elapsed * 1e9),
            )
            if record.exception is not None:
                mark_error(span, record.exception)
            span.end(end_time=ended)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.driver_connection.add_query_logger(_logged)


def _end(ctx: Any, error: BaseException | None) -> None:
    started = getattr(ctx, _SPAN_KEY, None) if ctx is not None else None
    if started is None:
        return
    span, token = started
    delattr(ctx, _SPAN_KEY)
    with contextlib.suppress(ValueError):  # ended in another context than it began
        _in_orm_statement.reset(token)
    if error is not None:
        mark_error(span, error)
    span.end()


__all__ = ["instrument_database"]
