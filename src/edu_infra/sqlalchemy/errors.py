"""Driver errors -> domain errors: no SQLAlchemy, asyncpg or sqlite3 exception leaves the adapter.

`classify` reads what the driver tells (SQLSTATE and constraint name on PostgreSQL, the
extended error code and message on SQLite) into a `DbFailure`; `to_domain_error` names the
entity and field from the schema's constraint names. SQLite does not say which foreign key
failed: the unit of work diagnoses that itself (see `uow.py`).
"""

from __future__ import annotations

import re
import socket
from typing import Literal
from uuid import UUID

from attrs import frozen
from sqlalchemy import ForeignKeyConstraint, Index, PrimaryKeyConstraint
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import exc as orm_exc

from edu_domain.errors import (
    AlreadyExists,
    DomainError,
    NotFound,
    ReadOnlyError,
    RetryableError,
    UnavailableError,
    ValidationError,
)
from edu_domain.model import Entity, Organization
from edu_infra.sqlalchemy.tables import TABLES

FailureKind = Literal[
    "unique",
    "foreign_key",
    "restrict",
    "retryable",
    "unavailable",
    "data",
    "stale",
    "read_only",
    "other",
]

_RETRYABLE_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03", "53300", "55P03"}
_SQLITE_RETRYABLE = {"SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_BUSY_SNAPSHOT", "SQLITE_PROTOCOL"}
_PG_KEY = re.compile(r"Key \((?P<cols>[^)]*)\)=\((?P<vals>[^)]*)\)")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (?P<cols>.+)$")
_CONNECTION_WORDS = ("connection", "closed", "terminat", "broken pipe", "reset by peer")


@frozen
class DbFailure:
    """What went wrong in the database, as far as the driver said."""

    kind: FailureKind
    message: str
    constraint: str | None = None
    table: str | None = None
    columns: tuple[str, ...] = ()
    key_values: tuple[str, ...] = ()
    disconnect: bool = False


_LOST = DbFailure("retryable", "the database connection was lost", disconnect=True)

# ----------------------------------------------------------------------- constraint names


def _unique_names() -> dict[str, tuple[type[Entity], str]]:
    names: dict[str, tuple[type[Entity], str]] = {}
    for cls, table in TABLES.items():
        for constraint in table.constraints:
            if isinstance(constraint, PrimaryKeyConstraint) and constraint.name:
                names[str(constraint.name)] = (cls, "id")
        for index in table.indexes:
            if isinstance(index, Index) and index.unique and index.name:
                cols = tuple(str(c.name) for c in index.columns)
                names[str(index.name)] = (cls, _reported_as(cls, cols))
    return names


def _reported_as(cls: type[Entity], cols: tuple[str, ...]) -> str:
    for key in cls.__unique__:
        if set(key.fields) == set(cols) or set(key.fields) - {"organization_id"} == set(cols):
            return key.reported_as
    return cols[-1]


def _foreign_keys() -> dict[str, tuple[type[Entity], str, type[Entity]]]:
    names: dict[str, tuple[type[Entity], str, type[Entity]]] = {}
    for cls, table in TABLES.items():
        for constraint in table.constraints:
            if isinstance(constraint, ForeignKeyConstraint) and constraint.name:
                field = str(constraint.column_keys[-1])
                target = next(
                    (r.target for r in cls.__references__ if r.field == field), Organization
                )
                names[str(constraint.name)] = (cls, field, target)
    return names


UNIQUE_CONSTRAINTS = _unique_names()
FOREIGN_KEYS = _foreign_keys()
_CLASS_BY_TABLE = {table.name: cls for cls, table in TABLES.items()}


# ----------------------------------------------------------------------- classification


def classify(error: BaseException) -> DbFailure:
    """Read a driver or SQLAlchemy error into a `DbFailure`."""
    if isinstance(error, orm_exc.StaleDataError):
        table = re.search(r"on table '([^']+)'", str(error))
        return DbFailure("stale", str(error), table=table.group(1) if table else None)
    if isinstance(error, orm_exc.FlushError) and "conflicts with persistent" in str(error):
        return DbFailure("unique", str(error), columns=("id",))
    if isinstance(error, sa_exc.TimeoutError):
        return DbFailure("retryable", "connection pool exhausted")
    if isinstance(error, sa_exc.DBAPIError):
        return _classify_driver(error.orig, error.connection_invalidated)
    if isinstance(error, sa_exc.StatementError):  # raised before the driver saw the statement
        if isinstance(error.orig, (TypeError, ValueError, OverflowError)):
            return DbFailure("data", f"a value cannot be stored: {error.orig}")
        return _classify_driver(error.orig, False)
    return _classify_driver(error, False)


def _classify_driver(orig: BaseException | None, invalidated: bool) -> DbFailure:
    pg = _postgres_error(orig)
    if pg is not None:
        return _classify_postgres(pg)
    name = getattr(orig, "sqlite_errorname", None)
    if isinstance(name, str):
        return _classify_sqlite(name, str(orig))
    message = str(orig) if orig is not None else "unknown database error"
    lowered = message.lower()
    if invalidated or any(word in lowered for word in _CONNECTION_WORDS):
        return _LOST
    if isinstance(orig, (ConnectionError, TimeoutError, OSError)):
        return DbFailure("unavailable", "the database is unreachable")
    if "database is locked" in lowered:
        return DbFailure("retryable", "the database is busy")
    return DbFailure("other", message)


def sqlstate_of(error: BaseException) -> tuple[str | None, BaseException]:
    """The SQLSTATE of the driver error behind `error` (SQLAlchemy's wrapper and causes
    followed), with that driver error; (None, error) when none carries one."""
    seen: BaseException | None = error
    for _ in range(4):
        if seen is None:
            break
        state = getattr(seen, "sqlstate", None)
        if state:
            return str(state), seen
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None, error


def _postgres_error(orig: BaseException | None) -> BaseException | None:
    """The asyncpg exception behind SQLAlchemy's adapter (or `orig` itself)."""
    seen = 0
    current = orig
    while current is not None and seen < 4:
        if type(current).__module__.startswith("asyncpg"):
            return current
        current = current.__cause__
        seen += 1
    return None


def _classify_postgres(error: BaseException) -> DbFailure:
    sqlstate = str(getattr(error, "sqlstate", "") or "")
    message = str(getattr(error, "message", None) or error)
    detail = str(getattr(error, "detail", "") or "")
    constraint = getattr(error, "constraint_name", None)
    table = getattr(error, "table_name", None)
    cols, vals = _pg_key(detail)
    if sqlstate == "23505":
        return DbFailure("unique", message, constraint, table, cols, vals)
    if sqlstate in ("23503", "23001"):
        kind: FailureKind = "restrict" if "still referenced" in detail else "foreign_key"
        return DbFailure(kind, message, constraint, table, cols, vals)
    if sqlstate.startswith("08") or sqlstate in ("57P01", "57P02"):
        return _LOST  # the server ends the session (shutdown, crash): the connection is gone
    if sqlstate in _RETRYABLE_SQLSTATES:
        return DbFailure("retryable", message)
    if sqlstate == "25006":  # a write in a read-only transaction (or on a hot standby)
        return DbFailure("read_only", message)
    if sqlstate.startswith("22") or sqlstate in ("23502", "23514"):
        column = getattr(error, "column_name", None)
        return DbFailure("data", message, constraint, table, (column,) if column else ())
    if not sqlstate:
        if isinstance(error, ValueError):  # asyncpg DataError: a value its codec refused
            return DbFailure("data", message)
        if isinstance(error, (ConnectionRefusedError, socket.gaierror)):
            return DbFailure("unavailable", "the database is unreachable")
        # client-side errors (closed connection, protocol out of step): drop the connection
        return _LOST
    return DbFailure("other", f"{sqlstate}: {message}")


def _pg_key(detail: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    match = _PG_KEY.search(detail)
    if not match:
        return (), ()
    cols = tuple(c.strip() for c in match.group("cols").split(","))
    vals = tuple(v.strip() for v in match.group("vals").split(","))
    return cols, vals


def _classify_sqlite(name: str, message: str) -> DbFailure:
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        match = _SQLITE_UNIQUE.search(message)
        table: str | None = None
        cols: tuple[str, ...] = ()
        if match:
            qualified = [c.strip() for c in match.group("cols").split(",")]
            table = qualified[0].split(".")[0]
            cols = tuple(c.split(".")[-1] for c in qualified)
        return DbFailure("unique", message, None, table, cols)
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return DbFailure("foreign_key", message)
    if name in ("SQLITE_CONSTRAINT_CHECK", "SQLITE_CONSTRAINT_NOTNULL", "SQLITE_TOOBIG"):
        return DbFailure("data", message)
    if name.startswith(tuple(_SQLITE_RETRYABLE)):
        return DbFailure("retryable", "the database is busy")
    if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL", "SQLITE_READONLY")):
        return DbFailure("unavailable", message)
    return DbFailure("other", message)


# ----------------------------------------------------------------------- domain errors


def to_domain_error(failure: DbFailure, entity: type[Entity] | None = None) -> DomainError:
    """The domain error for a failure; `entity` is the class being written, when known."""
    if failure.kind == "unique":
        return _already_exists(failure, entity)
    if failure.kind in ("foreign_key", "restrict") and failure.constraint in FOREIGN_KEYS:
        cls, field, target = FOREIGN_KEYS[failure.constraint]
        if failure.kind == "restrict":
            return ValidationError(field, f"still referenced by {cls.__name__}")
        key: object = _uuid_or_text(failure.key_values[-1]) if failure.key_values else None
        return NotFound(target.__name__, key)
    if failure.kind in ("foreign_key", "restrict"):
        return ValidationError("reference", "refers to an entity that does not exist")
    if failure.kind == "retryable":
        return RetryableError(failure.message)
    if failure.kind == "unavailable":
        return UnavailableError(failure.message)
    if failure.kind == "read_only":
        return ReadOnlyError(
            "the database refused a write: the transaction is read-only (a read-only unit of"
            " work, or a database that is a hot standby)"
        )
    if failure.kind == "data":
        column = failure.columns[0] if failure.columns else _check_field(failure.constraint)
        return ValidationError(column or "value", "rejected by the database")
    return DatabaseError(without_sql(failure.message))


def without_sql(message: str) -> str:
    """A message for callers: SQLAlchemy appends the statement (`[SQL: ...]`) and a link;
    neither reaches a caller of the domain."""
    for marker in ("\n[SQL", "[SQL:", "\n(Background on this error"):
        message = message.split(marker, 1)[0]
    return message.strip() or "database error"


def _already_exists(failure: DbFailure, entity: type[Entity] | None) -> AlreadyExists:
    if failure.constraint in UNIQUE_CONSTRAINTS:
        cls, field = UNIQUE_CONSTRAINTS[failure.constraint]
        return AlreadyExists(cls.__name__, field)
    owner = _CLASS_BY_TABLE.get(failure.table or "", entity)
    cols = tuple(c for c in failure.columns if c != "organization_id") or ("id",)
    if owner is None:
        return AlreadyExists("entity", cols[-1])
    return AlreadyExists(owner.__name__, _reported_as(owner, cols))


def _check_field(constraint: str | None) -> str | None:
    if constraint and constraint.startswith("ck_"):
        for table in TABLES.values():
            prefix = f"ck_{table.name}_"
            if constraint.startswith(prefix):
                return constraint[len(prefix) :]
    return None


def _uuid_or_text(value: str) -> object:
    try:
        return UUID(value)
    except ValueError:
        return value


class DatabaseError(DomainError):
    """An unexpected database failure (the driver's message, never its exception type)."""


def is_driver_error(error: BaseException) -> bool:
    """True for errors the adapter must translate (SQLAlchemy, asyncpg, sqlite3, sockets)."""
    if isinstance(error, DomainError):
        return False
    if isinstance(error, (sa_exc.SQLAlchemyError, ConnectionError, OSError, TimeoutError)):
        return True
    module = type(error).__module__
    return module.startswith(("asyncpg", "sqlite3", "aiosqlite", "sqlalchemy"))


def translate(error: BaseException, entity: type[Entity] | None = None) -> DomainError:
    return to_domain_error(classify(error), entity)


__all__ = [
    "FOREIGN_KEYS",
    "UNIQUE_CONSTRAINTS",
    "DatabaseError",
    "DbFailure",
    "classify",
    "is_driver_error",
    "sqlstate_of",
    "to_domain_error",
    "translate",
]
