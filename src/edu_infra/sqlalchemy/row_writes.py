"""Single-row writes of the PostgreSQL driver path, and how a value is written for asyncpg.

`add` sends one prepared INSERT (one round trip, no ORM flush); a flush of changed loaded
entities sends one versioned UPDATE each. COPY (`pg_copy.py`) reads rows the same way.
A commit's outbox rows are one executemany of `OutboxInsert` (both paths share
`outbox_values`).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC
from enum import Enum
from typing import Any

from sqlalchemy import JSON, bindparam, update
from sqlalchemy.engine import Dialect

from edu_domain.model import Entity
from edu_infra.outbox.store import OutboxEntry, OutboxState
from edu_infra.sqlalchemy.engine import dump_json
from edu_infra.sqlalchemy.guard import BOUND, TENANT_PARAM, predicates
from edu_infra.sqlalchemy.mapping import table_of
from edu_infra.sqlalchemy.tables import outbox_events
from edu_infra.sqlalchemy.types import EnumText, UtcDateTime

Writer = Callable[[Any], Any] | None


class RowInsert:
    """A prepared single-row INSERT of one table: its SQL and how to read a row off an entity."""

    def __init__(self, cls: type[Entity], dialect: Dialect) -> None:
        table = table_of(cls)
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c.name) for c in table.columns)
        places = ", ".join(f"${i}" for i in range(1, len(table.columns) + 1))
        self.sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({places})"  # noqa: S608 - schema names
        self._writers = [(c.name, column_writer(c.type, dialect)) for c in table.columns]

    def args(self, entity: Entity) -> tuple[Any, ...]:
        return row_values(self._writers, entity)


_OLD_VERSION = "edu_old_version"


class RowUpdate:
    """A prepared versioned UPDATE of some columns of one table (the ORM flush's statement).

    `WHERE id AND <the guard, with the entity's own tenant> AND version = <old>`: a row
    changed meanwhile (or of another tenant) updates nothing, which the unit of work reports
    as a ConcurrencyConflict.
    """

    def __init__(self, cls: type[Entity], columns: Sequence[str], dialect: Dialect) -> None:
        table = table_of(cls)
        stmt = (
            update(table)
            .where(
                table.c.id == bindparam("edu_row_id", type_=table.c.id.type),
                *predicates(cls, tenant=BOUND, include_deleted=True),
                table.c.version == bindparam(_OLD_VERSION, type_=table.c.version.type),
            )
            .values(
                {
                    **{name: bindparam(name, type_=table.c[name].type) for name in columns},
                    "version": bindparam("edu_new_version", type_=table.c.version.type),
                }
            )
        )
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self._order = tuple(compiled.positiontup or ())
        self._writers = {name: column_writer(table.c[name].type, dialect) for name in columns}
        self._tenant = cls.__tenant_field__

    def args(self, entity: Entity, old_version: int) -> tuple[Any, ...]:
        values = entity.__dict__
        named = {
            "edu_row_id": values["id"],
            TENANT_PARAM: values[self._tenant],
            _OLD_VERSION: old_version,
            "edu_new_version": old_version + 1,
        }
        out = []
        for name in self._order:
            if name in named:
                out.append(named[name])
                continue
            value = values[name] if name in values else getattr(entity, name)
            write = self._writers[name]
            out.append(value if write is None or value is None else write(value))
        return tuple(out)


def outbox_values(entry: OutboxEntry) -> dict[str, Any]:
    """The first version of an event's outbox row: pending, due at once, never tried."""
    return {
        "organization_id": entry.organization_id,
        "id": entry.key,
        "kind": entry.kind,
        "payload": dict(entry.payload),
        "state": OutboxState.PENDING,
        "attempts": 0,
        "available_at": entry.created_at,
        "created_at": entry.created_at,
    }


class OutboxInsert:
    """The INSERT of outbox rows on the driver path (values as `column_writer` makes them)."""

    COLUMNS = (
        "organization_id",
        "id",
        "kind",
        "payload",
        "state",
        "attempts",
        "available_at",
        "created_at",
    )

    def __init__(self, dialect: Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in self.COLUMNS)
        places = ", ".join(f"${i}" for i in range(1, len(self.COLUMNS) + 1))
        self.sql = f"INSERT INTO {quote(outbox_events.name)} ({names}) VALUES ({places})"  # noqa: S608 - schema names
        self._writers = [column_writer(outbox_events.c[n].type, dialect) for n in self.COLUMNS]

    def rows(self, entries: Sequence[OutboxEntry]) -> list[tuple[Any, ...]]:
        rows = []
        for entry in entries:
            values = outbox_values(entry)
            rows.append(
                tuple(
                    value if write is None or value is None else write(value)
                    for write, value in zip(
                        self._writers, (values[n] for n in self.COLUMNS), strict=True
                    )
                )
            )
        return rows


@functools.cache
def outbox_insert(dialect: Dialect) -> OutboxInsert:
    return OutboxInsert(dialect)


def row_values(writers: Sequence[tuple[str, Writer]], entity: Entity) -> tuple[Any, ...]:
    """One row: values read from the instance dict (where a new entity keeps them all)."""
    values = entity.__dict__
    return tuple(
        (value if write is None or value is None else write(value))
        for name, write in writers
        for value in (values[name] if name in values else getattr(entity, name),)
    )


def records_of(
    writers: Sequence[tuple[str, Writer]], rows: Sequence[Mapping[str, Any]]
) -> list[tuple[Any, ...]]:
    """Rows from plain values (every column present: checked import rows). The columns are
    read in one C call per row; only the few with a writer (enums, times) are touched."""
    if not rows:
        return []
    pick = operator.itemgetter(*(name for name, _ in writers))
    convert = [(i, write) for i, (_, write) in enumerate(writers) if write is not None]
    if len(writers) == 1 or not convert:
        return [(pick(row),) if len(writers) == 1 else pick(row) for row in rows]
    records: list[tuple[Any, ...]] = []
    for row in rows:
        record = list(pick(row))
        for i, write in convert:
            value = record[i]
            if value is not None:
                record[i] = write(value)
        records.append(tuple(record))
    return records


def column_writer(type_: Any, dialect: Dialect) -> Writer:
    """How a column's value is written for asyncpg (None: as it is; None passes as NULL)."""
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, JSON) or isinstance(getattr(impl, "impl", None), JSON):
        return lambda value: dump_json(dict(value))
    if isinstance(type_, EnumText):
        return _enum_value
    if isinstance(type_, UtcDateTime):
        slow = type_.process_bind_param
        return lambda value: (
            value if value.tzinfo is UTC else slow(value, dialect)  # asyncpg wants aware UTC
        )
    process = getattr(type_, "process_bind_param", None)
    if process is not None:
        return lambda value: process(value, dialect)
    return None


def _enum_value(value: Any) -> Any:
    return value._value_ if isinstance(value, Enum) else value  # `.value`, minus its descriptor


__all__ = [
    "OutboxInsert",
    "RowInsert",
    "RowUpdate",
    "Writer",
    "column_writer",
    "outbox_insert",
    "outbox_values",
    "records_of",
    "row_values",
]
